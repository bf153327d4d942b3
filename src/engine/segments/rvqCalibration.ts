// Calibration of residual-VQ codebooks (docs/kv-compression.md §2) on the model's own keys and
// values, in the form a stored segment has them: each calibration text is prefilled on its own
// (after BOS), its keys are un-rotated to pre-RoPE (row j sits at slot j, as in
// freqKvCompressor.ts), the prefix rows are dropped, and keys and values are DCT'd along the
// sequence (sequenceDct.ts). Every coefficient row of every head is then scaled (rvqCodec.ts)
// and split into sub-vectors; stage k's codebook is k-means of what stages < k left.
// Deterministic for a seed: the texts, the sample subset and every k-means draw come from it.
// Every step takes an AbortSignal: sampling stops between tokens, collecting between chunks, and
// fitting yields to the event loop after every k-means stage (so a Cancel message is delivered)
// and stops there, throwing IngestCancelledError (what a cancelled question throws); nothing is returned half-fitted.

import { Sampler } from '../generate/sampler';
import { toFloat32 } from '../kv/compressor';
import { rotarySpecOf, rotateRows } from '../kv/rotary';
import type { DecoderSession } from '../model/decoderSession';
import { createRng } from '../random';
import type { SegmentBlock, SegmentKind } from './codec';
import type { RvqCodebooks, RvqParameters } from './codecs/codecState';
import { groupChannel, scaleCoderOf, vectorScale, type ScaleCoder } from './codecs/rvqCodec';
import { sequenceDct } from './codecs/sequenceDct';
import { kmeans } from './kmeans';
import { IngestCancelledError } from '../workspace/ingest';

function checkCancelled(signal: AbortSignal | undefined, step: string): void {
  if (signal?.aborted) throw new IngestCancelledError(`Calibrating the RVQ codebooks was cancelled while ${step}; nothing was saved, the next rvq question calibrates again.`);
}

/** Lets pending messages (a Cancel) run before the next synchronous stretch. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Per layer, the coefficient blocks of every calibration segment. */
export interface CalibrationBlocks {
  keys: SegmentBlock[][];
  values: SegmentBlock[][];
}

export interface CollectOptions {
  /** Rows at the start of each text that are not part of the segment (default 1: BOS). */
  prefixRows?: number;
  /** Tokens per forward pass (default 128). */
  chunkSize?: number;
  /** Stops between texts and chunks (IngestCancelledError). */
  signal?: AbortSignal;
}

/**
 * Prefills every token sequence on its own (each must fit the model's context) and returns the
 * pre-RoPE keys and values of the rows after the prefix, as DCT coefficients along the sequence.
 */
export async function collectSegmentCoefficients(session: DecoderSession, texts: readonly (readonly number[])[], options: CollectOptions = {}): Promise<CalibrationBlocks> {
  const config = session.folder.config;
  const rotary = rotarySpecOf(config);
  const prefix = options.prefixRows ?? 1;
  const chunkSize = options.chunkSize ?? 128;
  const { numLayers, numKvHeads: heads, headDim: dim } = config;
  const result: CalibrationBlocks = { keys: Array.from({ length: numLayers }, () => []), values: Array.from({ length: numLayers }, () => []) };
  for (const [t, tokens] of texts.entries()) {
    if (tokens.length <= prefix) continue;
    if (tokens.length > config.maxPositionEmbeddings) throw new RangeError(`collectSegmentCoefficients: a text of ${tokens.length} tokens exceeds the model's ${config.maxPositionEmbeddings}-token context; split it`);
    const cache = session.createCache(tokens.length);
    for (let at = 0; at < tokens.length; at += chunkSize) {
      checkCancelled(options.signal, `prefilling calibration text ${t + 1} of ${texts.length}`);
      await session.forward(tokens.slice(at, at + chunkSize), cache, { logits: 'none' });
    }
    const n = cache.rows;
    const L = n - prefix;
    const positions = Float64Array.from({ length: L }, (_, j) => prefix + j);
    for (let layer = 0; layer < numLayers; layer++) {
      for (const kind of ['key', 'value'] as const) {
        const all = toFloat32(kind === 'key' ? cache.keys(layer) : cache.values(layer));
        const rows = new Float32Array(heads * L * dim);
        for (let h = 0; h < heads; h++) rows.set(all.subarray((h * n + prefix) * dim, (h * n + n) * dim), h * L * dim);
        if (kind === 'key') rotateRows(rotary, rows, heads, L, positions, -1);
        (kind === 'key' ? result.keys : result.values)[layer]!.push(sequenceDct({ rows: L, numKvHeads: heads, headDim: dim, data: rows }));
      }
    }
  }
  return result;
}

