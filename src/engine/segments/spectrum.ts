// A segment's rows as DCT coefficients along the sequence, and back at any length
// (docs/kv-compression.md §1, "The transform"). forwardDct takes L rows to all L orthonormal DCT-II
// coefficients; inverseDct takes the first L' of them to L' rows with the L'-point orthonormal
// inverse, scaled by sqrt(L'/L). So inverseDct(forwardDct(x), L, L') equals FreqKV's
// DctPlan(L, L').apply(x) (the channel mean is kept), and L' = L gives x back. A segment stored
// with fewer coefficients than L' (segmentBuilder.ts, storedCoefficients) is rebuilt with the
// missing high frequencies taken as zero.
// Blocks are [heads, rows, headDim] float32 (the KvCache layout). The transform itself is the
// codecs' sequenceDct / inverseSequenceDct (FFT-based, O(L log L) per channel); this file gives
// it the store's array signature.

import { inverseSequenceDct, sequenceDct } from './codecs/sequenceDct';

/** All L coefficients of each channel of a [heads, L, dim] block: X[k] = Σ_j basis_L[k][j] · x[j]. */
export function forwardDct(block: Float32Array, heads: number, rows: number, dim: number): Float32Array {
  if (block.length !== heads * rows * dim) throw new RangeError(`forwardDct: ${block.length} elements for ${heads}×${rows}×${dim}`);
  return sequenceDct({ rows, numKvHeads: heads, headDim: dim, data: block }).data;
}

/**
 * Rows of a segment rebuilt at length `outRows` (L' ≤ L) from its first coefficients, given as a
 * [heads, K, dim] block (K = coefficients.length / (heads · dim); rows K … L' − 1 count as zero,
 * rows past L' are not used): y[m] = sqrt(L'/L) · Σ_{k<min(K, L')} basis_L'[k][m] · X[k].
 */
export function inverseDct(coefficients: Float32Array, heads: number, outRows: number, dim: number, fullRows: number): Float32Array {
  const given = coefficients.length / (heads * dim);
  if (!Number.isInteger(given) || given > fullRows) throw new RangeError(`inverseDct: ${coefficients.length} elements are not ${heads}×K×${dim} with K <= L = ${fullRows}`);
  if (!(outRows >= 1 && outRows <= fullRows)) throw new RangeError(`inverseDct: need 1 <= L' <= L (got L'=${outRows}, L=${fullRows})`);
  return inverseSequenceDct({ rows: given, numKvHeads: heads, headDim: dim, data: coefficients }, fullRows, outRows).data;
}
