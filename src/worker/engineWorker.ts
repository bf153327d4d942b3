// The engine's thread: a worker_threads worker that owns one Engine and one long-lived workspace
// index, and serves the protocol's WorkerRequests (src/protocol.ts). Engine requests (loadModel,
// generate, ask, summarize, clearCache) run one at a time; another that arrives meanwhile gets an
// EngineBusyError reply at once and the running one is not touched. Background indexing runs only
// while no engine request does: a request stops it between chunks first, and it resumes after.
// cancel, getStats, countTokens, startIndexing, stopIndexing and workspaceChanged are answered at
// any time. Every failure becomes a typed error reply: nothing thrown here reaches the host.

import { parentPort } from 'node:worker_threads';
import { Engine, type GenerateRequest } from '../engine/engine';
import { defaultRecentWindow } from '../engine/kv/createCompressor';
import { emptyStats } from '../engine/generate/stats';
import { askWorkspace, openWorkspaceIndex, type IndexSettings } from '../engine/index/askWorkspace';
import { WORKSPACE_DEFAULTS } from '../engine/index/defaults';
import { DirectorySource } from '../engine/index/directorySource';
import type { WorkspaceIndex } from '../engine/index/workspaceIndex';
import { IngestCancelledError } from '../engine/workspace/ingest';
import { FreqKvError } from '../engine/errors';
import { EngineBusyError } from '../engine/generate/errors';
import type { GenerationStats } from '../engine/generate/stats';
import { buildAskPrompt, buildSummaryPrompt } from '../engine/workspace/prompt';
import {
  toProtocolError,
  type AskParams,
  type ParamsOf,
  type GenerateParams,
  type GenerationResult,
  type IndexStatus,
  type LoadModelParams,
  type ModelInfo,
  type ResultOf,
  type SegmentReport,
  type StatsReply,
  type SummarizeParams,
  type WorkerRequestMessage,
  type WorkerRequestName,
  type WorkerToHostMessage,
  type WorkspaceSpec,
} from '../protocol';

/** A generate request arrived before any model was loaded. */
export class NoModelLoadedError extends FreqKvError {}

const port = parentPort;
if (!port) throw new Error('engineWorker.ts runs only as a worker thread (new Worker(dist/worker.js)).');

let engine: Engine | undefined;
let busyWith: WorkerRequestName | undefined;
/** The running engine request's cancel switch, set as soon as it starts (calibration included). */
let running: AbortController | undefined;
let lastStats: GenerationStats | null = null;
/** The workspace index of the last workspace and settings: long-lived, so a warm question reads nothing. */
let workspace: { key: string; spec: WorkspaceSpec; index: WorkspaceIndex; codecWarnings: string[] } | undefined;
/** Paths a file watcher reported since the last refresh. */
const changedPaths = new Set<string>();
/** Background indexing: runs only while no engine request does; an engine request stops it first. */
let background: { controller: AbortController; done: Promise<void> } | undefined;
/** The workspace to index when idle, until it is complete or the user pauses. */
let indexingWanted: WorkspaceSpec | undefined;

function post(message: WorkerToHostMessage): void {
  port!.postMessage(message);
}

function modelInfo(loaded: Engine): ModelInfo {
  const { config } = loaded.folder;
  return { modelDir: loaded.folder.dir, modelType: config.architecture, contextLength: loaded.contextLength, vocabSize: config.vocabSize };
}

async function loadModel(params: LoadModelParams): Promise<ModelInfo> {
  const next = await Engine.load({ modelDir: params.modelDir, onnxFile: params.onnxFile, threads: params.threads });
  const previous = engine;
  engine = next;
  // Its workspace index runs on the old session.
  workspace = undefined;
  lastStats = null;
  await previous?.dispose();
  return modelInfo(next);
}

function loadedEngine(): Engine {
  if (!engine) throw new NoModelLoadedError('No model is loaded in the engine worker; load one first (FreqKV: Choose Model, or set freqkv.modelPath).');
  return engine;
}

/** The generation options of a request, without its prompt or its ask-only fields. */
function generationOf(params: Omit<GenerateParams, 'prompt'>): Omit<GenerateParams, 'prompt'> {
  const { maxNewTokens, sampling, seed, stopStrings, cache, prefillChunkSize } = params;
  return { maxNewTokens, sampling, seed, stopStrings, cache, prefillChunkSize };
}

/** Ask About Workspace: segmented (default) or sequential; see AskParams. */
function ask(id: number, params: AskParams): Promise<GenerationResult> {
  const engine = loadedEngine();
  if (params.mode === 'sequential') {
    const prompt = buildAskPrompt(engine.tokenizer, params.files ?? [], params.question, params.history);
    // A chat-templated prompt already carries its special tokens.
    return run(id, { ...generationOf(params), promptIds: engine.tokenizer.encode(prompt.text, { addSpecialTokens: !prompt.chat }) });
  }
  return askSegmented(id, engine, params);
}

