// `freqkv ask [--workspace DIR] QUESTION`, `freqkv index [--workspace DIR]` and `freqkv summarize
// FILE`: the extension's Ask About Workspace, its background indexing and Summarize File without
// VS Code. They take generate's options (shared parser); the default cache is freqkv, since a
// workspace is usually longer than the model's context. ask (segmented) and index go through the
// engine's workspace index (src/engine/index): ask answers first from the relevant files, index
// prefills the rest. Progress goes to stderr (also with --json), the answer to stdout; --json
// prints one line with the text, the statistics and what the cache held.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Engine } from '../engine/engine';
import { FreqKvError } from '../engine/errors';
import { DEFAULT_MAX_FILE_BYTES, IngestCancelledError, ingestDirectory, readSourceFile } from '../engine/workspace/ingest';
import { askWorkspace, NoWorkspaceFilesError, openWorkspaceIndex, type OpenedIndex } from '../engine/index/askWorkspace';
import { WORKSPACE_DEFAULTS } from '../engine/index/defaults';
import { DirectorySource } from '../engine/index/directorySource';
import type { IndexProgress } from '../engine/index/workspaceIndex';
import { readHead } from '../engine/workspace/nodeSource';
import { countSkips } from '../engine/workspace/skipSummary';
import { buildAskPrompt, buildSummaryPrompt } from '../engine/workspace/prompt';
import type { IncludedFile, IngestResult } from '../engine/workspace/types';
import { defaultRecentWindow } from '../engine/kv/createCompressor';
import type { CodecName } from '../engine/segments/codec';
import { CODEC_NAMES } from '../engine/segments/codecRegistry';
import { floatOption, intOption, UsageError } from './args';
import { graphNote, modelToLoad } from './defaultModel';
import { cacheOptionsFor, GENERATION_OPTION_SPEC, parseGenerationOptions, type GenerationOptions } from './generationOptions';
import { statsLine } from './generateCommand';

/** Nothing to read: an empty workspace, or a file that cannot be summarized. */
export class NoInputError extends FreqKvError {}

const INGEST_OPTION_SPEC = {
  include: { type: 'string', multiple: true },
  exclude: { type: 'string', multiple: true },
  'max-file-bytes': { type: 'string' },
} as const;

const SEGMENT_OPTION_SPEC = {
  mode: { type: 'string' },
  store: { type: 'string' },
  codec: { type: 'string' },
  'store-max-mb': { type: 'string' },
} as const;

export type AskMode = 'segmented' | 'sequential';
export const ASK_MODES: readonly AskMode[] = ['segmented', 'sequential'];
/** The default ask mode: the one the workspace benchmark supports (README, "Segmented workspace cache"). */
export const DEFAULT_ASK_MODE: AskMode = WORKSPACE_DEFAULTS.mode;
/** ask and index answer like the extension does (greedy, the same length). */
const ASK_GENERATION_DEFAULTS = { cache: WORKSPACE_DEFAULTS.cacheMethod, temperature: WORKSPACE_DEFAULTS.temperature, maxNewTokens: WORKSPACE_DEFAULTS.maxNewTokens };

/** The segment store when --store is not given: $FREQKV_STORE, else the user's cache folder. */
export function defaultStoreDir(): string {
  if (process.env.FREQKV_STORE) return process.env.FREQKV_STORE;
  const base = process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache');
  return path.join(base, 'freqkv', 'segments');
}

/** The options of `ask` and `index` that say which workspace, store and codec. */
interface IndexCliValues {
  workspace?: string;
  include?: string[];
  exclude?: string[];
  'max-file-bytes'?: string;
  store?: string;
  codec?: string;
  'store-max-mb'?: string;
  'max-files'?: string;
}

interface IndexCliSettings {
  root: string;
  storeDir: string;
  codec: CodecName;
  maxFileBytes: number;
  maxStoreBytes: number;
  maxFiles: number;
}

