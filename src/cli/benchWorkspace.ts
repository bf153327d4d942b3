// `freqkv bench workspace`: the workspace index (src/engine/index) measured on a model, through
// the same askWorkspace the CLI and the extension's worker call.
//
// Timing, on a copy of --workspace (default: the current folder) with a fresh store in a temp
// folder: the engine's own prefill speed on one long prompt (the peer); the time to the first
// token cold (empty store: answer-first prefill within the first-answer budget) and warm (the
// same question, the index reopened from its manifest as a new process would); background
// indexing throughput (bounded by --index-seconds) against the engine's prefill speed; warm after
// indexing; one edited file asked about; questions whose answer lives in one known file
// (--questions, default bench/questions/this-repository.json, those whose file the workspace
// has); the sequential single pass; peak RSS; and disk bytes per token for each codec (the stored segments re-encoded with each; RVQ with codebooks calibrated
// on the model as `ask --codec rvq` does, in the temp store).
//
// Fidelity (skip with --no-fidelity), on a small workspace of stories the model knows (its own
// samples and the shipped story), small enough that a full cache holds it within the trained
// context: the perplexity of a held-back continuation of one file, scored teacher-forced after
// the cache, for the sequential full-resolution cache (the reference), sequential FreqKV and the
// assembled segmented cache for each codec at several budgets (KL and top-1 agreement against the
// reference); and the recall probe across files (a passage in the first file, repeated after the
// last). The segmented cache gets as many rows at the start as sequential FreqKV at the same N
// holds when the continuation starts, so the two are compared at equal memory.
// Every question has an expected file (--expect for --question, README.md for the default one;
// the edited file for the question about it; the implementation for --questions), and each ask
// reports the rows the cache kept of that file's stored rows and whether that is at least half.
// Writes JSON and Markdown (default bench-results/workspace-index.json and .md).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Engine } from '../engine/engine';
import { klDivergence, argmax, perplexityOf } from '../engine/eval/fidelity';
import { scoreTokens } from '../engine/eval/scoreTokens';
import { createCompressor, defaultRecentWindow } from '../engine/kv/createCompressor';
import type { KvCompressor } from '../engine/kv/compressor';
import type { CodecName } from '../engine/segments/codec';
import { CODEC_NAMES, createSegmentCodec, type CodecState } from '../engine/segments/codecRegistry';
import { loadOrCalibrateCodecState } from '../engine/segments/codecStateStore';
import { decodeSegmentFile, encodeSegmentFile } from '../engine/segments/segmentFile';
import { WorkspaceSegmentCache, type AssembledCache, type SegmentCacheSettings, type WorkspaceFileEntry } from '../engine/segments/workspaceSegmentCache';
import { askWorkspace, openWorkspaceIndex, type IndexSettings } from '../engine/index/askWorkspace';
import { WORKSPACE_DEFAULTS } from '../engine/index/defaults';
import type { WorkspaceIndex } from '../engine/index/workspaceIndex';
import { DirectorySource } from '../engine/index/directorySource';
import { ingestDirectory } from '../engine/workspace/ingest';
import { buildAskPrompt, segmentText } from '../engine/workspace/prompt';
import { floatOption, intOption, UsageError } from './args';
import { readTextFile, shippedTextPath } from './benchFidelity';
import { MODEL_OPTION_SPEC, modelToLoad } from './defaultModel';
import { readQuestions, repositoryQuestionsPath } from './benchQuestions';

const QUESTION = 'What does this project do?';
/** The file that answers QUESTION, when the workspace has it. */
const QUESTION_FILE = 'README.md';

/** Where a question's expected file ended up in the assembled cache. */
interface ExpectedFile {
  path: string;
  /** Rows the cache kept of it, and the rows its segment stores (null when it is not in the cache). */
  rows: number | null;
  storedRows: number | null;
  /** rows / storedRows ≥ 0.5. */
  atHalf: boolean;
  /** 'in the cache', or why not: 'not indexed yet', 'over the token limit', 'dropped: …', 'not in the workspace'. */
  status: string;
}

interface TimedAsk {
  question: string;
  ttftMs: number;
  refreshMs: number;
  filesRead: number;
  indexedForAnswer: number;
  tokensForAnswer: number;
  assembleMs: number;
  filesInCache: number;
  notIndexed: number;
  expected: ExpectedFile | null;
  text: string;
}

interface FidelityRow {
  probe: 'continuation' | 'recall';
  method: string;
  budget: number | null;
  /** Rows in the cache when scoring starts. */
  startRows: number;
  /** Files at full resolution / files in the cache (segmented only). */
  filesFull: number | null;
  filesIn: number | null;
  perplexity: number;
  kl: number | null;
  top1: number | null;
  /** Recall probe: mean loss on the repeated passage, with and without its first occurrence. */
  recallLoss: number | null;
  recallLossWithoutFirst: number | null;
}

