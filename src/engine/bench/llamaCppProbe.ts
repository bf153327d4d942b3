// The speed benchmark's llama.cpp peer: node-llama-cpp (a devDependency) with its prebuilt CPU
// binary, never built or downloaded (`build: 'never'`, no GPU), running a GGUF that
// `freqkv convert random --gguf` wrote from the same config and seed as our ONNX model. The probe
// does the same work as probeFreqKv: the same L token ids (from our tokenizer), then a fixed
// number of greedy decode steps, in a child process of its own so its peak RSS is its own.
// node-llama-cpp is an ES module, loaded lazily so nothing else pays for it.

import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { ModelTokenizer } from '../tokenizer/modelTokenizer';
import { benchTokens, fullCacheResult, type SpeedProbeResult, type SpeedProbeSpec } from './speedProbe';

/** Tokens llama.cpp evaluates per batch in the prefill (its own default micro-batch). */
export const LLAMA_CPP_BATCH = 512;

export interface LlamaCppModelOptions {
  contextSize: number;
  threads: number;
  batchSize?: number;
}

/** One GGUF loaded with one context and sequence. */
export interface LlamaCppModel {
  tokenize(text: string): number[];
  /** Evaluates `ids` on a fresh sequence and returns the next token's log-probabilities (every vocabulary entry, temperature 1). */
  logProbabilitiesAfter(ids: readonly number[]): Promise<Map<number, number>>;
  /** `count` greedy tokens after `ids` on a fresh sequence. */
  greedy(ids: readonly number[], count: number): Promise<number[]>;
  /** Prefill of `ids` then `steps` greedy tokens, timed: prefill until the first token, then the steps after it. */
  timedGeneration(ids: readonly number[], steps: number): Promise<{ timeToFirstTokenMs: number; decodeMs: number; tokens: number[] }>;
  dispose(): Promise<void>;
}

export interface LlamaCppRuntime {
  /** What node-llama-cpp loaded: 'prebuilt' (its binary package) is the only build allowed. */
  buildType: string;
  /** The CPU features llama.cpp reports. */
  systemInfo: string;
  loadModel(file: string, options: LlamaCppModelOptions): Promise<LlamaCppModel>;
  dispose(): Promise<void>;
}

/** llama.cpp through node-llama-cpp's prebuilt CPU binary: fails rather than builds or downloads anything. */
export async function openLlamaCpp(): Promise<LlamaCppRuntime> {
  const nlc = await import('node-llama-cpp');
  let llama: Llama;
  try {
    llama = await nlc.getLlama({ build: 'never', gpu: false, usePrebuiltBinaries: true, progressLogs: false, logLevel: nlc.LlamaLogLevel.error });
  } catch (error) {
    throw new Error(`node-llama-cpp could not load its prebuilt CPU binary (@node-llama-cpp/${process.platform}-${process.arch}); run 'npm ci' in this repository. (${(error as Error).message})`);
  }
  return {
    buildType: llama.buildType,
    systemInfo: llama.systemInfo,
    async loadModel(file, options) {
      const model: LlamaModel = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
      const context: LlamaContext = await model.createContext({
        contextSize: options.contextSize,
        batchSize: options.batchSize ?? LLAMA_CPP_BATCH,
        threads: options.threads,
        sequences: 1,
      });
      const sequence: LlamaContextSequence = context.getSequence();
      const fresh = async (): Promise<void> => {
        await sequence.clearHistory();
      };
      const timedGeneration: LlamaCppModel['timedGeneration'] = async (ids, steps) => {
        await fresh();
        const tokens: number[] = [];
        const t0 = performance.now();
        let firstAt = 0;
        for await (const token of sequence.evaluate(ids.map((id) => id as never), { temperature: 0 })) {
          tokens.push(Number(token));
          if (tokens.length === 1) firstAt = performance.now();
          if (tokens.length > steps) break;
        }
        return { timeToFirstTokenMs: firstAt - t0, decodeMs: performance.now() - firstAt, tokens };
      };
      return {
        tokenize: (text) => model.tokenize(text).map(Number),
        async logProbabilitiesAfter(ids) {
          await fresh();
          const last = [ids[ids.length - 1], { generateNext: { probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } }];
          const input = [...ids.slice(0, -1), last] as Parameters<LlamaContextSequence['controlledEvaluate']>[0];
          const out = await sequence.controlledEvaluate(input);
          const probabilities = out[ids.length - 1]?.next.probabilities;
          if (!probabilities) throw new Error('llama.cpp returned no probabilities');
          return new Map([...probabilities].map(([token, p]) => [Number(token), Math.log(p)]));
        },
        greedy: async (ids, count) => (await timedGeneration(ids, count - 1)).tokens,
        timedGeneration,
        async dispose() {
          await context.dispose();
          await model.dispose();
        },
      };
    },
    dispose: () => llama.dispose(),
  };
}

/** Runs one configuration of the speed benchmark on llama.cpp (`spec.ggufFile`; the tokens come from `spec.modelDir`'s tokenizer). */
export async function probeLlamaCpp(spec: SpeedProbeSpec): Promise<SpeedProbeResult> {
  if (!spec.ggufFile) throw new Error('probe: the llama.cpp engine needs a GGUF file (--gguf)');
  const tokenizer = await ModelTokenizer.fromFolder(spec.modelDir);
  const L = spec.contextTokens;
  const ids = benchTokens(tokenizer, spec.text, L);
  const runtime = await openLlamaCpp();
  if (runtime.buildType !== 'prebuilt') throw new Error(`node-llama-cpp loaded a '${runtime.buildType}' build; the benchmark runs only its prebuilt binary`);
  const l0 = performance.now();
  const capacity = L + spec.decodeSteps + 8;
  const model = await runtime.loadModel(spec.ggufFile, { contextSize: capacity, threads: spec.threads });
  const loadMs = performance.now() - l0;
  try {
    await model.timedGeneration(ids.slice(0, 8), 2); // warm-up, as for our engine
    const timing = await model.timedGeneration(ids, spec.decodeSteps);
    if (timing.tokens.length !== spec.decodeSteps + 1) throw new Error(`probe: llama.cpp stopped after ${timing.tokens.length} tokens`);
    // The first token comes with the prefill's last batch: the prefill is timed to it.
    return fullCacheResult('llama.cpp', spec, {
      loadMs,
      prefillMs: timing.timeToFirstTokenMs,
      timeToFirstTokenMs: timing.timeToFirstTokenMs,
      decodeMs: timing.decodeMs,
      capacity,
      prefillMode: `batches of ${LLAMA_CPP_BATCH} tokens (node-llama-cpp ${runtime.buildType} binary, f16 KV cache)`,
    });
  } finally {
    await model.dispose();
    await runtime.dispose();
  }
}