function indexCliSettings(values: IndexCliValues): IndexCliSettings {
  const maxFileBytes = intOption(values['max-file-bytes'], 'max-file-bytes', WORKSPACE_DEFAULTS.maxFileBytes, 1);
  // int8: a quarter of float32's bytes at the same fidelity in the workspace benchmark, and no calibration (rvq needs one).
  const codec = (values.codec ?? WORKSPACE_DEFAULTS.codec) as CodecName;
  if (!CODEC_NAMES.includes(codec)) throw new UsageError(`--codec must be one of ${CODEC_NAMES.join(', ')} (got '${values.codec}').`);
  const storeMaxMb = intOption(values['store-max-mb'], 'store-max-mb', WORKSPACE_DEFAULTS.maxStoreMB, 1);
  const maxFiles = intOption(values['max-files'], 'max-files', WORKSPACE_DEFAULTS.maxFiles, 1);
  const root = path.resolve(values.workspace ?? process.cwd());
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) throw new UsageError(`--workspace ${root} does not exist or is not a folder.`);
  const storeDir = path.resolve(values.store ?? defaultStoreDir());
  return { root, storeDir, codec, maxFileBytes, maxStoreBytes: storeMaxMb * 1024 * 1024, maxFiles };
}

/** The workspace index of `ask` and `index` for a model and the cache options. */
async function openCliIndex(engine: Engine, options: GenerationOptions, cli: IndexCliSettings, values: IndexCliValues, signal: AbortSignal): Promise<OpenedIndex> {
  const cacheOptions = cacheOptionsFor(options, engine.contextLength);
  const capacity = cacheOptions.capacity!;
  return openWorkspaceIndex(
    engine,
    {
      codec: cli.codec,
      capacity,
      sinks: options.sinks,
      retain: options.retain,
      recent: options.recent ?? defaultRecentWindow(capacity, options.sinks),
      prefillChunk: options.prefillChunkSize,
      storeDir: cli.storeDir,
      maxStoreBytes: cli.maxStoreBytes,
      workspaceId: cli.root,
      maxFileBytes: cli.maxFileBytes,
      maxFiles: cli.maxFiles,
    },
    new DirectorySource([{ dir: cli.root }], { include: values.include, exclude: values.exclude ?? [...WORKSPACE_DEFAULTS.exclude] }),
    { signal, onCalibrating: () => process.stderr.write(`calibrating the ${cli.codec} codebooks on ${path.basename(engine.folder.dir)} (once per model and store)…\n`) },
  );
}

/** "12/68 files, 34,000/120,000 tokens, 150 tokens/s, 9 min 30 s left" */
export function indexProgressLine(p: IndexProgress): string {
  const left = p.tokensPerSecond > 0 ? (p.tokensTotal - p.tokensDone) / p.tokensPerSecond : NaN;
  const time = !Number.isFinite(left) ? '' : left >= 60 ? `, ${Math.floor(left / 60)} min ${Math.round(left % 60)} s left` : `, ${Math.round(left)} s left`;
  return `${p.filesDone}/${p.filesTotal} files, ${p.tokensDone.toLocaleString('en-US')}/${p.tokensTotal.toLocaleString('en-US')} tokens, ${p.tokensPerSecond.toFixed(0)} tokens/s${time}`;
}

/** A reporter that writes at most once a second (and always the last line). */
function throttled(write: (line: string) => void, everyMs = 1000): (line: string, force?: boolean) => void {
  let last = 0;
  return (line, force = false) => {
    if (!force && performance.now() - last < everyMs) return;
    last = performance.now();
    write(line);
  };
}

const INDEX_USAGE_SPEC = { ...GENERATION_OPTION_SPEC, ...INGEST_OPTION_SPEC, ...SEGMENT_OPTION_SPEC, workspace: { type: 'string' }, 'max-files': { type: 'string' } } as const;

