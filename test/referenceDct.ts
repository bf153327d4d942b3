// The segment transform as the store first computed it, by its definition in O(L²) per channel:
// the orthonormal DCT-II along the sequence (docs/kv-compression.md §1), and the rebuild at L' rows
// from the first L' coefficients (an L'-point orthonormal inverse times sqrt(L'/L)). Blocks are
// [heads, rows, head_dim] float32; the sums run in float64. The reference the FFT-based
// transform (src/engine/kv/fastDct.ts) is tested against, and its peer in
// scripts/segment-dct-bench.ts.

import { dctBasis } from '../src/engine/kv/dctPlan';
import type { SegmentBlock } from '../src/engine/segments/codec';

const MAX_BASES = 16;
const bases = new Map<number, Float64Array>();

/** basis[k·n + j] = dctBasis(n, k, j), cached for a few lengths. */
function basisOf(n: number): Float64Array {
  let basis = bases.get(n);
  if (!basis) {
    basis = new Float64Array(n * n);
    for (let k = 0; k < n; k++) for (let j = 0; j < n; j++) basis[k * n + j] = dctBasis(n, k, j);
    if (bases.size >= MAX_BASES) bases.delete(bases.keys().next().value!);
    bases.set(n, basis);
  }
  return basis;
}

/** Rows of a block (time) → the same number of DCT coefficient rows. */
export function referenceSequenceDct(block: SegmentBlock): SegmentBlock {
  const { rows: L, numKvHeads: heads, headDim: dim, data } = block;
  const out = new Float32Array(data.length);
  if (L === 0) return { ...block, data: out };
  const basis = basisOf(L);
  // Each channel's rows as one contiguous column, so that X[k] is a dot product of two
  // contiguous arrays (basis row k and the column).
  const columns = new Float64Array(dim * L);
  for (let h = 0; h < heads; h++) {
    const base = h * L * dim;
    for (let j = 0; j < L; j++) for (let d = 0; d < dim; d++) columns[d * L + j] = data[base + j * dim + d]!;
    for (let k = 0; k < L; k++) {
      const b = k * L;
      for (let d = 0; d < dim; d++) {
        const c = d * L;
        let s0 = 0;
        let s1 = 0;
        let j = 0;
        for (; j + 1 < L; j += 2) {
          s0 += basis[b + j]! * columns[c + j]!;
          s1 += basis[b + j + 1]! * columns[c + j + 1]!;
        }
        if (j < L) s0 += basis[b + j]! * columns[c + j]!;
        out[base + k * dim + d] = s0 + s1;
      }
    }
  }
  return { rows: L, numKvHeads: heads, headDim: dim, data: out };
}

/**
 * Coefficient rows of a segment that had `originalRows` rows (at least `outRows` coefficient
 * rows given) → `outRows` time rows: the first outRows coefficients, an outRows-point inverse,
 * scaled by sqrt(outRows / originalRows).
 */
export function referenceInverseSequenceDct(coefficients: SegmentBlock, originalRows: number, outRows: number): SegmentBlock {
  const { rows, numKvHeads: heads, headDim: dim, data } = coefficients;
  if (!Number.isInteger(outRows) || outRows < 0 || outRows > rows || outRows > originalRows) {
    throw new RangeError(`inverseSequenceDct: ${outRows} rows from ${rows} coefficients of a ${originalRows}-row segment`);
  }
  const out = new Float32Array(heads * outRows * dim);
  if (outRows === 0) return { rows: 0, numKvHeads: heads, headDim: dim, data: out };
  const basis = basisOf(outRows);
  const scale = Math.sqrt(outRows / originalRows);
  const acc = new Float64Array(dim);
  for (let h = 0; h < heads; h++) {
    const inBase = h * rows * dim;
    const outBase = h * outRows * dim;
    for (let m = 0; m < outRows; m++) {
      acc.fill(0);
      for (let k = 0; k < outRows; k++) {
        const w = basis[k * outRows + m]!;
        const row = inBase + k * dim;
        for (let d = 0; d < dim; d++) acc[d] = acc[d]! + w * data[row + d]!;
      }
      for (let d = 0; d < dim; d++) out[outBase + m * dim + d] = scale * acc[d]!;
    }
  }
  return { rows: outRows, numKvHeads: heads, headDim: dim, data: out };
}