export async function runBenchWorkspace(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...MODEL_OPTION_SPEC,
      workspace: { type: 'string' },
      json: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'no-sequential': { type: 'boolean', default: false },
      'no-fidelity': { type: 'boolean', default: false },
      threads: { type: 'string' },
      repeats: { type: 'string' },
      codec: { type: 'string' },
      question: { type: 'string' },
      'index-seconds': { type: 'string' },
      'first-answer-seconds': { type: 'string' },
      'max-files': { type: 'string' },
      codecs: { type: 'string' },
      expect: { type: 'string' },
      questions: { type: 'string' },
      'question-count': { type: 'string' },
    },
    strict: true,
  });
  const quick = values.quick ?? false;
  const root = path.resolve(values.workspace ?? process.cwd());
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) throw new UsageError(`--workspace ${root} does not exist or is not a folder.`);
  const jsonOut = path.resolve(values.json ?? path.join('bench-results', 'workspace-index.json'));
  const threads = intOption(values.threads, 'threads', 0, 0);
  const repeats = intOption(values.repeats, 'repeats', quick ? 1 : 3, 1);
  const indexSeconds = values['index-seconds'] === undefined ? Infinity : floatOption(values['index-seconds'], 'index-seconds', 0, (n) => n > 0, 'a number of seconds > 0');
  const firstAnswerSeconds = floatOption(values['first-answer-seconds'], 'first-answer-seconds', WORKSPACE_DEFAULTS.firstAnswerSeconds, (n) => n >= 0, 'a number of seconds >= 0');
  const maxFiles = intOption(values['max-files'], 'max-files', WORKSPACE_DEFAULTS.maxFiles, 1);
  const indexCodec = (values.codec ?? WORKSPACE_DEFAULTS.codec) as CodecName;
  if (!CODEC_NAMES.includes(indexCodec)) throw new UsageError(`--codec must be one of ${CODEC_NAMES.join(', ')} (got '${values.codec}').`);
  const question = values.question ?? QUESTION;
  const questionsFile = path.resolve(values.questions ?? repositoryQuestionsPath());
  const implementationQuestions = values.questions === undefined && !fs.existsSync(questionsFile) ? [] : readQuestions(questionsFile);
  const questionCount = intOption(values['question-count'], 'question-count', implementationQuestions.length, 0);
  const started = performance.now();
  const log = (message: string): void => {
    process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1)} s] ${message}\n`);
  };
  const engine = await Engine.load({ ...modelToLoad(values), threads });
  const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'freqkv-bench-ws-'));
  try {
    const capacity = engine.contextLength;
    // The codecs whose bytes per token are measured (rvq calibrates its codebooks on the model first).
    const measuredCodecs = (values.codecs ?? CODEC_NAMES.join(',')).split(',').map((c) => c.trim()) as CodecName[];
    for (const c of measuredCodecs) if (!CODEC_NAMES.includes(c)) throw new UsageError(`--codecs takes a list of ${CODEC_NAMES.join(', ')} (got '${c}').`);
    const codecStates: Partial<Record<CodecName, CodecState>> = {};
    if (measuredCodecs.includes('rvq') || indexCodec === 'rvq') {
      const rvq = await loadOrCalibrateCodecState(engine.session, engine.folder, path.join(temp, 'store'), 'rvq');
      log(`rvq codebooks calibrated in ${(rvq.calibrationMs / 1000).toFixed(1)} s`);
      codecStates.rvq = rvq.state;
    }
    const base = (storeDir: string | undefined, codec: CodecName = 'float32'): SegmentCacheSettings => ({
      codec,
      codecState: codecStates[codec],
      capacity,
      sinks: 4,
      retain: 0.5,
      recent: defaultRecentWindow(capacity, 4),
      storeDir,
      workspaceId: root,
    });

    // ---- timing on a copy of the workspace (one file is edited) through askWorkspace ----------
    // The questions' own file takes no part (it names the files that answer them).
    const questionsInRoot = path.relative(root, questionsFile).split(path.sep).join('/');
    const leftOut = questionsInRoot.startsWith('..') || path.isAbsolute(questionsInRoot) ? [] : [questionsInRoot];
    const ingest = await ingestDirectory(root, { exclude: [...WORKSPACE_DEFAULTS.exclude, ...leftOut], maxFileBytes: WORKSPACE_DEFAULTS.maxFileBytes });
    if (ingest.files.length === 0) throw new UsageError(`--workspace ${root} has no files to read.`);
    const copy = path.join(temp, 'workspace');
    for (const f of ingest.files) {
      fs.mkdirSync(path.dirname(path.join(copy, f.path)), { recursive: true });
      fs.writeFileSync(path.join(copy, f.path), f.text);
    }
    const bySize = [...ingest.files].sort((a, b) => a.text.length - b.text.length);
    const inWorkspace = new Set(bySize.map((f) => f.path));
    const expectForQuestion = values.expect ?? (values.question === undefined && inWorkspace.has(QUESTION_FILE) ? QUESTION_FILE : undefined);
    if (values.expect !== undefined && !inWorkspace.has(values.expect)) throw new UsageError(`--expect ${values.expect} is not a file of the workspace as ask reads it (give its path relative to ${root}, with forward slashes).`);
    const asked = implementationQuestions.filter((q) => inWorkspace.has(q.implementation)).slice(0, questionCount);
    ingest.files.length = 0; // the texts are not kept (the index reads the copy)
    log(`workspace ${root}: copied ${bySize.length} files to ${copy}`);
    const store = path.join(temp, 'store');

    // The engine's own prefill speed, the peer of the index throughput: one long prompt, same chunk.
    const peerText = fs.readFileSync(path.join(copy, bySize[bySize.length - 1]!.path), 'utf8');
    const peerIds = engine.tokenizer.encode(peerText, { addSpecialTokens: false }).slice(0, quick ? 256 : 2048);
    const measurePrefill = async (): Promise<number> => {
      let tokensPerSecond = 0;
      for await (const event of engine.generate({ promptIds: peerIds, maxNewTokens: 1, sampling: { temperature: 0 }, cache: { method: 'freqkv', capacity } })) {
        if (event.kind === 'done') tokensPerSecond = event.stats.prefillTokensPerSecond;
      }
      log(`engine prefill: ${tokensPerSecond.toFixed(0)} tokens/s (${peerIds.length} tokens, one prompt)`);
      return tokensPerSecond;
    };
    const enginePrefillTokensPerSecond = await measurePrefill();

    const settings: IndexSettings = { codec: indexCodec, capacity, storeDir: store, workspaceId: copy, maxFiles };
    let lastIndex: WorkspaceIndex | undefined;
    const timedAsk = async (label: string, q = question, expect = q === question ? expectForQuestion : undefined, sameProcess = false): Promise<TimedAsk> => {
      // A new index each time, reopened from its manifest as a new process would (or the last one, as the extension's worker keeps it).
      const t0 = performance.now();
      const index = sameProcess && lastIndex ? lastIndex : (await openWorkspaceIndex(engine, settings, new DirectorySource([{ dir: copy }], { exclude: [...WORKSPACE_DEFAULTS.exclude] }))).index;
      lastIndex = index;
      // Asked again in the same process: nothing prefilled, so the files and their rows are the last answer's.
      const r = await askWorkspace(engine, index, q, { maxNewTokens: 1, sampling: { temperature: 0 }, firstAnswerSeconds: sameProcess ? 0 : firstAnswerSeconds, maxWorkspaceTokens: WORKSPACE_DEFAULTS.maxWorkspaceTokens });
      const ttftMs = performance.now() - t0;
      const out: TimedAsk = {
        question: q,
        ttftMs,
        refreshMs: r.refresh?.ms ?? 0,
        filesRead: r.refresh?.read ?? 0,
        indexedForAnswer: r.indexedForAnswer.files,
        tokensForAnswer: r.indexedForAnswer.tokens,
        assembleMs: r.assembled.assembleMs,
        filesInCache: r.assembled.files.length,
        notIndexed: r.notIndexed.length,
        expected: expect === undefined ? null : expectedFile(expect, r),
        text: r.text,
      };
      const e = out.expected;
      const where = e === null ? '' : `; expected ${e.path}: ${e.rows === null ? e.status : `${e.rows} of ${e.storedRows} rows${e.atHalf ? ' (at least half)' : ''}`}`;
      log(`${label}: first token after ${(ttftMs / 1000).toFixed(2)} s (refresh ${(out.refreshMs / 1000).toFixed(2)} s reading ${out.filesRead} files; ${out.indexedForAnswer} files / ${out.tokensForAnswer} tokens prefilled for the answer; assembly ${(out.assembleMs / 1000).toFixed(2)} s; ${out.filesInCache} files in the cache; ${out.notIndexed} not indexed yet${where})`);
      return out;
    };
    const cold = await timedAsk('cold (empty store)');
    const warmRuns = [];
    for (let r = 0; r < repeats; r++) warmRuns.push(await timedAsk(`warm ${r + 1}`));
    const warm = [...warmRuns].sort((a, b) => a.ttftMs - b.ttftMs)[Math.floor(warmRuns.length / 2)]!;

    // Background indexing of the rest (bounded by --index-seconds), against the engine's prefill speed.
    const { index } = await openWorkspaceIndex(engine, settings, new DirectorySource([{ dir: copy }], { exclude: [...WORKSPACE_DEFAULTS.exclude] }));
    await index.refresh();
    // The peer again, next to the indexing run (the machine's load changes).
    const prefillNextToIndex = await measurePrefill();
    const stop = new AbortController();
    const timer = Number.isFinite(indexSeconds) ? setTimeout(() => stop.abort(), indexSeconds * 1000) : undefined;
    let lastLog = 0;
    const run = await index.indexPending({
      signal: stop.signal,
      onProgress: (p) => {
        if (performance.now() - lastLog < 10_000) return;
        lastLog = performance.now();
        log(`indexing: ${p.filesDone}/${p.filesTotal} files, ${p.tokensDone}/${p.tokensTotal} tokens, ${p.tokensPerSecond.toFixed(0)} tokens/s`);
      },
    });
    clearTimeout(timer);
    const counts = index.counts();
    const indexTokensPerSecond = (run.tokensIndexed / run.ms) * 1000;
    log(`index: ${run.filesIndexed} files, ${run.tokensIndexed} tokens in ${(run.ms / 1000).toFixed(1)} s = ${indexTokensPerSecond.toFixed(0)} tokens/s (${((100 * indexTokensPerSecond) / prefillNextToIndex).toFixed(0)} % of the engine's prefill); ${counts.filesIndexed}/${counts.filesTotal} files, ${counts.tokensIndexed}/${counts.tokensTotal} tokens indexed${run.stopped ? ' (stopped by --index-seconds)' : ''}`);
    const afterIndex = await timedAsk('warm after indexing');
    // The same question again in the same process (the worker keeps its index and the rows it
    // rebuilt), with nothing more prefilled: the assembly of the same files from kept rows.
    const afterIndexSameProcess = await timedAsk('warm after indexing, same process, nothing prefilled', question, undefined, true);

    // One edited file: the median-sized indexed one, a line appended (in the copy).
    const indexed = bySize.filter((f) => index.files.get(f.path)?.segment !== undefined);
    const editedPath = (indexed.length > 0 ? indexed : bySize)[Math.floor((indexed.length > 0 ? indexed : bySize).length / 2)]!.path;
    fs.appendFileSync(path.join(copy, editedPath), '\n// edited\n');
    const edited = await timedAsk(`one edited file (${editedPath}), asked about`, `${question} ${path.basename(editedPath).replace(/\.[^.]*$/, '')}`, editedPath);

    // Questions whose answer lives in one known file, each asked as a new process would (the
    // index as the steps above left it: files prefilled within the first-answer budget stay).
    const questionRuns: (TimedAsk & { label: string })[] = [];
    for (const [i, q] of asked.entries()) questionRuns.push({ label: `question ${i + 1}`, ...(await timedAsk(`question ${i + 1} (${q.question})`, q.question, q.implementation)) });

    // Disk bytes per workspace token, per codec: the stored segments re-encoded with each codec.
    const segmentsDir = path.join(store, 'v1', 'segments');
    const segmentFiles = fs.readdirSync(segmentsDir).filter((f) => f.endsWith('.seg'));
    const stored = createSegmentCodec(indexCodec, codecStates[indexCodec]);
    const codecs: { codec: string; diskBytes: number | null; bytesPerToken: number | null; note?: string }[] = [];
    let segmentTokens = 0;
    for (const file of segmentFiles) segmentTokens += decodeSegmentFile(fs.readFileSync(path.join(segmentsDir, file))).header.tokens;
    for (const name of measuredCodecs) {
      const codec = createSegmentCodec(name, codecStates[name]);
      let bytes = 0;
      for (const file of segmentFiles) {
        const raw = fs.readFileSync(path.join(segmentsDir, file));
        if (name === indexCodec) {
          bytes += raw.length;
          continue;
        }
        const { header, blocks } = decodeSegmentFile(raw);
        const encoded = blocks.map((b, k) => codec.encode(stored.decode(b, k % 2 === 0 ? 'key' : 'value', k >> 1), k % 2 === 0 ? 'key' : 'value', k >> 1));
        bytes += encodeSegmentFile({ ...header, codec: name }, encoded).length;
      }
      codecs.push({ codec: name, diskBytes: bytes, bytesPerToken: segmentTokens > 0 ? bytes / segmentTokens : null });
    }
    const cacheBytesPerRow = engine.session.createCache(1).bytesPerRow;
    log(`disk bytes per token (${segmentFiles.length} segments, ${segmentTokens} tokens): ${codecs.map((c) => `${c.codec} ${c.bytesPerToken?.toFixed(1) ?? 'n/a'}`).join(', ')} (a full cache row: ${cacheBytesPerRow} bytes)`);

    // The sequential single pass (the paper's mode) over the whole workspace, to the first token.
    let sequential: { ttftMs: number; promptTokens: number; compressions: number } | null = null;
    if (!values['no-sequential']) {
      const t0 = performance.now();
      const files = bySize.map((f) => ({ path: f.path, text: fs.readFileSync(path.join(copy, f.path), 'utf8') })).sort((a, b) => (a.path < b.path ? -1 : 1));
      const prompt = buildAskPrompt(engine.tokenizer, files, question);
      const promptIds = engine.tokenizer.encode(prompt.text, { addSpecialTokens: !prompt.chat });
      let compressions = 0;
      for await (const event of engine.generate({ promptIds, maxNewTokens: 1, sampling: { temperature: 0, topP: 1, topK: 0, repetitionPenalty: 1 }, cache: { method: 'freqkv', capacity } })) {
        if (event.kind === 'token' || event.kind === 'done') {
          compressions = event.stats.compressions;
          break;
        }
      }
      sequential = { ttftMs: performance.now() - t0, promptTokens: promptIds.length, compressions };
      log(`sequential: ${promptIds.length} tokens, first token after ${(sequential.ttftMs / 1000).toFixed(2)} s`);
    }

    // ---- fidelity on a workspace of stories -------------------------------------------------
    const fidelity = values['no-fidelity'] ? null : await measureFidelity(engine, quick, base, log);
    const peakRssBytes = process.resourceUsage().maxRSS * 1024;

    const result = {
      model: path.basename(engine.folder.dir),
      capacity,
      workspace: root,
      quick,
      question,
      codec: indexCodec,
      firstAnswerSeconds,
      files: bySize.length,
      workspaceTokens: counts.tokensTotal,
      timing: {
        enginePrefillTokensPerSecond,
        coldTimeToFirstTokenMs: cold.ttftMs,
        cold,
        warmTimeToFirstTokenMs: warm.ttftMs,
        warmRuns,
        coldIngestMs: run.ms,
        coldIngestTokensPerSecond: indexTokensPerSecond,
        indexFiles: run.filesIndexed,
        indexTokens: run.tokensIndexed,
        indexStoppedByTimeLimit: run.stopped,
        enginePrefillNextToIndexTokensPerSecond: prefillNextToIndex,
        indexThroughputVsPrefill: indexTokensPerSecond / prefillNextToIndex,
        filesIndexedAfter: counts.filesIndexed,
        tokensIndexedAfter: counts.tokensIndexed,
        warmAfterIndexTimeToFirstTokenMs: afterIndex.ttftMs,
        warmAfterIndex: afterIndex,
        warmAfterIndexSameProcessTimeToFirstTokenMs: afterIndexSameProcess.ttftMs,
        warmAfterIndexSameProcess: afterIndexSameProcess,
        editedFile: editedPath,
        editedFileTimeToFirstTokenMs: edited.ttftMs,
        editedFileTokensPrefilled: edited.tokensForAnswer,
        edited,
        questions: questionRuns,
        questionsFile: asked.length > 0 ? questionsFile : null,
        sequentialTimeToFirstTokenMs: sequential?.ttftMs ?? null,
        sequentialPromptTokens: sequential?.promptTokens ?? null,
        sequentialCompressions: sequential?.compressions ?? null,
        peakRssBytes,
        note: 'model loaded once; each ask opens the workspace index from its manifest (as a new process would) and calls askWorkspace; times run from that call to the first token and include the refresh (stat walk, reading changed files), prefill for the answer, assembly and the question',
      },
      disk: { cacheBytesPerRow, segments: segmentFiles.length, segmentTokens, codecs },
      fidelity,
      seconds: (performance.now() - started) / 1000,
    };
    fs.mkdirSync(path.dirname(jsonOut), { recursive: true });
    fs.writeFileSync(jsonOut, `${JSON.stringify(result, null, 2)}\n`);
    fs.writeFileSync(jsonOut.replace(/\.json$/, '') + '.md', markdown(result));
    log(`wrote ${jsonOut} and ${jsonOut.replace(/\.json$/, '')}.md in ${result.seconds.toFixed(1)} s`);
    return 0;
  } finally {
    fs.rmSync(temp, { recursive: true, force: true });
    await engine.dispose();
  }
}

