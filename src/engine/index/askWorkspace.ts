// Ask About Workspace on the workspace index: the one orchestration the CLI (`freqkv ask`), the
// extension's worker and the benchmark call.
//
//   1. refresh: stat every file (or only the watcher's paths), read the changed ones;
//   2. score every file against the question (BM25 needs no prefill) and rank them; the token
//      limit (maxWorkspaceTokens) applies to the ranked list, so it cuts the least relevant;
//   3. answer first: prefill the relevant files that have no segment yet, most relevant first,
//      while the time predicted from the measured prefill tokens/s stays within the
//      first-answer budget (firstAnswerSeconds); the rest waits for background indexing;
//   4. assemble the cache from the segments of the ranked files and generate.
// Every file not in the cache is reported with why: not indexed yet (`notIndexed`, the relevant
// ones first), past the token limit (`overTokenLimit`), not fitting the rows (`assembled.dropped`),
// or left out by the rules or for its content (`skipped`, kept by the index, so a warm question
// whose refresh looked only at a watcher's paths lists them all too).

import { Engine, type GenerateRequest } from '../engine';
import type { GenerationEvent, StopReason } from '../generate/generator';
import type { GenerationStats } from '../generate/stats';
import { defaultRecentWindow, type CacheOptions } from '../kv/createCompressor';
import type { CodecName } from '../segments/codec';
import { loadOrCalibrateCodecState, type LoadedCodecState } from '../segments/codecStateStore';
import { WorkspaceSegmentCache, type AssembledCache } from '../segments/workspaceSegmentCache';
import { FreqKvError } from '../errors';
import { IngestCancelledError } from '../workspace/ingest';
import { countSkips } from '../workspace/skipSummary';
import { recentTurns, type PriorTurn } from '../workspace/prompt';
import { WORKSPACE_DEFAULTS } from './defaults';
import type { SkippedFile } from '../workspace/types';
import type { IndexSource } from './directorySource';
import { WorkspaceIndex, type IndexedFile, type RefreshReport } from './workspaceIndex';

/** The workspace has no file to read (none at all, or every one left out). */
export class NoWorkspaceFilesError extends FreqKvError {}

/** With no prefill speed measured yet, a first answer prefills a relevant file blind only up to this size. */
export const PROBE_TOKENS = 2048;

export interface IndexSettings {
  codec: CodecName;
  /** Cache rows files are prefilled in and answers assembled in (the model's context by default). */
  capacity?: number;
  sinks?: number;
  retain?: number;
  recent?: number;
  prefillChunk?: number;
  /** The segment store; undefined keeps everything in memory. */
  storeDir?: string;
  maxStoreBytes?: number;
  workspaceId: string;
  maxFileBytes?: number;
  maxFiles?: number;
  /** Writes store files (tests inject a full disk). */
  writeFile?: (file: string, bytes: Uint8Array) => void;
  /** Bytes of rebuilt rows kept between answers (default REBUILT_ROWS_CACHE_BYTES, 256 MiB; 0: none). */
  rebuiltRowsCacheBytes?: number;
}

export interface OpenedIndex {
  index: WorkspaceIndex;
  codecState: LoadedCodecState;
}

/**
 * The workspace index for a model and settings: the codec's state loaded (RVQ codebooks are
 * calibrated once per model; `signal` stops the calibration promptly), the manifest reloaded.
 */
