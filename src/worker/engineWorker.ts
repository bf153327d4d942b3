// The engine's thread: a worker_threads worker that owns one Engine and serves the
// protocol's WorkerRequests (src/protocol.ts). Engine requests (loadModel, generate,
// clearCache) run one at a time; another that arrives meanwhile gets an EngineBusyError
// reply at once. cancel and getStats are answered at any time. Every failure becomes a
// typed error reply: nothing thrown here reaches the extension host.

import { parentPort } from 'node:worker_threads';
import { Engine, type GenerateRequest } from '../engine/engine';
import { defaultRecentWindow, type CacheOptions } from '../engine/kv/createCompressor';
import { emptyStats } from '../engine/generate/stats';
import { WorkspaceSegmentCache, type SegmentCacheSettings, type UpdateReport } from '../engine/segments/workspaceSegmentCache';
import { loadOrCalibrateCodecState } from '../engine/segments/codecStateStore';
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
  type LoadModelParams,
  type ModelInfo,
  type ResultOf,
  type SegmentReport,
  type StatsReply,
  type SummarizeParams,
  type WorkerRequestMessage,
  type WorkerRequestName,
  type WorkerToHostMessage,
} from '../protocol';

/** A generate request arrived before any model was loaded. */
export class NoModelLoadedError extends FreqKvError {}

const port = parentPort;
if (!port) throw new Error('engineWorker.ts runs only as a worker thread (new Worker(dist/worker.js)).');

let engine: Engine | undefined;
let busyWith: WorkerRequestName | undefined;
let running: AbortController | undefined;
let lastStats: GenerationStats | null = null;
/**
 * The worker keeps the last workspace's segment cache (its file list and BM25 index), so the
 * next question only checks hashes; the segments themselves are on disk under storeDir.
 */
let segmentCache: { key: string; cache: WorkspaceSegmentCache } | undefined;


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
  // Its segment cache runs on the old session.
  segmentCache = undefined;
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
    const prompt = buildAskPrompt(engine.tokenizer, params.files, params.question, params.history);
    // A chat-templated prompt already carries its special tokens.
    return run(id, { ...generationOf(params), promptIds: engine.tokenizer.encode(prompt.text, { addSpecialTokens: !prompt.chat }) });
  }
  return askSegmented(id, engine, params);
}

/**
 * The workspace's segment cache for these settings: the one kept from the last request, or a
 * new one (rvq loads its codebooks from the store, or calibrates them once per model).
 */
async function segmentCacheFor(engine: Engine, params: Omit<AskParams, 'question' | 'mode'>): Promise<{ segments: WorkspaceSegmentCache; cache: CacheOptions; capacity: number; warnings: string[] }> {
  const cache: CacheOptions = { method: 'freqkv', ...params.cache };
  const capacity = cache.capacity ?? engine.contextLength;
  const sinks = cache.sinks ?? 4;
  const settings: SegmentCacheSettings = {
    codec: params.codec ?? 'int8',
    capacity,
    sinks,
    retain: cache.retain ?? 0.5,
    recent: cache.recent ?? defaultRecentWindow(capacity, sinks),
    prefillChunk: params.prefillChunkSize,
    storeDir: params.storeDir,
    maxStoreBytes: params.maxStoreBytes,
    workspaceId: params.workspaceId ?? 'workspace',
  };
  const key = JSON.stringify({ model: engine.folder.dir, ...settings });
  let warnings: string[] = [];
  if (segmentCache?.key !== key) {
    const codecState = await loadOrCalibrateCodecState(engine.session, engine.folder, settings.storeDir, settings.codec);
    warnings = codecState.warnings;
    segmentCache = { key, cache: new WorkspaceSegmentCache(engine.session, engine.tokenizer, engine.folder, { ...settings, codecState: codecState.state }) };
  }
  return { segments: segmentCache.cache, cache, capacity, warnings };
}

/** The file watcher's refresh: only new and edited files are prefilled, deleted ones collected. */
async function updateSegments(params: ParamsOf<'updateSegments'>): Promise<ResultOf<'updateSegments'>> {
  const { segments } = await segmentCacheFor(loadedEngine(), params);
  const controller = new AbortController();
  running = controller;
  try {
    const update = await segments.update(params.files, undefined, controller.signal);
    return { built: update.built, reused: update.reused, removed: update.removed, ms: update.ms, persisted: update.persisted };
  } finally {
    running = undefined;
  }
}