interface FidelityResult {
  files: { path: string; tokens: number }[];
  continuationFile: string;
  continuationTokens: number;
  recallPassageTokens: number;
  rows: FidelityRow[];
}

async function measureFidelity(
  engine: Engine,
  quick: boolean,
  base: (storeDir: string | undefined, codec?: CodecName) => SegmentCacheSettings,
  log: (message: string) => void,
): Promise<FidelityResult> {
  const trained = engine.contextLength;
  const tok = engine.tokenizer;
  const encode = (text: string): number[] => tok.encode(text, { addSpecialTokens: false });
  // The model's own stories (full cache from BOS, temperature 1, fixed seeds).
  const bos = tok.bosTokenId ?? engine.folder.bosTokenId;
  const sample = async (seed: number, tokens: number): Promise<string> => {
    let text = '';
    for await (const event of engine.generate({ promptIds: bos === undefined ? encode('Once') : [bos], maxNewTokens: tokens, sampling: { temperature: 1, topP: 1, topK: 0, repetitionPenalty: 1 }, seed })) {
      if (event.kind === 'done') text = event.text;
    }
    return text.trim();
  };
  const stories: WorkspaceFileEntry[] = [];
  for (let i = 0; i < 3; i++) stories.push({ path: `stories/sample${i + 1}.txt`, text: await sample(2000 + i, 50) });
  // The shipped story: its first paragraphs are a file; the next ones are the held-back continuation.
  const paragraphs = readTextFile(shippedTextPath()).split(/\n\s*\n/).map((p) => p.trim()).filter((p) => p !== '');
  const head = paragraphs[0]!;
  const continuationIds = encode(paragraphs.slice(1).join('\n\n')).slice(0, quick ? 48 : 96);
  const story = { path: 'lighthouse.txt', text: head };
  const files = [...stories, story];
  const budgets = quick ? [trained, trained / 4] : [trained, trained / 2, (3 * trained) / 8, trained / 4];
  const codecs = CODEC_NAMES;
  const rows: FidelityRow[] = [];

  const runProbe = async (probe: 'continuation' | 'recall', probeFiles: WorkspaceFileEntry[], scored: number[], focus: string, lossFrom: number): Promise<{ rows: FidelityRow[]; losses: Map<string, number> }> => {
    const ordered = probe === 'recall' ? probeFiles : [...probeFiles.filter((f) => f.path !== focus), probeFiles.find((f) => f.path === focus)!];
    const context: number[] = [];
    const prefix = new WorkspaceSegmentCache(engine.session, tok, engine.folder, base(undefined)).prefixIds;
    context.push(...prefix);
    for (const f of ordered) context.push(...encode(segmentText(f)));
    const all = [...context, ...scored];
    if (all.length > trained) throw new Error(`the fidelity workspace has ${all.length} tokens, over the trained context ${trained}`);
    const out: FidelityRow[] = [];
    const losses = new Map<string, number>();
    // Scores positions predicting scored[1…]; logits kept for KL against the reference.
    const score = async (compressor: KvCompressor, tokens: number[], offset: number, startCache?: AssembledCache['cache']): Promise<{ logProbs: number[]; logits: Float32Array[]; startRows: number }> => {
      const logits: Float32Array[] = [];
      const result = await scoreTokens(engine.session, compressor, tokens, {
        startCache,
        onLogits: (position, row) => {
          if (position >= offset) logits.push(row.slice());
        },
      });
      // The rows the first scored token attended to, itself excluded.
      return { logProbs: Array.from(result.logProbs.subarray(offset)), logits, startRows: result.cacheRows[offset]! - 1 };
    };
    const reference = await score(createCompressor({ method: 'full', capacity: all.length }, engine.folder.config).compressor, all, context.length);
    const row = (method: string, budget: number | null, r: { logProbs: number[]; logits: Float32Array[]; startRows: number }, assembled?: AssembledCache): FidelityRow => {
      let kl = 0;
      let agree = 0;
      for (let i = 0; i < r.logits.length; i++) {
        kl += klDivergence(reference.logits[i]!, r.logits[i]!);
        if (argmax(reference.logits[i]!) === argmax(r.logits[i]!)) agree++;
      }
      const loss = -r.logProbs.slice(lossFrom).reduce((a, b) => a + b, 0) / Math.max(1, r.logProbs.length - lossFrom);
      losses.set(`${method}@${budget}`, loss);
      return {
        probe,
        method,
        budget,
        startRows: r.startRows,
        filesFull: assembled ? assembled.files.filter((f) => f.rows === f.storedRows).length : null,
        filesIn: assembled ? assembled.files.length : null,
        perplexity: perplexityOf(r.logProbs) ?? NaN,
        kl: method === 'sequential-full' ? null : kl / r.logits.length,
        top1: method === 'sequential-full' ? null : agree / r.logits.length,
        recallLoss: probe === 'recall' ? loss : null,
        recallLossWithoutFirst: null,
      };
    };
    out.push(row('sequential-full', null, reference));
    for (const budget of budgets) {
      const freqkv = (): KvCompressor => createCompressor({ method: 'freqkv', capacity: budget, sinks: 4, retain: 0.5, recent: defaultRecentWindow(budget, 4) }, engine.folder.config).compressor;
      const sequential = await score(freqkv(), all, context.length);
      out.push(row('sequential-freqkv', budget, sequential));
      // The same rows at the start as sequential FreqKV had (equal memory).
      const question = tok.decode(scored);
      const segmentRows = sequential.startRows - prefix.length;
      for (const codec of codecs) {
        const segments = new WorkspaceSegmentCache(engine.session, tok, engine.folder, base(undefined, codec));
        await segments.update(probeFiles);
        const assembled = await segments.assemble(question, { budget, segmentRows, focus, order: ordered.map((f) => f.path) });
        const scoredRow = await score(freqkv(), scored, 0, assembled.cache);
        out.push(row(`segmented-${codec}`, budget, scoredRow, assembled));
      }
    }
    return { rows: out, losses };
  };

  const continuation = await runProbe('continuation', files, continuationIds, story.path, 0);
  rows.push(...continuation.rows);
  log(`fidelity: continuation of ${story.path} (${continuationIds.length} tokens) scored for ${continuation.rows.length} settings`);

  // Recall probe across files: a passage in the first file, repeated as the text scored after
  // the last; the control has other text of the same length in the first file.
  const passage = paragraphs[0]!.split(/(?<=\.)\s+/).slice(0, 2).join(' ');
  const passageTokens = encode(passage).length;
  const filler = (await sample(3000, passageTokens + 10)).slice(0, passage.length);
  const probeIds = encode(segmentText({ path: 'copy.txt', text: passage }));
  const lossFrom = probeIds.length - passageTokens;
  const recallFiles = (first: string): WorkspaceFileEntry[] => [{ path: 'passage.txt', text: first }, ...stories];
  const withFirst = await runProbe('recall', recallFiles(passage), probeIds, 'passage.txt', lossFrom);
  const withoutFirst = await runProbe('recall', recallFiles(filler), probeIds, 'passage.txt', lossFrom);
  for (const r of withFirst.rows) r.recallLossWithoutFirst = withoutFirst.losses.get(`${r.method}@${r.budget}`) ?? null;
  rows.push(...withFirst.rows);
  log(`fidelity: recall probe across files (${passageTokens} passage tokens)`);
  return {
    files: files.map((f) => ({ path: f.path, tokens: encode(segmentText(f)).length })),
    continuationFile: story.path,
    continuationTokens: continuationIds.length,
    recallPassageTokens: passageTokens,
    rows,
  };
}