/** The index settings of a workspace: its cache options resolved on the model. */
function indexSettingsOf(engine: Engine, spec: WorkspaceSpec): IndexSettings {
  const capacity = spec.cache?.capacity ?? engine.contextLength;
  const sinks = spec.cache?.sinks ?? WORKSPACE_DEFAULTS.sinks;
  return {
    codec: spec.codec ?? WORKSPACE_DEFAULTS.codec,
    capacity,
    sinks,
    retain: spec.cache?.retain ?? WORKSPACE_DEFAULTS.retain,
    recent: spec.cache?.recent ?? defaultRecentWindow(capacity, sinks),
    prefillChunk: spec.prefillChunkSize,
    storeDir: spec.storeDir,
    maxStoreBytes: spec.maxStoreBytes,
    workspaceId: spec.workspaceId,
    maxFileBytes: spec.maxFileBytes,
  };
}

/**
 * The workspace's index for these settings: the one kept from the last request, or one opened
 * from its manifest (rvq loads its codebooks from the store, or calibrates them once per model).
 */
async function workspaceIndexFor(engine: Engine, spec: WorkspaceSpec, signal?: AbortSignal): Promise<{ index: WorkspaceIndex; codecWarnings: string[]; fresh: boolean }> {
  const settings = indexSettingsOf(engine, spec);
  const key = JSON.stringify({ model: engine.folder.dir, ...settings, roots: spec.roots, include: spec.include, exclude: spec.exclude });
  if (workspace?.key === key) return { index: workspace.index, codecWarnings: [], fresh: false };
  const source = new DirectorySource(spec.roots, { include: spec.include, exclude: spec.exclude });
  const opened = await openWorkspaceIndex(engine, settings, source, { signal });
  workspace = { key, spec, index: opened.index, codecWarnings: opened.codecState.warnings };
  return { index: opened.index, codecWarnings: opened.codecState.warnings, fresh: true };
}

/** What the next refresh reads: everything for an index just opened, else only the watcher's paths. */
function refreshFor(fresh: boolean): boolean | { paths: string[] } {
  if (fresh) {
    changedPaths.clear();
    return true;
  }
  const paths = [...changedPaths];
  changedPaths.clear();
  return { paths };
}

async function askSegmented(id: number, engine: Engine, params: AskParams): Promise<GenerationResult> {
  if (!params.workspace) throw new RangeError('A segmented ask needs its workspace (AskParams.workspace).');
  const spec: WorkspaceSpec = { ...params.workspace, cache: { method: 'freqkv', ...params.workspace.cache, ...params.cache }, prefillChunkSize: params.prefillChunkSize ?? params.workspace.prefillChunkSize };
  const controller = running!;
  const capacity = spec.cache?.capacity ?? engine.contextLength;
  const idle = emptyStats(capacity);
  const cancelled = (): GenerationResult => {
    post({ type: 'event', id, event: { kind: 'done', reason: 'cancelled', text: '', stats: idle } });
    return { reason: 'cancelled', text: '', stats: idle, warnings: [] };
  };
  let opened: Awaited<ReturnType<typeof workspaceIndexFor>>;
  try {
    opened = await workspaceIndexFor(engine, spec, controller.signal);
  } catch (error) {
    if (controller.signal.aborted) return cancelled();
    throw error;
  }
  const { index } = opened;
  let lastPost = 0;
  let result;
  try {
    result = await askWorkspace(
      engine,
      index,
      params.question,
      { ...generationOf(params), cache: { method: 'freqkv', ...params.cache }, maxWorkspaceTokens: params.maxWorkspaceTokens, firstAnswerSeconds: params.firstAnswerSeconds, refresh: refreshFor(opened.fresh), history: params.history },
      controller.signal,
      (event) => {
        if (event.kind === 'refresh') return;
        if (event.kind === 'index') {
          if (performance.now() - lastPost < 100) return;
          lastPost = performance.now();
          post({ type: 'event', id, event: { kind: 'segments', filesDone: event.filesDone, filesTotal: event.filesTotal, built: event.filesDone, tokensPrefilled: event.tokensDone, stats: idle } });
          return;
        }
        lastStats = event.stats;
        if (event.kind === 'prefill') post({ type: 'event', id, event });
        else if (event.kind === 'token') post({ type: 'event', id, event: { kind: 'token', text: event.text, stats: event.stats } });
        else post({ type: 'event', id, event: { kind: 'done', reason: event.reason, text: event.text, stats: event.stats } });
      },
    );
  } catch (error) {
    if (error instanceof IngestCancelledError) return cancelled();
    throw error;
  }
  // The rest of the workspace is indexed when the engine is idle.
  indexingWanted = spec;
  const report: SegmentReport = {
    files: result.assembled.files.map((f) => ({ path: f.path, tokens: f.tokens, storedRows: f.storedRows, rows: f.rows, score: f.score })),
    dropped: result.assembled.dropped,
    notIndexed: result.notIndexed.map((f) => ({ path: f.path, tokens: f.tokens })),
    overTokenLimit: result.overTokenLimit.map((f) => ({ path: f.path, tokens: f.tokens })),
    skipped: result.skipped,
    filesIndexed: result.counts.filesIndexed,
    filesTotal: result.counts.filesTotal,
    built: result.indexedForAnswer.files,
    reused: result.assembled.files.length - result.indexedForAnswer.files,
    persisted: index.segments.store.persisting,
    updateMs: (result.refresh?.ms ?? 0) + result.indexedForAnswer.ms,
    assembleMs: result.assembled.assembleMs,
    warnings: [...new Set([...opened.codecWarnings, ...result.warnings])],
  };
  return { reason: result.reason, text: result.text, stats: result.stats, warnings: report.warnings, segments: report };
}