async function askSegmented(id: number, engine: Engine, params: AskParams): Promise<GenerationResult> {
  const { question, files } = params;
  const generation = generationOf(params);
  const { segments, cache, capacity, warnings: codecWarnings } = await segmentCacheFor(engine, params);
  const started = performance.now();
  const controller = new AbortController();
  running = controller;
  const idle = emptyStats(capacity);
  let lastPost = 0;
  let update: UpdateReport;
  try {
    update = await segments.update(
      files,
      (p) => {
        if (performance.now() - lastPost < 100 && p.filesDone < p.filesTotal) return;
        lastPost = performance.now();
        post({ type: 'event', id, event: { kind: 'segments', filesDone: p.filesDone, filesTotal: p.filesTotal, built: p.built, tokensPrefilled: p.tokensPrefilled, stats: idle } });
      },
      controller.signal,
    );
  } catch (error) {
    running = undefined;
    if (!controller.signal.aborted) throw error;
    // Segments finished before the cancel are kept (on disk); the next question reuses them.
    post({ type: 'event', id, event: { kind: 'done', reason: 'cancelled', text: '', stats: idle } });
    return { reason: 'cancelled', text: '', stats: idle, warnings: [] };
  }
  const assembled = await segments.assemble(question, { reserveRows: Math.min(generation.maxNewTokens, 64), history: params.history });
  const report: SegmentReport = {
    files: assembled.files.map((f) => ({ path: f.path, tokens: f.tokens, storedRows: f.storedRows, rows: f.rows, score: f.score })),
    dropped: assembled.dropped,
    built: update.built,
    reused: update.reused,
    persisted: update.persisted,
    updateMs: update.ms,
    assembleMs: assembled.assembleMs,
    warnings: [...new Set([...codecWarnings, ...update.warnings, ...assembled.warnings])],
  };
  const request = { ...generation, cache: { ...cache, capacity }, promptIds: assembled.questionIds, startCache: assembled.cache, cachedTokens: assembled.tokensRepresented };
  // The time to the first token counts from the question, so it includes the update and the assembly.
  const result = await run(id, request, controller, performance.now() - started);
  return { ...result, warnings: [...result.warnings, ...report.warnings], segments: report };
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

/** Runs one generation, streaming its events to the host; `controller` cancels it; `setupMs` is added to the time to first token. */
async function run(id: number, request: Omit<GenerateRequest, 'signal'>, controller = new AbortController(), setupMs = 0): Promise<GenerationResult> {
  const engine = loadedEngine();
  running = controller;
  try {
    const { warnings } = engine.chooseCompressor({ cache: request.cache });
    for await (const generated of engine.generate({ ...request, signal: controller.signal })) {
      // Work done before the generation (a segmented ask's update and assembly) counts towards the first token.
      const event = setupMs > 0 && generated.stats.timeToFirstTokenMs > 0 ? { ...generated, stats: { ...generated.stats, timeToFirstTokenMs: generated.stats.timeToFirstTokenMs + setupMs } } : generated;
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
  } finally {
    running = undefined;
  }
}

/** Engine requests: they need the engine to themselves. */
async function serveEngineRequest(message: WorkerRequestMessage): Promise<ResultOf<WorkerRequestName>> {
  switch (message.name) {
    case 'loadModel':
      return loadModel(message.params);
    case 'generate':
      return generate(message.id, message.params);
    case 'ask':
      return ask(message.id, message.params);
    case 'summarize':
      return summarize(message.id, message.params);
    case 'updateSegments':
      return updateSegments(message.params);
    case 'clearCache':
      lastStats = null;
      segmentCache = undefined;
      return { cleared: true };
    default:
      throw new Error(`${message.name} is not an engine request.`);
  }
}

function reply<K extends WorkerRequestName>(id: number, name: K, result: ResultOf<K>): void {
  post({ type: 'response', id, name, ok: true, result } as WorkerToHostMessage);
}

port.on('message', (message: WorkerRequestMessage) => {
  const { id, name } = message;
  if (name === 'cancel') {
    const cancelled = running !== undefined;
    running?.abort();
    reply(id, 'cancel', { cancelled });
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
  void serveEngineRequest(message)
    .then(
      // The switch in serveEngineRequest pairs each name with its result type.
      (result) => post({ type: 'response', id, name, ok: true, result } as WorkerToHostMessage),
      (error: unknown) => post({ type: 'response', id, name, ok: false, error: toProtocolError(error) }),
    )
    .finally(() => {
      busyWith = undefined;
    });
});