export async function openWorkspaceIndex(engine: Engine, settings: IndexSettings, source: IndexSource, options: { signal?: AbortSignal; onCalibrating?: () => void } = {}): Promise<OpenedIndex> {
  const capacity = settings.capacity ?? engine.contextLength;
  const sinks = settings.sinks ?? WORKSPACE_DEFAULTS.sinks;
  const codecState = await loadOrCalibrateCodecState(engine.session, engine.folder, settings.storeDir, settings.codec, { onCalibrating: options.onCalibrating, signal: options.signal });
  const segments = new WorkspaceSegmentCache(engine.session, engine.tokenizer, engine.folder, {
    codec: settings.codec,
    codecState: codecState.state,
    capacity,
    sinks,
    retain: settings.retain ?? WORKSPACE_DEFAULTS.retain,
    recent: settings.recent ?? defaultRecentWindow(capacity, sinks),
    prefillChunk: settings.prefillChunk,
    storeDir: settings.storeDir,
    maxStoreBytes: settings.maxStoreBytes,
    workspaceId: settings.workspaceId,
    writeFile: settings.writeFile,
    rebuiltRowsCacheBytes: settings.rebuiltRowsCacheBytes,
  });
  const index = WorkspaceIndex.open(segments, source, { workspaceId: settings.workspaceId, maxFileBytes: settings.maxFileBytes, maxFiles: settings.maxFiles });
  return { index, codecState };
}

export interface AskWorkspaceOptions {
  maxNewTokens: number;
  sampling: GenerateRequest['sampling'];
  seed?: number;
  stopStrings?: string[];
  prefillChunkSize?: number;
  /** The answer's cache policy; its capacity is the index's. */
  cache?: Omit<CacheOptions, 'capacity'>;
  /** The most tokens of ranked files the answer draws on; 0 or undefined: no limit. */
  maxWorkspaceTokens?: number;
  /** The first-answer budget: seconds of prefill for files not indexed yet (default 60). */
  firstAnswerSeconds?: number;
  /** Refresh the file list first (default true); `paths` limits it to a watcher's changed paths. */
  refresh?: boolean | { paths: readonly string[] };
  /**
   * The conversation's earlier turns, oldest first: the last few go into the question's part of
   * the prompt (after the files), and their questions count towards relevance.
   */
  history?: readonly PriorTurn[];
}

export type AskWorkspaceEvent =
  | { kind: 'refresh'; filesSeen: number; filesRead: number }
  /** Files prefilled for this answer (not indexed before). */
  | { kind: 'index'; filesDone: number; filesTotal: number; tokensDone: number; tokensTotal: number; path?: string }
  | GenerationEvent;

export interface RankedFile {
  path: string;
  tokens: number;
  score: number;
  indexed: boolean;
}

export interface AskWorkspaceResult {
  reason: StopReason;
  text: string;
  stats: GenerationStats;
  /** From the call to the first token (refresh, prefill for the answer, assembly, question prefill). */
  timeToFirstTokenMs: number | null;
  refresh: RefreshReport | undefined;
  /** Files prefilled for this answer. */
  indexedForAnswer: { files: number; tokens: number; ms: number };
  /** The first-answer budget in tokens at the measured speed (null before any measurement). */
  firstAnswerTokens: number | null;
  assembled: Pick<AssembledCache, 'files' | 'dropped' | 'prefixRows' | 'segmentBudget' | 'tokensRepresented' | 'assembleMs'> & { rows: number };
  /** Files not in the cache because they are not indexed yet, most relevant first (the relevant ones, score > 0, lead). */
  notIndexed: RankedFile[];
  /** Files past maxWorkspaceTokens (the least relevant). */
  overTokenLimit: RankedFile[];
  /** Every file and folder left out by the rules or for its content (gitignore, binary, too large, …), by path. */
  skipped: SkippedFile[];
  /** Files and tokens known and indexed after this answer. */
  counts: ReturnType<WorkspaceIndex['counts']>;
  warnings: string[];
}

