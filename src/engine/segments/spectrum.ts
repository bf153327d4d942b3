// A segment's rows as DCT coefficients along the sequence, and back at any length
// (KV-COMPRESSION.md §1, "The transform"). forwardDct takes L rows to all L orthonormal DCT-II
// coefficients; inverseDct takes the first L' of them to L' rows with the L'-point orthonormal
// inverse, scaled by sqrt(L'/L). So inverseDct(forwardDct(x), L, L') equals FreqKV's
// DctPlan(L, L').apply(x) (the channel mean is kept), and L' = L gives x back.
// Blocks are [heads, rows, headDim] float32 (the KvCache layout). Bases are built in float64.

import { dctBasis } from '../kv/dctPlan';

const MAX_BASES = 64;
const bases = new Map<number, Float64Array>();

/** The orthonormal DCT-II basis of length n, row-major [k, j], from a small LRU cache. */
function basis(n: number): Float64Array {
  let b = bases.get(n);
  if (b) {
    bases.delete(n);
  } else {
    b = new Float64Array(n * n);
    for (let k = 0; k < n; k++) for (let j = 0; j < n; j++) b[k * n + j] = dctBasis(n, k, j);
    if (bases.size >= MAX_BASES) bases.delete(bases.keys().next().value!);
  }
  bases.set(n, b);
  return b;
}

/** All L coefficients of each channel of a [heads, L, dim] block: X[k] = Σ_j basis_L[k][j] · x[j]. */
export function forwardDct(block: Float32Array, heads: number, rows: number, dim: number): Float32Array {
  if (block.length !== heads * rows * dim) throw new RangeError(`forwardDct: ${block.length} elements for ${heads}×${rows}×${dim}`);
  const B = basis(rows);
  const out = new Float32Array(block.length);
  const acc = new Float64Array(dim);
  for (let h = 0; h < heads; h++) {
    const base = h * rows * dim;
    for (let k = 0; k < rows; k++) {
      acc.fill(0);
      for (let j = 0; j < rows; j++) {
        const w = B[k * rows + j]!;
        const src = base + j * dim;
        for (let c = 0; c < dim; c++) acc[c] = acc[c]! + w * block[src + c]!;
      }
      out.set(acc, base + k * dim);
    }
  }
  return out;
}

/**
 * Rows of a segment rebuilt at length `outRows` (L' ≤ L) from its first L' coefficients, given
 * as a [heads, L', dim] block: y[m] = sqrt(L'/L) · Σ_{k<L'} basis_L'[k][m] · X[k].
 */
export function inverseDct(coefficients: Float32Array, heads: number, outRows: number, dim: number, fullRows: number): Float32Array {
  if (coefficients.length !== heads * outRows * dim) throw new RangeError(`inverseDct: ${coefficients.length} elements for ${heads}×${outRows}×${dim}`);
  if (!(outRows >= 1 && outRows <= fullRows)) throw new RangeError(`inverseDct: need 1 <= L' <= L (got L'=${outRows}, L=${fullRows})`);
  const B = basis(outRows);
  const scale = Math.sqrt(outRows / fullRows);
  const out = new Float32Array(coefficients.length);
  const acc = new Float64Array(dim);
  for (let h = 0; h < heads; h++) {
    const base = h * outRows * dim;
    for (let m = 0; m < outRows; m++) {
      acc.fill(0);
      for (let k = 0; k < outRows; k++) {
        const w = B[k * outRows + m]!;
        const src = base + k * dim;
        for (let c = 0; c < dim; c++) acc[c] = acc[c]! + w * coefficients[src + c]!;
      }
      for (let c = 0; c < dim; c++) out[base + m * dim + c] = scale * acc[c]!;
    }
  }
  return out;
}