function markdown(r: {
  model: string;
  capacity: number;
  workspace: string;
  files: number;
  workspaceTokens: number;
  codec: string;
  firstAnswerSeconds: number;
  timing: Record<string, unknown> & {
    enginePrefillTokensPerSecond: number;
    coldIngestMs: number;
    coldIngestTokensPerSecond: number;
    indexThroughputVsPrefill: number;
    indexFiles: number;
    indexTokens: number;
    filesIndexedAfter: number;
    tokensIndexedAfter: number;
    coldTimeToFirstTokenMs: number;
    warmTimeToFirstTokenMs: number;
    warmAfterIndexTimeToFirstTokenMs: number;
    editedFileTimeToFirstTokenMs: number;
    editedFileTokensPrefilled: number;
    sequentialTimeToFirstTokenMs: number | null;
    peakRssBytes: number;
    editedFile: string;
    cold: TimedAsk;
    warmRuns: TimedAsk[];
    warmAfterIndex: TimedAsk;
    warmAfterIndexSameProcessTimeToFirstTokenMs: number;
    warmAfterIndexSameProcess: TimedAsk;
    edited: TimedAsk;
    questions: (TimedAsk & { label: string })[];
  };
  disk: { cacheBytesPerRow: number; codecs: { codec: string; bytesPerToken: number | null; diskBytes: number | null; note?: string }[] };
  fidelity: FidelityResult | null;
  seconds: number;
}): string {
  const s = (ms: number | null): string => (ms === null ? 'n/a' : `${(ms / 1000).toFixed(3)} s`);
  const f = (x: number | null, d = 3): string => (x === null || Number.isNaN(x) ? '' : x.toFixed(d));
  const t = r.timing;
  const lines = [
    `# Workspace cache benchmark: ${r.model} (N = ${r.capacity})`,
    '',
    `Workspace \`${r.workspace}\`: ${r.files} files, ${r.workspaceTokens} tokens; segments stored as ${r.codec}. Run took ${r.seconds.toFixed(1)} s.`,
    '',
    '| measure | value |',
    '| --- | ---: |',
    `| engine prefill (one long prompt) | ${t.enginePrefillTokensPerSecond.toFixed(0)} tokens/s |`,
    `| cold time to first token (empty store, first-answer budget ${r.firstAnswerSeconds} s) | ${s(t.coldTimeToFirstTokenMs)} (${t.cold.indexedForAnswer} files, ${t.cold.tokensForAnswer} tokens prefilled; refresh ${s(t.cold.refreshMs)} reading ${t.cold.filesRead} files) |`,
    `| warm time to first token (same question, index reopened) | ${s(t.warmTimeToFirstTokenMs)} |`,
    `| background indexing | ${t.indexFiles} files, ${t.indexTokens} tokens in ${s(t.coldIngestMs)}: ${t.coldIngestTokensPerSecond.toFixed(0)} tokens/s = ${(100 * t.indexThroughputVsPrefill).toFixed(0)} % of the engine's prefill |`,
    `| indexed after that | ${t.filesIndexedAfter}/${r.files} files, ${t.tokensIndexedAfter}/${r.workspaceTokens} tokens |`,
    `| warm time to first token after indexing | ${s(t.warmAfterIndexTimeToFirstTokenMs)} (assembly ${s(t.warmAfterIndex.assembleMs)}; ${t.warmAfterIndex.indexedForAnswer} files prefilled) |`,
    `| the same, asked again in the same process, nothing prefilled (index and rebuilt rows kept, as in the extension) | ${s(t.warmAfterIndexSameProcessTimeToFirstTokenMs)} (assembly ${s(t.warmAfterIndexSameProcess.assembleMs)}) |`,
    `| one edited file (${t.editedFile}), question about it | ${s(t.editedFileTimeToFirstTokenMs)} (${t.editedFileTokensPrefilled} tokens prefilled) |`,
    `| sequential (single pass) time to first token | ${s(t.sequentialTimeToFirstTokenMs)} |`,
    `| peak resident memory | ${(t.peakRssBytes / 1024 ** 2).toFixed(0)} MB |`,
    '',
    `Disk bytes per workspace token (a full cache row is ${r.disk.cacheBytesPerRow} bytes):`,
    '',
    '| codec | bytes on disk | bytes per token |',
    '| --- | ---: | ---: |',
    ...r.disk.codecs.map((c) => `| ${c.codec} | ${c.diskBytes ?? c.note ?? ''} | ${f(c.bytesPerToken, 1)} |`),
    '',
    ...questionLines(t),
    ...(r.fidelity ? fidelityLines(r.fidelity, f) : ['Fidelity: not measured (--no-fidelity).', '']),
  ];
  return lines.join('\n');
}