/** Every known file ranked by relevance (then by path), and the cut at the token limit. */
export function rankFiles(files: Iterable<IndexedFile>, scores: ReadonlyMap<string, number>, maxTokens: number | undefined): { kept: RankedFile[]; over: RankedFile[] } {
  const ranked: RankedFile[] = [];
  for (const f of files) ranked.push({ path: f.path, tokens: f.tokens, score: scores.get(f.path) ?? 0, indexed: f.segment !== undefined });
  ranked.sort((a, b) => b.score - a.score || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  if (!maxTokens || maxTokens <= 0) return { kept: ranked, over: [] };
  const kept: RankedFile[] = [];
  const over: RankedFile[] = [];
  let total = 0;
  for (const f of ranked) {
    if (total + f.tokens <= maxTokens) {
      kept.push(f);
      total += f.tokens;
    } else {
      over.push(f);
    }
  }
  return { kept, over };
}

/**
 * The next file to prefill before an answer. The answer set is the ranked files (indexed or not)
 * that the first-answer budget could prefill at the measured speed: most relevant first, a file
 * that would overflow it passed over for the next, smaller one. Of that set, the most relevant
 * file not indexed yet is next if its predicted prefill time fits in what is left of the budget.
 * So a question asked again, or one whose files are indexed, prefills nothing. Without a
 * measured speed, a file of at most PROBE_TOKENS goes first and the speed it shows decides the rest.
 */
/** How far past the first-answer budget the answer's own files may still be prefilled (see askWorkspace). */
export const FIRST_ANSWER_OVERRUN = 1.5;

export function nextFileForAnswer(ranked: readonly RankedFile[], tokensPerSecond: number | undefined, budgetMs: number, remainingMs: number): RankedFile | undefined {
  if (remainingMs <= 0) return undefined;
  const anyRelevant = ranked.some((f) => f.score > 0);
  const capTokens = tokensPerSecond === undefined ? Infinity : (tokensPerSecond * budgetMs) / 1000;
  let inSet = 0;
  for (const f of ranked) {
    // A question no file matches draws on the files in path order.
    if (anyRelevant && f.score <= 0) break;
    if (inSet + f.tokens > capTokens) continue;
    if (f.indexed) {
      inSet += f.tokens;
      continue;
    }
    if (tokensPerSecond === undefined) {
      if (f.tokens <= PROBE_TOKENS) return f;
      continue;
    }
    if ((f.tokens / tokensPerSecond) * 1000 <= remainingMs) return f;
  }
  return undefined;
}

export async function askWorkspace(
  engine: Engine,
  index: WorkspaceIndex,
  question: string,
  options: AskWorkspaceOptions,
  signal?: AbortSignal,
  onEvent?: (event: AskWorkspaceEvent) => void,
): Promise<AskWorkspaceResult> {
  const started = performance.now();
  try {
    return await askIndexed(engine, index, question, options, started, signal, onEvent);
  } catch (error) {
    // Cancelled before the generation started (while refreshing, prefilling or assembling).
    if (signal?.aborted && !(error instanceof IngestCancelledError)) throw new IngestCancelledError(`The question was cancelled after ${((performance.now() - started) / 1000).toFixed(1)} s, before its answer started; the files prefilled so far are kept.`);
    throw error;
  }
}

async function askIndexed(
  engine: Engine,
  index: WorkspaceIndex,
  question: string,
  options: AskWorkspaceOptions,
  started: number,
  signal: AbortSignal | undefined,
  onEvent: ((event: AskWorkspaceEvent) => void) | undefined,
): Promise<AskWorkspaceResult> {
  const warningsBefore = index.warnings.length;
  let refresh: RefreshReport | undefined;
  if (options.refresh !== false) {
    refresh = await index.refresh({
      paths: typeof options.refresh === 'object' ? options.refresh.paths : undefined,
      signal,
      onProgress: (p) => onEvent?.({ kind: 'refresh', ...p }),
    });
  }
  if (index.files.size === 0) {
    const skipped = index.skippedFiles();
    throw new NoWorkspaceFilesError(
      `no files to read: ${skipped.length === 0 ? 'the workspace has no files' : `all ${skipped.length} were left out (${countSkips(skipped)})`}. Open a folder with text source files, or loosen the include/exclude globs or the file size limit.`,
    );
  }
  const scores = index.score([...recentTurns(options.history).map((t) => t.question), question].join('\n'));
  const { kept, over } = rankFiles(index.files.values(), scores, options.maxWorkspaceTokens);

  // Answer first: the relevant files not indexed yet, within the first-answer budget.
  const budgetMs = (options.firstAnswerSeconds ?? WORKSPACE_DEFAULTS.firstAnswerSeconds) * 1000;
  const indexStarted = performance.now();
  const forAnswer = { files: 0, tokens: 0, ms: 0 };
  const wanted = kept.filter((f) => f.score > 0 && !f.indexed);
  const wantedTokens = wanted.reduce((n, f) => n + f.tokens, 0);
  for (;;) {
    signal?.throwIfAborted();
    // The answer set is what the budget holds at the measured speed; it is finished even when the
    // files prefill slower than measured (so the same question asked again prefills nothing), up
    // to FIRST_ANSWER_OVERRUN times the budget.
    const next = nextFileForAnswer(kept, index.prefillTokensPerSecond, budgetMs, FIRST_ANSWER_OVERRUN * budgetMs - (performance.now() - started));
    if (!next) break;
    onEvent?.({ kind: 'index', filesDone: forAnswer.files, filesTotal: wanted.length, tokensDone: forAnswer.tokens, tokensTotal: wantedTokens, path: next.path });
    const done = await index.indexFile(next.path, signal);
    // Indexed, or gone (then it is no candidate any more either way).
    next.indexed = true;
    if (done) {
      next.tokens = index.files.get(next.path)?.tokens ?? next.tokens;
      forAnswer.files++;
      forAnswer.tokens += done.tokens;
    }
  }
  forAnswer.ms = performance.now() - indexStarted;
  if (forAnswer.files > 0) onEvent?.({ kind: 'index', filesDone: forAnswer.files, filesTotal: wanted.length, tokensDone: forAnswer.tokens, tokensTotal: wantedTokens });
  index.save();

  const capacity = index.segments.settings.capacity;
  const assembled = await index.assemble(
    question,
    scores,
    kept.filter((f) => index.files.get(f.path)?.segment !== undefined).map((f) => f.path),
    { reserveRows: Math.min(options.maxNewTokens, 64), history: options.history },
  );
  const notIndexed = kept.filter((f) => index.files.get(f.path)?.segment === undefined);
  const request: GenerateRequest = {
    promptIds: assembled.questionIds,
    startCache: assembled.cache,
    cachedTokens: assembled.tokensRepresented,
    maxNewTokens: options.maxNewTokens,
    sampling: options.sampling,
    seed: options.seed,
    stopStrings: options.stopStrings,
    prefillChunkSize: options.prefillChunkSize,
    cache: { method: 'freqkv', ...options.cache, capacity },
    signal,
  };
  const warnings = [...index.warnings.slice(warningsBefore), ...assembled.warnings];
  const chosen = engine.chooseCompressor({ cache: request.cache });
  warnings.push(...chosen.warnings);
  let firstTokenAt: number | undefined;
  // The generation's time to first token counts from its start; the answer's from the question.
  const setupMs = performance.now() - started;
  for await (const generated of engine.generate(request)) {
    if (generated.kind === 'token') firstTokenAt ??= performance.now();
    const event = generated.stats.timeToFirstTokenMs > 0 ? { ...generated, stats: { ...generated.stats, timeToFirstTokenMs: generated.stats.timeToFirstTokenMs + setupMs } } : generated;
    onEvent?.(event);
    if (event.kind === 'done') {
      return {
        reason: event.reason,
        text: event.text,
        stats: event.stats,
        timeToFirstTokenMs: firstTokenAt === undefined ? null : firstTokenAt - started,
        refresh,
        indexedForAnswer: forAnswer,
        firstAnswerTokens: index.prefillTokensPerSecond === undefined ? null : Math.round((index.prefillTokensPerSecond * budgetMs) / 1000),
        assembled: {
          files: assembled.files,
          dropped: assembled.dropped,
          prefixRows: assembled.prefixRows,
          segmentBudget: assembled.segmentBudget,
          tokensRepresented: assembled.tokensRepresented,
          assembleMs: assembled.assembleMs,
          rows: assembled.cache.rows,
        },
        notIndexed,
        overTokenLimit: over,
        skipped: index.skippedFiles(),
        counts: index.counts(),
        warnings: [...new Set(warnings)],
      };
    }
  }
  throw new Error('The generation ended without a done event (an engine bug).');
}