export interface RvqCalibrationOptions extends Partial<RvqParameters> {
  seed?: number;
  /** Lloyd iterations per stage (default 8). */
  iterations?: number;
  /** Sub-vectors per (layer, kind) used for fitting at most (default 8192), drawn with the seed. */
  maxSamples?: number;
  /** Checked after every k-means stage (the event loop runs in between); aborting throws IngestCancelledError. */
  signal?: AbortSignal;
}

/**
 * Defaults for stories260K's head_dim 8, chosen with `scripts/codec-quality.ts --sweep`
 * (bench-results/codecs-sweep.json): at equal bytes, sub-vectors of 4 beat whole-head vectors
 * from ~200 bytes per token up, and 8-bit log scales beat float16 scales (the scale is a third of
 * a 4-stage code at head_dim 8). 3 stages of 256 entries: 281 bytes per token (float32: 1280,
 * int8: 372) with KL 5e-4 and top-1 agreement 0.99; 2 stages give 201 bytes at KL 5e-3.
 */
export const RVQ_DEFAULTS: RvqParameters = { subDim: 4, stages: 3, entries: 256, scale: 'std', scaleBits: 8 };

/** log2 of the smallest and largest per-vector scale in `blocks`. */
export function scaleRange(blocks: readonly SegmentBlock[], mode: RvqParameters['scale']): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const { rows, numKvHeads: heads, headDim: dim, data } of blocks) {
    for (let v = 0; v < heads * rows; v++) {
      const l = Math.log2(vectorScale(data, v * dim, dim, mode));
      if (l < lo) lo = l;
      if (l > hi) hi = l;
    }
  }
  return Number.isFinite(lo) ? [lo, hi] : [0, 0];
}

/** The scaled sub-vectors of every coefficient row and head of `blocks`, [n, subDim] row-major. */
export function rvqSamples(blocks: readonly SegmentBlock[], kind: SegmentKind, parameters: Pick<RvqParameters, 'subDim' | 'scale'>, scales: ScaleCoder): Float32Array {
  const { subDim, scale } = parameters;
  let count = 0;
  for (const block of blocks) count += block.rows * block.numKvHeads * (block.headDim / subDim);
  const out = new Float32Array(count * subDim);
  let at = 0;
  for (const block of blocks) {
    const { rows, numKvHeads: heads, headDim: dim, data } = block;
    const G = dim / subDim;
    for (let h = 0; h < heads; h++) {
      for (let r = 0; r < rows; r++) {
        const offset = (h * rows + r) * dim;
        // The scale rounded exactly as the codec stores it.
        const s = scales.decode(scales.encode(vectorScale(data, offset, dim, scale)));
        for (let b = 0; b < G; b++) for (let j = 0; j < subDim; j++) out[at++] = data[offset + groupChannel(kind, b, j, G, subDim)]! / s;
      }
    }
  }
  return out;
}

/**
 * Fits the codebooks of every layer and kind on the collected coefficient blocks. Each k-means
 * stage runs synchronously (tens of ms at 8192 sub-vectors and 256 entries); between stages the
 * event loop runs and `signal` is checked.
 */
