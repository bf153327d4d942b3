// The engine's thread: a worker_threads worker that owns one Engine and serves the
// protocol's WorkerRequests (src/protocol.ts). Engine requests (loadModel, generate,
// clearCache) run one at a time; another that arrives meanwhile gets an EngineBusyError
// reply at once. cancel and getStats are answered at any time. Every failure becomes a
// typed error reply: nothing thrown here reaches the extension host.

import { parentPort } from 'node:worker_threads';
import { Engine } from '../engine/engine';
import { FreqKvError } from '../engine/errors';
import { EngineBusyError } from '../engine/generate/errors';
import type { GenerationStats } from '../engine/generate/stats';
import { buildAskPrompt, buildSummaryPrompt } from '../engine/workspace/prompt';
import {
  toProtocolError,
  type AskParams,
  type GenerateParams,
  type GenerationResult,
  type LoadModelParams,
  type ModelInfo,
  type ResultOf,
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
  lastStats = null;
  await previous?.dispose();
  return modelInfo(next);
}

function loadedEngine(): Engine {
  if (!engine) throw new NoModelLoadedError('No model is loaded in the engine worker; load one first (FreqKV: Choose Model, or set freqkv.modelPath).');
  return engine;
}

/** Ask About Workspace: the prompt names every file and uses the model's chat template if it has one. */
function ask(id: number, params: AskParams): Promise<GenerationResult> {
  const { question, files, ...generation } = params;
  const prompt = buildAskPrompt(loadedEngine().tokenizer, files, question);
  return generate(id, { ...generation, prompt: prompt.text });
}

function summarize(id: number, params: SummarizeParams): Promise<GenerationResult> {
  const { file, ...generation } = params;
  const prompt = buildSummaryPrompt(loadedEngine().tokenizer, file);
  return generate(id, { ...generation, prompt: prompt.text });
}

async function generate(id: number, params: GenerateParams): Promise<GenerationResult> {
  const engine = loadedEngine();
  const controller = new AbortController();
  running = controller;
  try {
    const { warnings } = engine.chooseCompressor({ cache: params.cache });
    for await (const event of engine.generate({ ...params, signal: controller.signal })) {
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
    case 'clearCache':
      lastStats = null;
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
