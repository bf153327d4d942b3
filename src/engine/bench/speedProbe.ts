// One configuration of the speed benchmark (docs/benchmarks.md, "Speed"), measured in the process that runs it:
// load a model folder, prefill a text of L tokens through the generation loop with the full or
// the FreqKV cache, then a fixed number of greedy decode steps. The caller runs each probe in a
// fresh child process, so the peak resident memory (maxRSS) belongs to that configuration alone.
// transformersProbe.ts does the same work with transformers.js.

import { Engine } from '../engine';
import { DEFAULT_PREFILL_CHUNK, runGeneration } from '../generate/generator';
import { createCompressor } from '../kv/createCompressor';
import type { ModelTokenizer } from '../tokenizer/modelTokenizer';
import { attendedRowsOfChunk } from './speedLimits';

export type SpeedEngine = 'freqkv' | 'transformers.js' | 'llama.cpp';
export type SpeedCache = 'full' | 'freqkv';

export interface SpeedProbeSpec {
  engine: SpeedEngine;
  modelDir: string;
  /** The graph file, relative to modelDir (default: the folder's default graph). */
  onnxFile?: string;
  cache: SpeedCache;
  /** L: tokens of text prefilled. */
  contextTokens: number;
  /** Greedy decode steps timed after the prefill. */
  decodeSteps: number;
  /** Intra-op threads (0: one per core). */
  threads: number;
  /** The text repeated to L tokens. */
  text: string;
  /** N for the FreqKV cache. */
  freqkvCapacity: number;
  /** Tokens per prefill forward pass (ours); undefined: the generator's default. */
  prefillChunk?: number;
  /** transformers.js: prefills up to this many tokens in one forward pass, longer texts in chunks of it. */
  oneForwardLimit?: number;
  /** llama.cpp: the GGUF of the same model (the tokens still come from `modelDir`'s tokenizer). */
  ggufFile?: string;
}

export interface SpeedProbeResult {
  engine: SpeedEngine;
  cache: SpeedCache;
  contextTokens: number;
  decodeSteps: number;
  /** Cache rows the configuration allows (full: max(trained context, L + steps + 1)). */
  capacity: number;
  loadMs: number;
  prefillMs: number;
  prefillTokensPerSecond: number;
  decodeMs: number;
  decodeTokensPerSecond: number;
  /** From the start of the prefill to the first generated token. */
  timeToFirstTokenMs: number;
  peakRssBytes: number;
  /** Mean cache rows a prefill token attends to (itself included). */
  meanPrefillAttendedRows: number;
  /** Mean cache rows a decode step reads. */
  meanDecodeCacheRows: number;
  /** Cache rows held after the last step. */
  cacheRowsAtEnd: number;
  compressions: number;
  compressMs: number;
  /** How the prefill ran, e.g. 'chunks of 128' or 'one forward pass'. */
  prefillMode: string;
  warnings: string[];
}

/** The text's tokens (with the tokenizer's special tokens) repeated, without its BOS, until there are `count`. */
export function benchTokens(tokenizer: ModelTokenizer, text: string, count: number): number[] {
  const first = tokenizer.encode(text, { addSpecialTokens: true });
  const plain = tokenizer.encode(text, { addSpecialTokens: false });
  if (plain.length === 0) throw new RangeError('benchTokens: the text has no tokens');
  const ids = [...first];
  while (ids.length < count) ids.push(...plain);
  return ids.slice(0, count);
}

export function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}

/** The result of a peer that keeps a full cache and prefills every token (transformers.js, llama.cpp). */
export function fullCacheResult(
  engine: SpeedEngine,
  spec: SpeedProbeSpec,
  timing: { loadMs: number; prefillMs: number; timeToFirstTokenMs: number; decodeMs: number; capacity: number; prefillMode: string },
): SpeedProbeResult {
  const L = spec.contextTokens;
  return {
    engine,
    cache: 'full',
    contextTokens: L,
    decodeSteps: spec.decodeSteps,
    capacity: timing.capacity,
    loadMs: timing.loadMs,
    prefillMs: timing.prefillMs,
    prefillTokensPerSecond: (L / timing.prefillMs) * 1000,
    decodeMs: timing.decodeMs,
    decodeTokensPerSecond: (spec.decodeSteps / timing.decodeMs) * 1000,
    timeToFirstTokenMs: timing.timeToFirstTokenMs,
    peakRssBytes: peakRssBytes(),
    meanPrefillAttendedRows: (L + 1) / 2,
    meanDecodeCacheRows: L + (spec.decodeSteps + 1) / 2,
    cacheRowsAtEnd: L + spec.decodeSteps,
    compressions: 0,
    compressMs: 0,
    prefillMode: timing.prefillMode,
    warnings: [],
  };
}

