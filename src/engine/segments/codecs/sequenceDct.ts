// The transform a stored segment is in: per channel, the orthonormal DCT-II along the sequence
// (docs/kv-compression.md §1), so that row k of the result is coefficient k. Rebuilding at L' ≤ L
// rows takes the first L' coefficients, an L'-point orthonormal inverse, and the factor
// sqrt(L'/L) (for L' = L this is the exact inverse). Blocks are [heads, rows, head_dim]
// float32, as in KvCache. Both directions are FFT-based, O(L log L) per channel (fastDct.ts).
// Used by the segment store (spectrum.ts), RVQ calibration and the codec quality script.

import { fastDctOf } from '../../kv/fastDct';
import type { SegmentBlock } from '../codec';

/** Rows of a block (time) → the same number of DCT coefficient rows. */
export function sequenceDct(block: SegmentBlock): SegmentBlock {
  const { rows: L, numKvHeads: heads, headDim: dim, data } = block;
  const out = new Float32Array(data.length);
  if (L > 0) {
    const dct = fastDctOf(L);
    for (let h = 0; h < heads; h++) dct.forward(data, h * L * dim, dim, out, h * L * dim);
  }
  return { rows: L, numKvHeads: heads, headDim: dim, data: out };
}

/**
 * Coefficient rows of a segment that had `originalRows` rows → `outRows` time rows: the first
 * outRows coefficients (coefficient rows the block does not hold count as zero), an
 * outRows-point inverse, scaled by sqrt(outRows / originalRows).
 */
export function inverseSequenceDct(coefficients: SegmentBlock, originalRows: number, outRows: number): SegmentBlock {
  const { rows, numKvHeads: heads, headDim: dim, data } = coefficients;
  if (!Number.isInteger(outRows) || outRows < 0 || outRows > originalRows || rows > originalRows) {
    throw new RangeError(`inverseSequenceDct: ${outRows} rows from ${rows} coefficients of a ${originalRows}-row segment`);
  }
  const out = new Float32Array(heads * outRows * dim);
  if (outRows > 0) {
    const dct = fastDctOf(outRows);
    const scale = Math.sqrt(outRows / originalRows);
    for (let h = 0; h < heads; h++) dct.inverse(data, h * rows * dim, rows, dim, out, h * outRows * dim, scale);
  }
  return { rows: outRows, numKvHeads: heads, headDim: dim, data: out };
}