/** Where the expected file of a question is in the assembled cache, or why it is not. */
function expectedFile(p: string, r: Awaited<ReturnType<typeof askWorkspace>>): ExpectedFile {
  const inCache = r.assembled.files.find((f) => f.path === p);
  if (inCache) return { path: p, rows: inCache.rows, storedRows: inCache.storedRows, atHalf: inCache.rows * 2 >= inCache.storedRows, status: 'in the cache' };
  const dropped = r.assembled.dropped.find((d) => d.path === p);
  const status = dropped
    ? `dropped: ${dropped.reason}`
    : r.notIndexed.some((f) => f.path === p)
      ? 'not indexed yet'
      : r.overTokenLimit.some((f) => f.path === p)
        ? 'over the token limit'
        : 'not in the workspace index';
  return { path: p, rows: null, storedRows: null, atHalf: false, status };
}

/** The per-question table: each ask's expected file, its rows kept of its stored rows, and whether that is at least half. */
function questionLines(t: { cold: TimedAsk; warmRuns: TimedAsk[]; warmAfterIndex: TimedAsk; warmAfterIndexSameProcess: TimedAsk; edited: TimedAsk; questions: (TimedAsk & { label: string })[] }): string[] {
  const asks: [string, TimedAsk][] = [
    ['cold', t.cold],
    ...t.warmRuns.map((w, i): [string, TimedAsk] => [`warm ${i + 1}`, w]),
    ['warm after indexing', t.warmAfterIndex],
    ['warm after indexing, same process', t.warmAfterIndexSameProcess],
    ['one edited file', t.edited],
    ...t.questions.map((q): [string, TimedAsk] => [q.label, q]),
  ];
  if (!asks.some(([, a]) => a.expected !== null)) return [];
  const cell = (e: ExpectedFile | null): string[] => (e === null ? ['', '', ''] : [`\`${e.path}\``, e.rows === null ? e.status : `${e.rows} / ${e.storedRows}`, e.atHalf ? 'yes' : 'no']);
  return [
    'Per question: the file expected to answer it, the rows the cache kept of its stored rows, and whether that is at least half.',
    '',
    '| ask | question | expected file | rows kept / stored | ≥ half | first token | prefilled for it |',
    '| --- | --- | --- | ---: | :---: | ---: | ---: |',
    ...asks.map(([label, a]) => `| ${label} | ${a.question} | ${cell(a.expected).join(' | ')} | ${(a.ttftMs / 1000).toFixed(2)} s | ${a.indexedForAnswer} files, ${a.tokensForAnswer} tokens |`),
    '',
  ];
}

