// `freqkv ask [--workspace DIR] QUESTION` and `freqkv summarize FILE`: the extension's Ask About
// Workspace and Summarize File without VS Code. Both take generate's options (shared parser);
// the default cache is freqkv, since a workspace is usually longer than the model's context.
// Progress goes to stderr, the answer to stdout; --json prints one line with the text, the
// generation statistics and the ingestion results.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Engine } from '../engine/engine';
import { FreqKvError } from '../engine/errors';
import { DEFAULT_MAX_FILE_BYTES, IngestCancelledError, ingestDirectory, readSourceFile } from '../engine/workspace/ingest';
import { readHead } from '../engine/workspace/nodeSource';
import { countSkips } from '../engine/workspace/skipSummary';
import { buildAskPrompt, buildSummaryPrompt } from '../engine/workspace/prompt';
import type { IncludedFile, IngestResult } from '../engine/workspace/types';
import { defaultRecentWindow } from '../engine/kv/createCompressor';
import type { KvCache } from '../engine/kv/kvCache';
import type { CodecName } from '../engine/segments/codec';
import { CODEC_NAMES } from '../engine/segments/codecRegistry';
import { loadOrCalibrateCodecState, type LoadedCodecState } from '../engine/segments/codecStateStore';
import { WorkspaceSegmentCache, type AssembledCache, type UpdateReport } from '../engine/segments/workspaceSegmentCache';
import { intOption, UsageError } from './args';
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
export const DEFAULT_ASK_MODE: AskMode = 'segmented';

/** The segment store when --store is not given: $FREQKV_STORE, else the user's cache folder. */
export function defaultStoreDir(): string {
  if (process.env.FREQKV_STORE) return process.env.FREQKV_STORE;
  const base = process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache');
  return path.join(base, 'freqkv', 'segments');
}