export async function fitRvqCodebooks(blocks: CalibrationBlocks, options: RvqCalibrationOptions = {}): Promise<RvqCodebooks> {
  const parameters: RvqParameters = {
    subDim: options.subDim ?? RVQ_DEFAULTS.subDim,
    stages: options.stages ?? RVQ_DEFAULTS.stages,
    entries: options.entries ?? RVQ_DEFAULTS.entries,
    scale: options.scale ?? RVQ_DEFAULTS.scale,
    scaleBits: options.scaleBits ?? RVQ_DEFAULTS.scaleBits,
  };
  const seed = options.seed ?? 0;
  const maxSamples = options.maxSamples ?? 8192;
  const first = blocks.keys[0]?.[0];
  if (!first) throw new RangeError('fitRvqCodebooks: no calibration blocks (the texts were empty)');
  const { headDim } = first;
  const { subDim, stages, entries } = parameters;
  if (!Number.isInteger(subDim) || subDim < 1 || headDim % subDim !== 0) throw new RangeError(`fitRvqCodebooks: sub-vectors of ${subDim} channels do not divide head_dim ${headDim}`);
  const numLayers = blocks.keys.length;
  const scaleRanges = new Float32Array(numLayers * 4);
  for (let layer = 0; layer < numLayers; layer++) {
    scaleRanges.set(scaleRange(blocks.keys[layer]!, parameters.scale), layer * 4);
    scaleRanges.set(scaleRange(blocks.values[layer]!, parameters.scale), layer * 4 + 2);
  }
  const books: RvqCodebooks = { ...parameters, numLayers, headDim, scaleRanges, keys: [], values: [] };
  for (let layer = 0; layer < numLayers; layer++) {
    for (const kind of ['key', 'value'] as const) {
      const streamSeed = seed * 1000003 + layer * 2 + (kind === 'key' ? 0 : 1);
      const scales = scaleCoderOf(books, kind, layer);
      const all = rvqSamples((kind === 'key' ? blocks.keys : blocks.values)[layer]!, kind, parameters, scales);
      const residual = subsample(all, subDim, maxSamples, createRng(streamSeed));
      const book = new Float32Array(stages * entries * subDim);
      const n = residual.length / subDim;
      for (let k = 0; k < stages; k++) {
        await yieldToEventLoop();
        checkCancelled(options.signal, `fitting layer ${layer + 1} of ${numLayers}`);
        const fit = kmeans(residual, subDim, { clusters: entries, iterations: options.iterations ?? 8, seed: streamSeed * 31 + k });
        book.set(fit.centroids, k * entries * subDim);
        // What this stage leaves is what the next one fits (the greedy encoder's residual: the
        // assignments are the nearest entries of the final centroids).
        for (let i = 0; i < n; i++) {
          const c = fit.assignments[i]!;
          for (let j = 0; j < subDim; j++) residual[i * subDim + j] = residual[i * subDim + j]! - fit.centroids[c * subDim + j]!;
        }
      }
      (kind === 'key' ? books.keys : books.values).push(book);
    }
  }
  return books;
}

/** Collects coefficient blocks from `texts` (see collectSegmentCoefficients) and fits codebooks on them. */
export async function calibrateRvq(session: DecoderSession, texts: readonly (readonly number[])[], options: RvqCalibrationOptions & CollectOptions = {}): Promise<RvqCodebooks> {
  return await fitRvqCodebooks(await collectSegmentCoefficients(session, texts, options), options);
}

/**
 * `count` texts of `length` tokens that the model writes itself from BOS (temperature 1, seeded):
 * calibration data in the model's own distribution when there is little real text.
 */
export async function sampleCalibrationTexts(session: DecoderSession, options: { count: number; length: number; seed?: number; bos?: number; signal?: AbortSignal }): Promise<number[][]> {
  const config = session.folder.config;
  const length = Math.min(options.length, config.maxPositionEmbeddings);
  const bos = options.bos ?? session.folder.bosTokenId ?? 1;
  const vocab = session.vocabSize;
  const texts: number[][] = [];
  for (let t = 0; t < options.count; t++) {
    const sampler = new Sampler({ temperature: 1 }, createRng((options.seed ?? 0) * 7919 + t), vocab);
    const cache = session.createCache(length);
    const tokens = [bos];
    let logits = await session.forward([bos], cache, { logits: 'last' });
    while (tokens.length < length) {
      checkCancelled(options.signal, `sampling calibration text ${t + 1} of ${options.count}`);
      const next = sampler.sample(logits.subarray(logits.length - vocab));
      tokens.push(next);
      if (tokens.length < length) logits = await session.forward([next], cache, { logits: 'last' });
    }
    texts.push(tokens);
  }
  return texts;
}

/** The codebooks with only their first `stages` stages: what a calibration with that many stages gives (stages are fitted greedily, in order). */
export function truncateRvqStages(books: RvqCodebooks, stages: number): RvqCodebooks {
  if (!Number.isInteger(stages) || stages < 1 || stages > books.stages) throw new RangeError(`truncateRvqStages: ${stages} of ${books.stages} stages`);
  const size = stages * books.entries * books.subDim;
  return { ...books, stages, keys: books.keys.map((b) => b.slice(0, size)), values: books.values.map((b) => b.slice(0, size)) };
}

/** At most `max` points of `points` ([n, dim]), a seeded random subset in their original order; a copy. */
function subsample(points: Float32Array, dim: number, max: number, random: () => number): Float32Array {
  const n = points.length / dim;
  if (n <= max) return points.slice();
  // Selection sampling (Knuth's algorithm S): each point is kept with probability needed/left.
  const out = new Float32Array(max * dim);
  let kept = 0;
  for (let i = 0; i < n && kept < max; i++) {
    if (random() * (n - i) < max - kept) out.set(points.subarray(i * dim, (i + 1) * dim), kept++ * dim);
  }
  return out;
}
