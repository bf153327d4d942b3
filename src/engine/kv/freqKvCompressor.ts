// FreqKV (Kai et al., "FreqKV: Frequency Domain Key-Value Compression for Efficient Context
// Window Extension", arXiv 2505.00570; docs/kv-compression.md §1): when the next rows would not fit in N, rows [S, n) are
// compressed to L' = floor(γ·(n − S)) rows by a DCT along the sequence per channel, keys
// before RoPE: un-rotate row j by its slot j, compress, rotate compressed row m to slot S + m.
// Sinks are untouched. Optionally (ours, a remedy the fidelity benchmark measures) the R most
// recent rows are never compressed either: rows [S, n − R) are compressed and the recent R rows
// move down (re-rotated) behind them. R = 0 is the paper's method. Float16 caches are transformed in float32 and stored back in float16.

import { copyRows, fromFloat32, toFloat32, type BatchedMultiply, type KvCompressor } from './compressor';
import { getDctPlan, type DctPlan } from './dctPlan';
import type { KvCache } from './kvCache';
import { moveRows, rotateRows, type RotarySpec } from './rotary';

export interface FreqKvParameters {
  /** N: cache rows. */
  capacity: number;
  /** S: sink rows never compressed. */
  sinks: number;
  /** γ in (0, 1): the share of the compressible rows kept. */
  retain: number;
  /** R: the most recent rows kept uncompressed at every compression (default 0, the paper's method). */
  recent?: number;
}

export class FreqKvCompressor implements KvCompressor {
  readonly name = 'freqkv';
  readonly capacity: number;
  readonly sinks: number;
  readonly retain: number;
  readonly recent: number;
  /** L' = floor(γ·(N − S − R)): rows the compressible span becomes when the cache is full. */
  readonly keptRows: number;
  /** step = (N − S − R) − L': tokens that fit between two compressions; the largest prefill chunk. */
  readonly step: number;

  constructor(
    parameters: FreqKvParameters,
    private readonly rotary: RotarySpec,
  ) {
    this.capacity = parameters.capacity;
    this.sinks = parameters.sinks;
    this.retain = parameters.retain;
    this.recent = parameters.recent ?? 0;
    if (!Number.isInteger(this.recent) || this.recent < 0 || this.capacity - this.sinks - this.recent < 2) {
      throw new RangeError(`FreqKvCompressor: recent window ${this.recent} does not leave 2 compressible rows in ${this.capacity} rows with ${this.sinks} sinks`);
    }
    const span = this.capacity - this.sinks - this.recent;
    this.keptRows = Math.floor(this.retain * span);
    this.step = span - this.keptRows;
  }

  /** The rows [S, n − R) compress to: floor(γ·(n − S − R)). */
  compressedRows(rows: number): number {
    return Math.floor(this.retain * (rows - this.sinks - this.recent));
  }

  /**
   * At most `step` tokens, and never past N while the cache is not yet full: so every
   * compression happens at exactly N rows, as with token-by-token decoding, and a chunked
   * prefill gives the same cache as feeding the prompt one token at a time.
   */
  maxChunk(cache: KvCache): number {
    return cache.rows < this.capacity ? Math.min(this.step, this.capacity - cache.rows) : this.step;
  }

  makeRoom(cache: KvCache, incoming: number): boolean {
    const job = this.prepare(cache, incoming);
    if (!job) return false;
    const { plan, spans, dim } = job;
    let compressed = new Float32Array(0);
    if (plan) {
      const blocks = spans.length / (plan.inputRows * dim);
      compressed = new Float32Array(blocks * plan.outputRows * dim);
      for (let b = 0; b < blocks; b++) plan.apply(spans, dim, compressed, b * plan.inputRows * dim, b * plan.outputRows * dim);
    }
    this.finish(cache, job, compressed);
    return true;
  }