function fidelityLines(fx: FidelityResult, f: (x: number | null, d?: number) => string): string[] {
  return [
    `Fidelity: continuation of \`${fx.continuationFile}\` (${fx.continuationTokens} tokens) after [prefix | ${fx.files.map((x) => `${x.path} (${x.tokens})`).join(' | ')}]; KL and top-1 against the sequential full cache.`,
    '',
    '| method | budget N | rows at start | files full / in | perplexity | KL | top-1 |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...fx.rows
      .filter((x) => x.probe === 'continuation')
      .map((x) => `| ${x.method} | ${x.budget ?? ''} | ${x.startRows} | ${x.filesIn === null ? '' : `${x.filesFull} / ${x.filesIn}`} | ${f(x.perplexity)} | ${f(x.kl, 4)} | ${f(x.top1)} |`),
    '',
    `Recall probe across files (${fx.recallPassageTokens}-token passage in the first file, repeated after the last): mean loss on the repeat, with and without the first occurrence.`,
    '',
    '| method | budget N | rows at start | loss | loss without first | recalled |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...fx.rows
      .filter((x) => x.probe === 'recall')
      .map((x) => `| ${x.method} | ${x.budget ?? ''} | ${x.startRows} | ${f(x.recallLoss)} | ${f(x.recallLossWithoutFirst)} | ${x.recallLoss !== null && x.recallLossWithoutFirst !== null ? f(x.recallLossWithoutFirst - x.recallLoss) : ''} |`),
    '',
  ];
}
