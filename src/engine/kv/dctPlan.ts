// The FreqKV transform as one precomputed matrix per (L, L') pair (docs/kv-compression.md §1,
// "The transform"): y = M · x with M = sqrt(L'/L) · IDCT_{L'} · (first L' rows of the
// orthonormal DCT-II of length L). M is built in float64 and stored as float32; applying it
// to a row-major [L, width] block costs L'·L·width multiply-adds.

/** The orthonormal DCT-II basis value: sqrt((2 − δ(k,0)) / n) · cos(π k (2j+1) / (2n)). */
export function dctBasis(n: number, k: number, j: number): number {
  return Math.sqrt((k === 0 ? 1 : 2) / n) * Math.cos((Math.PI * k * (2 * j + 1)) / (2 * n));
}

export class DctPlan {
  /** M, row-major [outputRows, inputRows]. */
  readonly matrix: Float32Array;

  constructor(
    /** L: the number of rows compressed. */
    readonly inputRows: number,
    /** L': the number of rows they become (1 ≤ L' ≤ L). */
    readonly outputRows: number,
  ) {
    if (!Number.isInteger(inputRows) || !Number.isInteger(outputRows) || outputRows < 1 || outputRows > inputRows) {
      throw new RangeError(`DctPlan: need whole numbers 1 <= L' <= L (got L=${inputRows}, L'=${outputRows})`);
    }
    const L = inputRows;
    const L2 = outputRows;
    const scale = Math.sqrt(L2 / L);
    // forward[k][n] for k < L' (float64), then M[m][n] = scale · Σ_k inverse[m][k] · forward[k][n].
    const forward = new Float64Array(L2 * L);
    for (let k = 0; k < L2; k++) for (let n = 0; n < L; n++) forward[k * L + n] = dctBasis(L, k, n);
    const matrix = new Float32Array(L2 * L);
    const row = new Float64Array(L);
    for (let m = 0; m < L2; m++) {
      row.fill(0);
      for (let k = 0; k < L2; k++) {
        const c = scale * dctBasis(L2, k, m);
        const base = k * L;
        for (let n = 0; n < L; n++) row[n] = row[n]! + c * forward[base + n]!;
      }
      matrix.set(row, m * L);
    }
    this.matrix = matrix;
  }

  /**
   * Compresses a row-major block: `input` holds L rows of `width` channels starting at
   * `inputOffset`; writes L' rows of `width` channels into `output` at `outputOffset`.
   */
  apply(input: Float32Array, width: number, output: Float32Array = new Float32Array(this.outputRows * width), inputOffset = 0, outputOffset = 0): Float32Array {
    const L = this.inputRows;
    const L2 = this.outputRows;
    const M = this.matrix;
    // Channels transposed to contiguous columns, then four channels per pass over a row of M,
    // so each matrix entry is loaded once for four multiply-adds.
    const columns = new Float32Array(width * L);
    for (let n = 0; n < L; n++) {
      const base = inputOffset + n * width;
      for (let c = 0; c < width; c++) columns[c * L + n] = input[base + c]!;
    }
    let c = 0;
    for (; c + 3 < width; c += 4) {
      const b0 = c * L;
      const b1 = b0 + L;
      const b2 = b1 + L;
      const b3 = b2 + L;
      for (let m = 0; m < L2; m++) {
        const base = m * L;
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        for (let n = 0; n < L; n++) {
          const w = M[base + n]!;
          s0 += w * columns[b0 + n]!;
          s1 += w * columns[b1 + n]!;
          s2 += w * columns[b2 + n]!;
          s3 += w * columns[b3 + n]!;
        }
        const out = outputOffset + m * width + c;
        output[out] = s0;
        output[out + 1] = s1;
        output[out + 2] = s2;
        output[out + 3] = s3;
      }
    }
    for (; c < width; c++) {
      const b0 = c * L;
      for (let m = 0; m < L2; m++) {
        const base = m * L;
        let s0 = 0;
        for (let n = 0; n < L; n++) s0 += M[base + n]! * columns[b0 + n]!;
        output[outputOffset + m * width + c] = s0;
      }
    }
    return output;
  }
}

const MAX_PLANS = 64;
const plans = new Map<string, DctPlan>();

/** The plan for (L, L'), from a least-recently-used cache of at most 64 plans. */
export function getDctPlan(inputRows: number, outputRows: number): DctPlan {
  const key = `${inputRows}:${outputRows}`;
  let plan = plans.get(key);
  if (plan) {
    plans.delete(key);
  } else {
    plan = new DctPlan(inputRows, outputRows);
    if (plans.size >= MAX_PLANS) plans.delete(plans.keys().next().value!);
  }
  plans.set(key, plan);
  return plan;
}

/** How many plans the cache holds (for tests). */
export function cachedDctPlanCount(): number {
  return plans.size;
}