  /**
   * makeRoom with the DCT as one batched matrix product through `multiply` (onnxruntime's
   * MatMul, many times faster than the JavaScript loop): the same rows up to float rounding.
   */
  async makeRoomWith(cache: KvCache, incoming: number, multiply: BatchedMultiply): Promise<boolean> {
    const job = this.prepare(cache, incoming);
    if (!job) return false;
    const { plan, spans, dim } = job;
    const compressed = plan ? await multiply(plan.matrix, plan.outputRows, plan.inputRows, spans, spans.length / (plan.inputRows * dim), dim) : new Float32Array(0);
    this.finish(cache, job, compressed);
    return true;
  }

  /**
   * Checks whether `incoming` rows need a compression; if so gathers every layer's keys and
   * values rows [S, S + L) into one [layers · 2 · heads, L, dim] block, keys un-rotated.
   */
  private prepare(cache: KvCache, incoming: number): CompressionJob | undefined {
    const n = cache.rows;
    if (n + incoming <= this.capacity) return undefined;
    if (incoming > this.step) throw new RangeError(`FreqKvCompressor: ${incoming} incoming rows exceed the step ${this.step}`);
    const { numLayers, numKvHeads: heads, headDim: dim } = cache.shape;
    const S = this.sinks;
    const R = Math.min(this.recent, n - S);
    const L = n - S - R;
    const L2 = this.compressedRows(n);
    const all: Float32Array[] = [];
    for (let layer = 0; layer < numLayers; layer++) all.push(toFloat32(cache.keys(layer)), toFloat32(cache.values(layer)));
    const job: CompressionJob = { n, S, R, L, L2, heads, dim, all, spans: new Float32Array(0) };
    if (L2 > 0) {
      job.plan = getDctPlan(L, L2);
      const block = heads * L * dim;
      job.spans = new Float32Array(all.length * block);
      const oldPositions = Float64Array.from({ length: L }, (_, j) => S + j);
      all.forEach((array, i) => {
        const span = job.spans.subarray(i * block, (i + 1) * block);
        copyRows(array, n, S, L, span, L, 0, heads, dim);
        if (i % 2 === 0) rotateRows(this.rotary, span, heads, L, oldPositions, -1);
      });
    }
    return job;
  }

  /** Rotates the compressed keys to their slots, assembles sinks + compressed + recent rows, and replaces the cache's rows. */
  private finish(cache: KvCache, job: CompressionJob, compressed: Float32Array): void {
    const { n, S, R, L, L2, heads, dim, all } = job;
    const outRows = S + L2 + R;
    const newPositions = Float64Array.from({ length: L2 }, (_, m) => S + m);
    const block = heads * L2 * dim;
    const keys: Float32Array[] = [];
    const values: Float32Array[] = [];
    all.forEach((array, i) => {
      const out = new Float32Array(heads * outRows * dim);
      copyRows(array, n, 0, S, out, outRows, 0, heads, dim);
      if (L2 > 0) {
        const part = compressed.subarray(i * block, (i + 1) * block);
        if (i % 2 === 0) rotateRows(this.rotary, part, heads, L2, newPositions, 1);
        copyRows(part, L2, 0, L2, out, outRows, S, heads, dim);
      }
      if (R > 0) copyRows(array, n, S + L, R, out, outRows, S + L2, heads, dim);
      (i % 2 === 0 ? keys : values).push(out);
    });
    // The recent rows move from slots S + L … to S + L' …
    moveRows(this.rotary, keys, heads, outRows, S + L2, R, S + L, S + L2);
    cache.replaceRows(
      keys.map((k) => fromFloat32(k, cache)),
      values.map((v) => fromFloat32(v, cache)),
      outRows,
    );
  }
}

interface CompressionJob {
  n: number;
  S: number;
  R: number;
  L: number;
  L2: number;
  heads: number;
  dim: number;
  /** Every layer's keys then values, float32, [heads, n, dim] each. */
  all: Float32Array[];
  /** The transform, unless nothing is left to compress (L' = 0). */
  plan?: DctPlan;
  /** [layers · 2 · heads, L, dim]: the rows compressed, keys un-rotated. */
  spans: Float32Array;
}