export async function runAsk(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { ...GENERATION_OPTION_SPEC, ...INGEST_OPTION_SPEC, ...SEGMENT_OPTION_SPEC, workspace: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  const question = positionals.join(' ').trim();
  if (question === '') throw new UsageError('ask needs a question, e.g. freqkv ask "What does this project do?".');
  const options = parseGenerationOptions(values, { cache: 'freqkv' });
  const maxFileBytes = intOption(values['max-file-bytes'], 'max-file-bytes', DEFAULT_MAX_FILE_BYTES, 1);
  const mode = (values.mode ?? DEFAULT_ASK_MODE) as AskMode;
  if (!ASK_MODES.includes(mode)) throw new UsageError(`--mode must be one of ${ASK_MODES.join(', ')} (got '${values.mode}').`);
  // int8: a quarter of float32's bytes at the same fidelity in the workspace benchmark, and no calibration (rvq needs one).
  const codec = (values.codec ?? 'int8') as CodecName;
  if (!CODEC_NAMES.includes(codec)) throw new UsageError(`--codec must be one of ${CODEC_NAMES.join(', ')} (got '${values.codec}').`);
  const storeMaxMb = intOption(values['store-max-mb'], 'store-max-mb', 2048, 1);
  const root = path.resolve(values.workspace ?? process.cwd());
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) throw new UsageError(`--workspace ${root} does not exist or is not a folder.`);

  return withEngine(modelToLoad(values), options, async (engine, signal, started) => {
    let lastReport = 0;
    const ingest = await ingestDirectory(root, {
      include: values.include,
      exclude: values.exclude,
      maxFileBytes,
      // Segmented mode counts tokens when it prefills a file, and only then.
      countTokens: mode === 'sequential' ? (text) => engine.tokenizer.encode(text, { addSpecialTokens: false }).length : undefined,
      signal,
      onProgress: (p) => {
        if (values.json || performance.now() - lastReport < 1000) return;
        lastReport = performance.now();
        process.stderr.write(`reading workspace: ${p.filesSeen} files seen, ${p.filesIncluded} included${mode === 'sequential' ? `, ${p.tokens} tokens` : ''}\n`);
      },
    });
    if (ingest.files.length === 0) {
      throw new NoInputError(
        `No files to read in ${root}: ${describeSkips(ingest)}. Run ask in a folder with text source files, pass --workspace DIR, or loosen --include/--exclude/--max-file-bytes.`,
      );
    }
    if (!values.json) process.stderr.write(`read ${ingest.files.length} files${mode === 'sequential' ? ` (${ingest.totalTokens} tokens)` : ''}; left out ${ingest.skipped.length} (${describeSkips(ingest)})\n`);
    if (mode === 'sequential') {
      const prompt = buildAskPrompt(engine.tokenizer, ingest.files, question);
      // A chat-templated prompt already carries its special tokens.
      const promptIds = engine.tokenizer.encode(prompt.text, { addSpecialTokens: !prompt.chat });
      return generateAndReport(engine, options, { promptIds, ingest, mode }, values.json, signal, started);
    }

    const cacheOptions = cacheOptionsFor(options, engine.contextLength);
    const capacity = cacheOptions.capacity!;
    const storeDir = path.resolve(values.store ?? defaultStoreDir());
    // RVQ's codebooks: saved in the store per model, calibrated on the model the first time.
    const codecState = await loadOrCalibrateCodecState(engine.session, engine.folder, storeDir, codec, {
      onCalibrating: () => {
        if (!values.json) process.stderr.write(`calibrating the ${codec} codebooks on ${path.basename(engine.folder.dir)} (once per model and store)…\n`);
      },
    });
    const segments = new WorkspaceSegmentCache(engine.session, engine.tokenizer, engine.folder, {
      codec,
      codecState: codecState.state,
      capacity,
      sinks: options.sinks,
      retain: options.retain,
      recent: options.recent ?? defaultRecentWindow(capacity, options.sinks),
      prefillChunk: options.prefillChunkSize,
      storeDir,
      maxStoreBytes: storeMaxMb * 1024 * 1024,
      workspaceId: root,
    });
    lastReport = performance.now();
    const update = await segments.update(
      ingest.files,
      (p) => {
        if (values.json || performance.now() - lastReport < 1000) return;
        lastReport = performance.now();
        process.stderr.write(`segments: ${p.filesDone}/${p.filesTotal} files, ${p.built} prefilled (${p.tokensPrefilled} tokens)\n`);
      },
      signal,
    );
    if (!values.json) {
      process.stderr.write(`segments: ${update.reused} reused, ${update.built} prefilled (${update.tokensPrefilled} tokens, ${(update.ms / 1000).toFixed(2)} s), ${update.removed} collected; store ${segments.store.dir}\n`);
    }
    const assembled = await segments.assemble(question, { reserveRows: Math.min(options.maxNewTokens, 64) });
    const warnings = [...new Set([...codecState.warnings, ...update.warnings, ...assembled.warnings])];
    if (!values.json) {
      for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
      const full = assembled.files.filter((f) => f.rows === f.storedRows).length;
      process.stderr.write(
        `assembled ${assembled.cache.rows} rows: ${assembled.files.length} files (${full} at full resolution), ${assembled.dropped.length} dropped, standing for ${assembled.tokensRepresented} tokens\n`,
      );
    }
    return generateAndReport(engine, options, { promptIds: assembled.questionIds, ingest, mode, segments: { update, assembled, store: segments.store.dir, warnings, codec, codecState } }, values.json, signal, started);
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
  /** Segmented mode: what the store did and the assembled cache generation starts from. */
  segments?: { update: UpdateReport; assembled: AssembledCache; store: string | undefined; warnings: string[]; codec: CodecName; codecState: LoadedCodecState };
}

async function generateAndReport(
  engine: Engine,
  options: GenerationOptions,
  plan: PromptPlan,
  json: boolean | undefined,
  signal: AbortSignal,
  started: number,
): Promise<number> {
  const { promptIds, ingest, segments } = plan;
  const ingestMs = performance.now() - started;
  const cache = cacheOptionsFor(options, engine.contextLength);
  for (const warning of engine.chooseCompressor({ cache }).warnings) process.stderr.write(`warning: ${warning}\n`);
  if (!json) process.stderr.write(`prompt: ${promptIds.length} tokens, cache ${cache.method} with ${cache.capacity} rows\n`);
  const startCache: KvCache | undefined = segments?.assembled.cache;
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
    startCache,
    cachedTokens: segments?.assembled.tokensRepresented,
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
        const files = segments
          ? segments.assembled.files.map((f) => ({ path: f.path, tokens: f.tokens, storedRows: f.storedRows, rows: f.rows, score: f.score, firstSlot: f.firstSlot }))
          : ingest.files.map((f) => ({ path: f.path, tokens: f.tokens }));
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
          workspaceTokens: segments ? segments.update.workspaceTokens : ingest.totalTokens,
          filesIncluded: ingest.files.length,
          filesSkipped: ingest.skipped.length,
          files,
          skipped: ingest.skipped,
          ...(segments
            ? {
                store: segments.store ?? null,
                codec: segments.codec,
                // RVQ: whether the codebooks were calibrated in this run (false: loaded from the store), and their file.
                codecCalibrated: segments.codecState.calibrated,
                codecStateFile: segments.codecState.file ?? null,
                codecCalibrationMs: segments.codecState.calibrationMs,
                persisted: segments.update.persisted,
                segmentsBuilt: segments.update.built,
                segmentsReused: segments.update.reused,
                segmentsRebuiltCorrupt: segments.update.rebuiltCorrupt,
                segmentsRemoved: segments.update.removed,
                tokensPrefilledForSegments: segments.update.tokensPrefilled,
                segmentUpdateMs: segments.update.ms,
                assembleMs: segments.assembled.assembleMs,
                assembledRows: segments.assembled.cache.rows,
                segmentBudget: segments.assembled.segmentBudget,
                dropped: segments.assembled.dropped,
                warnings: segments.warnings,
              }
            : {}),
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
