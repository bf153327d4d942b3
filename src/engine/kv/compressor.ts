// The one small interface every KV-cache policy implements (docs/kv-compression.md §1 and §3).
// The generator calls `maxChunk` to size each forward pass and `makeRoom` right before it,
// so a compressor decides when and how the cache shrinks; a row's position stays its slot.

import { float16ToFloat32, float32ToFloat16 } from '../floatFormats';
import type { KvArray, KvCache } from './kvCache';

export type CacheMethod = 'full' | 'freqkv' | 'streaming';

export interface KvCompressor {
  readonly name: CacheMethod;
  /** N: the most rows the cache holds. */
  readonly capacity: number;
  /**
   * Called before `incoming` rows are appended (incoming ≤ maxChunk(cache)). If they would
   * not fit in `capacity` rows, rewrites the cache so they do. Returns true if it changed the cache.
   */
  makeRoom(cache: KvCache, incoming: number): boolean;
  /** The most tokens one forward pass may append next (Infinity: no limit of its own). */
  maxChunk(cache: KvCache): number;
  /**
   * Optional: makeRoom with its matrix products done by `multiply` (onnxruntime, asynchronous).
   * The generator uses it when the session offers a multiplier; results equal makeRoom's up to
   * float rounding.
   */
  makeRoomWith?(cache: KvCache, incoming: number, multiply: BatchedMultiply): Promise<boolean>;
}

/**
 * Y[b] = M · X[b] for every b: M [rows, inner] row-major, X [batch, inner, width], returns
 * Y [batch, rows, width] (float32).
 */
export type BatchedMultiply = (m: Float32Array, rows: number, inner: number, x: Float32Array, batch: number, width: number) => Promise<Float32Array>;

/** A layer's keys or values as float32 (a copy when the cache stores float16). */
export function toFloat32(data: KvArray): Float32Array {
  if (data instanceof Float32Array) return data;
  return float16ToFloat32(data, new Float32Array(data.length));
}

/** float32 data in the cache's element type. */
export function fromFloat32(data: Float32Array, cache: KvCache): KvArray {
  return cache.elementType === 'float16' ? float32ToFloat16(data, new Uint16Array(data.length)) : data;
}

/** Copies rows [from, from + count) of every head of a [heads, rows, dim] array to rows [to, …) of `out` [heads, outRows, dim]. */
export function copyRows(src: Float32Array, rows: number, from: number, count: number, out: Float32Array, outRows: number, to: number, heads: number, dim: number): void {
  for (let h = 0; h < heads; h++) {
    const s = (h * rows + from) * dim;
    out.set(src.subarray(s, s + count * dim), (h * outRows + to) * dim);
  }
}