/** The background indexer's status message. */
function indexStatus(index: WorkspaceIndex, state: IndexStatus['state'], tokensPerSecond: number, message?: string): IndexStatus {
  const c = index.counts();
  return {
    state,
    filesDone: c.filesIndexed,
    filesTotal: c.filesTotal,
    tokensDone: c.tokensIndexed,
    tokensTotal: c.tokensTotal,
    percent: c.tokensTotal === 0 ? 100 : Math.floor((100 * c.tokensIndexed) / c.tokensTotal),
    tokensPerSecond,
    ...(message ? { message } : {}),
  };
}

/** Starts background indexing if it is wanted, the engine is idle and nothing is indexing. */
function maybeIndexInBackground(): void {
  if (!indexingWanted || background || busyWith !== undefined || !engine) return;
  const spec = indexingWanted;
  const on = engine;
  const controller = new AbortController();
  const done = (async () => {
    let tokensPerSecond = 0;
    let index: WorkspaceIndex | undefined;
    try {
      const opened = await workspaceIndexFor(on, spec, controller.signal);
      index = opened.index;
      const refresh = refreshFor(opened.fresh);
      await index.refresh({ paths: typeof refresh === 'object' ? refresh.paths : undefined, signal: controller.signal });
      let lastPost = 0;
      const result = await index.indexPending({
        signal: controller.signal,
        onProgress: (p) => {
          tokensPerSecond = p.tokensPerSecond;
          if (performance.now() - lastPost < 500) return;
          lastPost = performance.now();
          post({ type: 'index', status: indexStatus(index!, 'indexing', tokensPerSecond) });
        },
      });
      if (result.complete) indexingWanted = undefined;
      const unwritable = !index.segments.store.persisting ? index.segments.store.warnings.at(-1) : undefined;
      if (unwritable) indexingWanted = undefined;
      post({ type: 'index', status: indexStatus(index, result.complete ? 'done' : unwritable ? 'failed' : 'paused', tokensPerSecond, unwritable) });
    } catch (error) {
      if (controller.signal.aborted) {
        if (index) post({ type: 'index', status: indexStatus(index, 'paused', tokensPerSecond) });
        return;
      }
      indexingWanted = undefined;
      const message = error instanceof Error ? error.message : String(error);
      post({ type: 'index', status: { state: 'failed', filesDone: 0, filesTotal: 0, tokensDone: 0, tokensTotal: 0, percent: 0, tokensPerSecond: 0, message } });
    }
  })().finally(() => {
    background = undefined;
  });
  background = { controller, done };
}

/** Stops background indexing between chunks and waits until it has stopped (the index is saved). */
async function stopBackground(): Promise<boolean> {
  const current = background;
  if (!current) return false;
  current.controller.abort();
  await current.done;
  return true;
}

function summarize(id: number, params: SummarizeParams): Promise<GenerationResult> {
  const { file, ...generation } = params;
  const engine = loadedEngine();
  const prompt = buildSummaryPrompt(engine.tokenizer, file);
  return run(id, { ...generation, promptIds: engine.tokenizer.encode(prompt.text, { addSpecialTokens: !prompt.chat }) });
}

function generate(id: number, params: GenerateParams): Promise<GenerationResult> {
  return run(id, params);
}

