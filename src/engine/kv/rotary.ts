// Rotary position embedding applied to cached keys outside the graph, exactly as the decoder
// graph does it (src/builder/decoderGraph.ts `rotary`): angle = float32(position) · inv_freq in
// float32, cos and sin rounded to float32, pairs (2i, 2i+1) for the interleaved layout or
// (i, i + R/2) for rotate-half, only the first R = rotaryDim channels of each head.
//
// Keys are stored [kv_heads, rows, head_dim] (float32). Rotating by −p undoes position p.

import { ropeInverseFrequencies, rotaryDimOf, type DecoderConfig, type RopeLayout } from '../model/modelConfig';

export interface RotarySpec {
  layout: RopeLayout;
  headDim: number;
  /** Channels rotated at the start of each head (even). */
  rotaryDim: number;
  /** Length rotaryDim / 2, as float32 values (what the graph multiplies by). */
  invFreq: Float32Array;
}

export function rotarySpecOf(config: DecoderConfig): RotarySpec {
  return { layout: config.ropeLayout, headDim: config.headDim, rotaryDim: rotaryDimOf(config), invFreq: Float32Array.from(ropeInverseFrequencies(config)) };
}

/** cos and sin of float32(position) · invFreq as the graph computes them, each length R/2. */
export function rotaryAngles(spec: RotarySpec, position: number, cos: Float32Array, sin: Float32Array): void {
  const p = Math.fround(position);
  for (let i = 0; i < spec.invFreq.length; i++) {
    const angle = Math.fround(p * spec.invFreq[i]!);
    cos[i] = Math.cos(angle);
    sin[i] = Math.sin(angle);
  }
}

/** Rotates one head vector in place at `offset` by the angles whose cos/sin are given (sign −1 rotates back). */
function rotateVector(spec: RotarySpec, x: Float32Array, offset: number, cos: Float32Array, sin: Float32Array, sign: 1 | -1): void {
  const half = spec.invFreq.length;
  const interleaved = spec.layout === 'interleaved';
  for (let i = 0; i < half; i++) {
    const a = interleaved ? offset + 2 * i : offset + i;
    const b = interleaved ? a + 1 : offset + i + half;
    const c = cos[i]!;
    const s = sign * sin[i]!;
    const xa = x[a]!;
    const xb = x[b]!;
    x[a] = xa * c - xb * s;
    x[b] = xb * c + xa * s;
  }
}

/**
 * Rotates row r of every head of `keys` [heads, rows, head_dim] in place from no position to
 * `positions[r]` (direction 1), or un-rotates it from `positions[r]` (direction −1). Given several
 * arrays of that shape (e.g. every layer's keys of one segment), each row's angles are computed
 * once for all of them.
 */
export function rotateRows(spec: RotarySpec, keys: Float32Array | readonly Float32Array[], heads: number, rows: number, positions: ArrayLike<number>, direction: 1 | -1): void {
  const { headDim } = spec;
  const arrays = keys instanceof Float32Array ? [keys] : keys;
  for (const array of arrays) if (array.length !== heads * rows * headDim) throw new RangeError(`rotateRows: ${array.length} elements for ${heads}×${rows}×${headDim}`);
  if (positions.length < rows) throw new RangeError(`rotateRows: ${positions.length} positions for ${rows} rows`);
  const half = spec.invFreq.length;
  const cos = new Float32Array(half);
  const sin = new Float32Array(half);
  for (let r = 0; r < rows; r++) {
    rotaryAngles(spec, positions[r]!, cos, sin);
    for (const array of arrays) for (let h = 0; h < heads; h++) rotateVector(spec, array, (h * rows + r) * headDim, cos, sin, direction);
  }
}

/**
 * Moves rows [first, first + count) of each array in `keys` (all [heads, rows, head_dim], e.g.
 * every layer's keys) from position `from + i` to `to + i`: un-rotate, then rotate. The angles
 * are computed once per row for all arrays.
 */
export function moveRows(spec: RotarySpec, keys: readonly Float32Array[], heads: number, rows: number, first: number, count: number, from: number, to: number): void {
  if (from === to || count === 0) return;
  const { headDim } = spec;
  const half = spec.invFreq.length;
  const cosFrom = new Float32Array(half);
  const sinFrom = new Float32Array(half);
  const cosTo = new Float32Array(half);
  const sinTo = new Float32Array(half);
  for (let i = 0; i < count; i++) {
    rotaryAngles(spec, from + i, cosFrom, sinFrom);
    rotaryAngles(spec, to + i, cosTo, sinTo);
    for (const array of keys) {
      for (let h = 0; h < heads; h++) {
        const offset = (h * rows + first + i) * headDim;
        rotateVector(spec, array, offset, cosFrom, sinFrom, -1);
        rotateVector(spec, array, offset, cosTo, sinTo, 1);
      }
    }
  }
}