/** Runs one configuration on this project's engine. */
export async function probeFreqKv(spec: SpeedProbeSpec): Promise<SpeedProbeResult> {
  const l0 = performance.now();
  const engine = await Engine.load({ modelDir: spec.modelDir, onnxFile: spec.onnxFile, threads: spec.threads });
  const loadMs = performance.now() - l0;
  try {
    const config = engine.folder.config;
    const L = spec.contextTokens;
    const promptIds = benchTokens(engine.tokenizer, spec.text, L);
    const capacity = spec.cache === 'full' ? Math.max(config.maxPositionEmbeddings, L + spec.decodeSteps + 1) : spec.freqkvCapacity;
    const { compressor, warnings } = createCompressor({ method: spec.cache, capacity }, config);
    const decoder = { push: (): string => '', flush: (): string => '' };
    const run = (ids: number[], steps: number, chunk: number | undefined): ReturnType<typeof runGeneration> =>
      runGeneration(engine.session, engine.session.createCache(capacity), {
        promptIds: ids,
        maxNewTokens: steps + 1,
        sampling: { temperature: 0 },
        random: () => 0,
        stopTokenIds: [],
        decoder,
        compressor,
        prefillChunkSize: chunk,
      });
    // Warm-up (onnxruntime's first runs allocate and plan, and the MatMul session FreqKV's
    // transform uses opens on first use): a short prompt and two steps, and one tiny product.
    await engine.session.multiply(new Float32Array(1), 1, 1, new Float32Array(1), 1, 1);
    for await (const event of run(promptIds.slice(0, 8), 2, undefined)) if (event.kind === 'done' && event.stats.generatedTokens !== 3) throw new Error('probe: the warm-up stopped early');

    let attended = 0;
    let done = 0;
    const decodeRows: number[] = [];
    let result: SpeedProbeResult | undefined;
    for await (const event of run(promptIds, spec.decodeSteps, spec.prefillChunk)) {
      if (event.kind === 'prefill') {
        attended += attendedRowsOfChunk(event.tokensDone - done, event.stats.cacheRows);
        done = event.tokensDone;
      } else if (event.kind === 'token') {
        // Every token but the last is fed back: that step reads the cache rows plus itself.
        if (event.stats.generatedTokens <= spec.decodeSteps) decodeRows.push(event.stats.cacheRows + 1);
      } else {
        const s = event.stats;
        if (s.generatedTokens !== spec.decodeSteps + 1) throw new Error(`probe: generation stopped early (${event.reason}) after ${s.generatedTokens} tokens`);
        result = {
          engine: 'freqkv',
          cache: spec.cache,
          contextTokens: L,
          decodeSteps: spec.decodeSteps,
          capacity,
          loadMs,
          prefillMs: s.prefillMs,
          prefillTokensPerSecond: s.prefillTokensPerSecond,
          decodeMs: s.decodeMs,
          decodeTokensPerSecond: s.decodeTokensPerSecond,
          timeToFirstTokenMs: s.timeToFirstTokenMs,
          peakRssBytes: 0,
          meanPrefillAttendedRows: attended / L,
          meanDecodeCacheRows: decodeRows.reduce((a, b) => a + b, 0) / Math.max(1, decodeRows.length),
          cacheRowsAtEnd: s.cacheRows,
          compressions: s.compressions,
          compressMs: s.compressMs,
          prefillMode: `chunks of at most ${Math.min(spec.prefillChunk ?? DEFAULT_PREFILL_CHUNK, compressor.maxChunk(engine.session.createCache(capacity)))} tokens`,
          warnings,
        };
      }
    }
    if (!result) throw new Error('probe: the generation ended without a done event');
    result.peakRssBytes = peakRssBytes();
    return result;
  } finally {
    await engine.dispose();
  }
}