/** `freqkv index`: brings the whole workspace into the store, with progress; Ctrl-C stops it and the next run resumes. */
export async function runIndex(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: INDEX_USAGE_SPEC, allowPositionals: true, strict: true });
  if (positionals.length > 0) throw new UsageError(`index takes no positional arguments (got '${positionals.join(' ')}'); pass the folder with --workspace DIR.`);
  const options = parseGenerationOptions(values, ASK_GENERATION_DEFAULTS);
  const cli = indexCliSettings(values);
  return withEngine(modelToLoad(values), options, async (engine, signal) => {
    const { index, codecState } = await openCliIndex(engine, options, cli, values, signal);
    const say = (line: string): void => void process.stderr.write(`${line}\n`);
    const refreshLine = throttled(say);
    const refresh = await index.refresh({ signal, onProgress: (p) => refreshLine(`reading workspace: ${p.filesSeen} files seen, ${p.filesRead} read`) });
    const before = index.counts();
    say(`workspace ${cli.root}: ${refresh.files} files (${before.tokensTotal.toLocaleString('en-US')} tokens), ${refresh.read} read, ${before.filesIndexed} already indexed; left out ${refresh.skipped.length}; store ${cli.storeDir}`);
    for (const w of [...codecState.warnings, ...index.warnings]) say(`warning: ${w}`);
    const line = throttled((l) => say(`indexing: ${l}`), values.json ? 5000 : 1000);
    const run = await index.indexPending({ signal, onProgress: (p) => line(indexProgressLine(p)) });
    const after = index.counts();
    for (const w of index.segments.store.warnings) say(`warning: ${w}`);
    if (run.stopped) say(`stopped after ${run.filesIndexed} files (${(run.ms / 1000).toFixed(1)} s); ${after.filesIndexed}/${after.filesTotal} files are indexed. Run freqkv index again to resume.`);
    else say(`indexed ${run.filesIndexed} files (${run.tokensIndexed.toLocaleString('en-US')} tokens) in ${(run.ms / 1000).toFixed(1)} s (${((run.tokensIndexed / Math.max(1, run.ms)) * 1000).toFixed(0)} tokens/s); ${after.filesIndexed}/${after.filesTotal} files indexed.`);
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ workspace: cli.root, store: cli.storeDir, model: engine.folder.dir, codec: cli.codec, refresh: { ...refresh, skipped: refresh.skipped.length }, run, ...after, prefillTokensPerSecond: index.prefillTokensPerSecond ?? null, persisted: index.segments.store.persisting, warnings: [...codecState.warnings, ...index.warnings, ...index.segments.store.warnings] })}\n`);
    }
    return run.stopped ? 130 : 0;
  });
}

export async function runAsk(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { ...INDEX_USAGE_SPEC, 'first-answer-seconds': { type: 'string' }, 'max-workspace-tokens': { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  const question = positionals.join(' ').trim();
  if (question === '') throw new UsageError('ask needs a question, e.g. freqkv ask "What does this project do?".');
  const options = parseGenerationOptions(values, ASK_GENERATION_DEFAULTS);
  const mode = (values.mode ?? DEFAULT_ASK_MODE) as AskMode;
  if (!ASK_MODES.includes(mode)) throw new UsageError(`--mode must be one of ${ASK_MODES.join(', ')} (got '${values.mode}').`);
  const cli = indexCliSettings(values);
  const maxWorkspaceTokens = intOption(values['max-workspace-tokens'], 'max-workspace-tokens', WORKSPACE_DEFAULTS.maxWorkspaceTokens, 0);
  const firstAnswerSeconds = floatOption(values['first-answer-seconds'], 'first-answer-seconds', WORKSPACE_DEFAULTS.firstAnswerSeconds, (n) => n >= 0, 'a number of seconds >= 0');
  const root = cli.root;
  if (mode === 'sequential') return askSequential(values, options, question, cli, maxWorkspaceTokens);

  return withEngine(modelToLoad(values), options, async (engine, signal, started) => {
    const { index, codecState } = await openCliIndex(engine, options, cli, values, signal);
    const say = (line: string): void => void process.stderr.write(`${line}\n`);
    const progress = throttled(say);
    let answerStarted = false;
    const result = await askWorkspace(
      engine,
      index,
      question,
      { maxNewTokens: options.maxNewTokens, sampling: options.sampling, seed: options.seed, prefillChunkSize: options.prefillChunkSize, cache: { method: options.method, sinks: options.sinks, retain: options.retain, recent: options.recent }, maxWorkspaceTokens, firstAnswerSeconds },
      signal,
      (event) => {
        if (event.kind === 'refresh') progress(`reading workspace: ${event.filesSeen} files seen, ${event.filesRead} read`);
        else if (event.kind === 'index') progress(`prefilling for the answer: ${event.filesDone}/${event.filesTotal} relevant files not indexed yet (${event.tokensDone.toLocaleString('en-US')} tokens)${event.path ? `: ${event.path}` : ''}`);
        else if (event.kind === 'prefill') progress(`prefill: ${event.tokensDone}/${event.tokensTotal} tokens, ${event.stats.compressions} compressions`);
        else if (event.kind === 'token') {
          if (!answerStarted && !values.json) process.stderr.write('\n');
          answerStarted = true;
          if (!values.json) process.stdout.write(event.text);
        }
      },
    ).catch((error: unknown) => {
      // The CLI's words for an empty workspace: the folder and its options.
      if (error instanceof NoWorkspaceFilesError) throw new NoInputError(`No files to read in ${root}: ${error.message.replace(/^no files to read: /, '').replace(/^the workspace has no files/, 'the folder is empty').replace(/\. Open a folder.*$/, '')}. Run ask in a folder with text source files, pass --workspace DIR, or loosen --include/--exclude/--max-file-bytes.`);
      throw error;
    });
    const counts = result.counts;
    const warnings = [...new Set([...codecState.warnings, ...result.warnings, ...index.segments.store.warnings])];
    const built = result.indexedForAnswer.files;
    const totalMs = performance.now() - started;
    if (values.json) {
      const json = {
        text: result.text,
        stopReason: result.reason,
        model: engine.folder.dir,
        mode,
        ...result.stats,
        timeToFirstTokenMs: result.timeToFirstTokenMs,
        modelLoadMs,
        totalMs,
        workspaceTokens: counts.tokensTotal,
        filesTotal: counts.filesTotal,
        filesIndexed: counts.filesIndexed,
        tokensIndexed: counts.tokensIndexed,
        files: result.assembled.files.map((f) => ({ path: f.path, tokens: f.tokens, storedRows: f.storedRows, rows: f.rows, score: f.score, firstSlot: f.firstSlot })),
        notIndexed: result.notIndexed.map((f) => ({ path: f.path, tokens: f.tokens, score: f.score })),
        overTokenLimit: result.overTokenLimit.map((f) => ({ path: f.path, tokens: f.tokens })),
        skipped: result.skipped,
        store: cli.storeDir,
        codec: cli.codec,
        // RVQ: whether the codebooks were calibrated in this run (false: loaded from the store), and their file.
        codecCalibrated: codecState.calibrated,
        codecStateFile: codecState.file ?? null,
        codecCalibrationMs: codecState.calibrationMs,
        persisted: index.segments.store.persisting,
        segmentsBuilt: built,
        segmentsReused: result.assembled.files.length - built,
        tokensPrefilledForSegments: result.indexedForAnswer.tokens,
        segmentPrefillMs: result.indexedForAnswer.ms,
        filesRead: result.refresh?.read ?? 0,
        refreshMs: result.refresh?.ms ?? 0,
        prefillTokensPerSecondMeasured: index.prefillTokensPerSecond ?? null,
        firstAnswerTokens: result.firstAnswerTokens,
        assembleMs: result.assembled.assembleMs,
        assembledRows: result.assembled.rows,
        segmentBudget: result.assembled.segmentBudget,
        dropped: result.assembled.dropped,
        warnings,
      };
      process.stdout.write(`${JSON.stringify(json)}\n`);
    } else {
      process.stdout.write('\n');
      for (const w of warnings) say(`warning: ${w}`);
      const full = result.assembled.files.filter((f) => f.rows === f.storedRows).length;
      say(`cache: ${result.assembled.files.length} files (${full} at full resolution, ${built} prefilled for this answer), ${result.assembled.dropped.length} dropped; ${counts.filesIndexed}/${counts.filesTotal} files of the workspace indexed`);
      if (result.notIndexed.length > 0) say(`not indexed yet (not in this answer): ${result.notIndexed.slice(0, 10).map((f) => f.path).join(', ')}${result.notIndexed.length > 10 ? ` and ${result.notIndexed.length - 10} more` : ''}; run freqkv index to index the whole workspace`);
      const ttft = result.timeToFirstTokenMs === null ? 'no token' : `first token after ${(result.timeToFirstTokenMs / 1000).toFixed(2)} s`;
      say(`${statsLine(result.stats)}; ${ttft}, total ${(totalMs / 1000).toFixed(2)} s; stopped: ${result.reason}]`);
    }
    return result.reason === 'cancelled' ? 130 : 0;
  });
}

/** `ask --mode sequential`: every file in one prompt, prefilled for each question (the paper's FreqKV). */
async function askSequential(values: IndexCliValues & { model?: string; json?: boolean }, options: GenerationOptions, question: string, cli: IndexCliSettings, maxWorkspaceTokens: number): Promise<number> {
  const root = cli.root;
  return withEngine(modelToLoad(values), options, async (engine, signal, started) => {
    let lastReport = 0;
    const ingest = await ingestDirectory(root, {
      include: values.include,
      exclude: values.exclude ?? [...WORKSPACE_DEFAULTS.exclude],
      maxFileBytes: cli.maxFileBytes,
      maxTotalTokens: maxWorkspaceTokens > 0 ? maxWorkspaceTokens : undefined,
      countTokens: (text) => engine.tokenizer.encode(text, { addSpecialTokens: false }).length,
      signal,
      onProgress: (p) => {
        if (performance.now() - lastReport < 1000) return;
        lastReport = performance.now();
        process.stderr.write(`reading workspace: ${p.filesSeen} files seen, ${p.filesIncluded} included, ${p.tokens} tokens\n`);
      },
    });
    if (ingest.files.length === 0) {
      throw new NoInputError(
        `No files to read in ${root}: ${describeSkips(ingest)}. Run ask in a folder with text source files, pass --workspace DIR, or loosen --include/--exclude/--max-file-bytes.`,
      );
    }
    if (!values.json) process.stderr.write(`read ${ingest.files.length} files (${ingest.totalTokens} tokens); left out ${ingest.skipped.length} (${describeSkips(ingest)})\n`);
    const prompt = buildAskPrompt(engine.tokenizer, ingest.files, question);
    // A chat-templated prompt already carries its special tokens.
    const promptIds = engine.tokenizer.encode(prompt.text, { addSpecialTokens: !prompt.chat });
    return generateAndReport(engine, options, { promptIds, ingest, mode: 'sequential' }, values.json, signal, started);
  });
}

export async function runSummarize(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { ...GENERATION_OPTION_SPEC, 'max-file-bytes': INGEST_OPTION_SPEC['max-file-bytes'] },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1) throw new UsageError(`summarize needs exactly one FILE (got ${positionals.length}).`);
  const file = positionals[0]!;
  const options = parseGenerationOptions(values, { cache: 'freqkv' });
  // Summaries read larger files than workspace ingestion does by default.
  const maxFileBytes = intOption(values['max-file-bytes'], 'max-file-bytes', 4 * DEFAULT_MAX_FILE_BYTES, 1);
  if (!fs.existsSync(file) || !fs.statSync(file).isFile()) throw new UsageError(`${file} does not exist or is not a file.`);
  const size = fs.statSync(file).size;
  const read = await readSourceFile({ kind: 'file', path: file, size, read: (n) => readHead(file, n) }, maxFileBytes);
  if ('reason' in read) {
    const why: Record<string, string> = {
      'too-large': `is ${size} bytes, over the limit of ${maxFileBytes} (raise it with --max-file-bytes)`,
      binary: 'is a binary file (it has NUL bytes); choose a text file',
      'not-utf8': 'is not valid UTF-8 text; convert it (e.g. iconv -t UTF-8) or choose another file',
      empty: 'is empty; choose a file with some text in it',
      generated: 'looks generated (minified, or marked as generated), but it is summarized only when it is a normal text file; choose its source instead',
      unreadable: 'cannot be read',
    };
    throw new NoInputError(`${file} ${why[read.reason] ?? `cannot be summarized (${read.reason})`}.`);
  }
  const relative = path.relative(process.cwd(), path.resolve(file)).split(path.sep).join('/');
  return withEngine(modelToLoad(values), options, async (engine, signal, started) => {
    const included: IncludedFile = { path: relative, text: read.text, tokens: engine.tokenizer.encode(read.text, { addSpecialTokens: false }).length };
    const ingest: IngestResult = { files: [included], skipped: [], filesSeen: 1, totalTokens: included.tokens, totalBytes: size };
    const prompt = buildSummaryPrompt(engine.tokenizer, included);
    const promptIds = engine.tokenizer.encode(prompt.text, { addSpecialTokens: !prompt.chat });
    return generateAndReport(engine, options, { promptIds, ingest }, values.json, signal, started);
  });
}

async function withEngine(
  model: ReturnType<typeof modelToLoad>,
  options: GenerationOptions,
  run: (engine: Engine, signal: AbortSignal, started: number) => Promise<number>,
): Promise<number> {
  const loadStarted = performance.now();
  const engine = await Engine.load({ ...model, threads: options.threads });
  const note = graphNote(engine.folder);
  if (note) process.stderr.write(`${note}\n`);
  modelLoadMs = performance.now() - loadStarted;
  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  process.once('SIGINT', onSigint);
  try {
    return await run(engine, controller.signal, performance.now());
  } catch (error) {
    // Ctrl-C while reading the workspace: the same exit code as a cancelled generation.
    if (error instanceof IngestCancelledError) {
      process.stderr.write(`freqkv: ${error.message}\n`);
      return 130;
    }
    throw error;
  } finally {
    process.off('SIGINT', onSigint);
    await engine.dispose();
  }
}

let modelLoadMs = 0;

interface PromptPlan {
  promptIds: number[];
  ingest: IngestResult;
  mode?: AskMode;
}

async function generateAndReport(
  engine: Engine,
  options: GenerationOptions,
  plan: PromptPlan,
  json: boolean | undefined,
  signal: AbortSignal,
  started: number,
): Promise<number> {
  const { promptIds, ingest } = plan;
  const ingestMs = performance.now() - started;
  const cache = cacheOptionsFor(options, engine.contextLength);
  for (const warning of engine.chooseCompressor({ cache }).warnings) process.stderr.write(`warning: ${warning}\n`);
  if (!json) process.stderr.write(`prompt: ${promptIds.length} tokens, cache ${cache.method} with ${cache.capacity} rows\n`);
  let lastReport = performance.now();
  let firstTokenAt: number | undefined;
  for await (const event of engine.generate({
    promptIds,
    maxNewTokens: options.maxNewTokens,
    sampling: options.sampling,
    seed: options.seed,
    signal,
    prefillChunkSize: options.prefillChunkSize,
    cache,
  })) {
    if (event.kind === 'prefill' && !json && performance.now() - lastReport > 1000) {
      lastReport = performance.now();
      process.stderr.write(`prefill: ${event.tokensDone}/${event.tokensTotal} tokens, ${event.stats.compressions} compressions\n`);
    }
    if (event.kind === 'token') {
      firstTokenAt ??= performance.now();
      if (!json) process.stdout.write(event.text);
    }
    if (event.kind === 'done') {
      const totalMs = performance.now() - started;
      if (json) {
        const files = ingest.files.map((f) => ({ path: f.path, tokens: f.tokens }));
        const result = {
          text: event.text,
          stopReason: event.reason,
          model: engine.folder.dir,
          onnxFile: engine.folder.onnxPath,
          ...(plan.mode ? { mode: plan.mode } : {}),
          ...event.stats,
          generationTimeToFirstTokenMs: event.stats.timeToFirstTokenMs,
          // From the start of reading the workspace (after the model is loaded) to the first token.
          timeToFirstTokenMs: firstTokenAt === undefined ? null : firstTokenAt - started,
          modelLoadMs,
          ingestMs,
          totalMs,
          workspaceTokens: ingest.totalTokens,
          filesIncluded: ingest.files.length,
          filesSkipped: ingest.skipped.length,
          files,
          skipped: ingest.skipped,
        };
        process.stdout.write(`${JSON.stringify(result)}\n`);
      } else {
        process.stdout.write('\n');
        const ttft = firstTokenAt === undefined ? 'no token' : `first token after ${((firstTokenAt - started) / 1000).toFixed(2)} s`;
        process.stderr.write(`${statsLine(event.stats)}; ${ttft}, total ${(totalMs / 1000).toFixed(2)} s; stopped: ${event.reason}]\n`);
      }
      return event.reason === 'cancelled' ? 130 : 0;
    }
  }
  return 0;
}

function describeSkips(ingest: IngestResult): string {
  return ingest.filesSeen === 0 ? 'the folder is empty' : countSkips(ingest.skipped);
}