/** Runs one generation, streaming its events to the host; the request's controller (`running`) cancels it. */
async function run(id: number, request: Omit<GenerateRequest, 'signal'>): Promise<GenerationResult> {
  const engine = loadedEngine();
  const controller = running ?? new AbortController();
  {
    const { warnings } = engine.chooseCompressor({ cache: request.cache });
    for await (const event of engine.generate({ ...request, signal: controller.signal })) {
      lastStats = event.stats;
      if (event.kind === 'prefill') {
        post({ type: 'event', id, event });
      } else if (event.kind === 'token') {
        post({ type: 'event', id, event: { kind: 'token', text: event.text, stats: event.stats } });
      } else {
        post({ type: 'event', id, event: { kind: 'done', reason: event.reason, text: event.text, stats: event.stats } });
        return { reason: event.reason, text: event.text, stats: event.stats, warnings };
      }
    }
    throw new Error('The generation ended without a done event (an engine bug).');
  }
}

/** Engine requests: they need the engine to themselves. */
async function serveEngineRequest(message: WorkerRequestMessage): Promise<ResultOf<WorkerRequestName>> {
  // A question always goes first: background indexing stops between chunks, and resumes afterwards.
  await stopBackground();
  running?.signal.throwIfAborted();
  switch (message.name) {
    case 'loadModel':
      return loadModel(message.params);
    case 'generate':
      return generate(message.id, message.params);
    case 'ask':
      return ask(message.id, message.params);
    case 'summarize':
      return summarize(message.id, message.params);
    case 'clearCache':
      return clearCache(message.params);
    default:
      throw new Error(`${message.name} is not an engine request.`);
  }
}

/** Forgets the statistics and this workspace's index (its manifest and the segments no other workspace uses). */
async function clearCache(params: ParamsOf<'clearCache'>): Promise<ResultOf<'clearCache'>> {
  lastStats = null;
  indexingWanted = undefined;
  changedPaths.clear();
  let removedSegments = 0;
  const failures: string[] = [];
  if (engine && params.workspaceId !== undefined && params.roots) {
    const { index } = await workspaceIndexFor(engine, { roots: params.roots, workspaceId: params.workspaceId, storeDir: params.storeDir, codec: params.codec, cache: params.cache });
    const cleared = index.clear();
    removedSegments = cleared.removedSegments;
    failures.push(...cleared.failures, ...index.segments.store.warnings);
  }
  workspace = undefined;
  return { cleared: true, removedSegments, failures };
}

function reply<K extends WorkerRequestName>(id: number, name: K, result: ResultOf<K>): void {
  post({ type: 'response', id, name, ok: true, result } as WorkerToHostMessage);
}

port.on('message', (message: WorkerRequestMessage) => {
  const { id, name } = message;
  if (name === 'cancel') {
    const cancelled = running !== undefined && !running.signal.aborted;
    running?.abort();
    reply(id, 'cancel', { cancelled });
    return;
  }
  if (name === 'startIndexing') {
    indexingWanted = message.params;
    maybeIndexInBackground();
    reply(id, 'startIndexing', { started: indexingWanted !== undefined });
    return;
  }
  if (name === 'stopIndexing') {
    indexingWanted = undefined;
    void stopBackground().then((stopped) => reply(id, 'stopIndexing', { stopped }));
    return;
  }
  if (name === 'workspaceChanged') {
    for (const p of message.params.paths) changedPaths.add(p);
    reply(id, 'workspaceChanged', { pending: changedPaths.size });
    maybeIndexInBackground();
    return;
  }
  if (name === 'getStats') {
    const stats: StatsReply = { model: engine ? modelInfo(engine) : null, busy: busyWith !== undefined, stats: lastStats };
    reply(id, 'getStats', stats);
    return;
  }
  if (name === 'countTokens') {
    try {
      reply(id, 'countTokens', { tokens: loadedEngine().tokenizer.encode(message.params.text, { addSpecialTokens: false }).length });
    } catch (error) {
      post({ type: 'response', id, name, ok: false, error: toProtocolError(error) });
    }
    return;
  }
  if (busyWith !== undefined) {
    const error = new EngineBusyError(`The engine is busy with ${busyWith}; wait for it to finish or cancel it (FreqKV: Cancel) first.`);
    post({ type: 'response', id, name, ok: false, error: toProtocolError(error) });
    return;
  }
  busyWith = name;
  running = new AbortController();
  void serveEngineRequest(message)
    .then(
      // The switch in serveEngineRequest pairs each name with its result type.
      (result) => post({ type: 'response', id, name, ok: true, result } as WorkerToHostMessage),
      (error: unknown) => post({ type: 'response', id, name, ok: false, error: toProtocolError(error) }),
    )
    .finally(() => {
      busyWith = undefined;
      running = undefined;
      maybeIndexInBackground();
    });
});
