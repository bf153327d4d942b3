// FreqKV (Kai et al., "FreqKV: Frequency Domain Key-Value Compression for Efficient Context
// Window Extension", arXiv 2505.00570; KV-COMPRESSION.md §1): when the next rows would not fit in N, rows [S, n) are
// compressed to L' = floor(γ·(n − S)) rows by a DCT along the sequence per channel, keys
// before RoPE: un-rotate row j by its slot j, compress, rotate compressed row m to slot S + m.
// Sinks are untouched. Optionally (ours, a remedy the fidelity benchmark measures) the R most
// recent rows are never compressed either: rows [S, n − R) are compressed and the recent R rows
// move down (re-rotated) behind them. R = 0 is the paper's method. Float16 caches are transformed in float32 and stored back in float16.

import { copyRows, fromFloat32, toFloat32, type KvCompressor } from './compressor';
import { getDctPlan } from './dctPlan';
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
    const n = cache.rows;
    if (n + incoming <= this.capacity) return false;
    if (incoming > this.step) throw new RangeError(`FreqKvCompressor: ${incoming} incoming rows exceed the step ${this.step}`);
    const { numLayers, numKvHeads: heads, headDim: dim } = cache.shape;
    const S = this.sinks;
    const R = Math.min(this.recent, n - S);
    const L = n - S - R;
    const L2 = this.compressedRows(n);
    const outRows = S + L2 + R;
    const plan = L2 > 0 ? getDctPlan(L, L2) : undefined;
    const oldPositions = Float64Array.from({ length: L }, (_, j) => S + j);
    const newPositions = Float64Array.from({ length: L2 }, (_, m) => S + m);
    const keys: Float32Array[] = [];
    const values: Float32Array[] = [];
    for (let layer = 0; layer < numLayers; layer++) {
      for (const isKey of [true, false]) {
        const all = toFloat32(isKey ? cache.keys(layer) : cache.values(layer));
        const out = new Float32Array(heads * outRows * dim);
        copyRows(all, n, 0, S, out, outRows, 0, heads, dim);
        if (plan) {
          const span = new Float32Array(heads * L * dim);
          copyRows(all, n, S, L, span, L, 0, heads, dim);
          if (isKey) rotateRows(this.rotary, span, heads, L, oldPositions, -1);
          const compressed = new Float32Array(heads * L2 * dim);
          for (let h = 0; h < heads; h++) plan.apply(span, dim, compressed, h * L * dim, h * L2 * dim);
          if (isKey) rotateRows(this.rotary, compressed, heads, L2, newPositions, 1);
          copyRows(compressed, L2, 0, L2, out, outRows, S, heads, dim);
        }
        if (R > 0) copyRows(all, n, S + L, R, out, outRows, S + L2, heads, dim);
        (isKey ? keys : values).push(out);
      }
    }
    // The recent rows move from slots S + L … to S + L' …
    moveRows(this.rotary, keys, heads, outRows, S + L2, R, S + L, S + L2);
    cache.replaceRows(
      keys.map((k) => fromFloat32(k, cache)),
      values.map((v) => fromFloat32(v, cache)),
      outRows,
    );
    return true;
  }
}
