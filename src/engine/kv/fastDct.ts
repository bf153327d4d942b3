// The orthonormal DCT-II along the sequence and its inverse in O(n log n) per channel
// (docs/kv-compression.md §1, "The transform"; the basis is dctBasis in dctPlan.ts).
//
// Makhoul's method (J. Makhoul, "A fast cosine transform in one and two dimensions", IEEE
// Trans. ASSP 28(1), 1980) for any n: reorder x to v (v[p] = x[2p] for the first ⌈n/2⌉ p, then
// the odd samples backwards), take the n-point complex DFT V, and X[k] = w_k · Re(e^{−iπk/2n} V[k]).
// The inverse builds the Hermitian spectrum H[k] = e^{iπk/2n} (c[k] − i c[n−k]) / 2 (H[0] = c[0])
// of the weighted coefficients c, whose inverse DFT is real and is y in the same order.
// Two real channels share one complex DFT (one as the real part, one as the imaginary part).
//
// The n-point DFT is fft.js (radix-4, powers of two) when n is a power of two, and otherwise
// Bluestein's chirp-z algorithm on a power-of-two fft.js transform of m ≥ 2n − 1 points:
// jk = (j² + k² − (k − j)²) / 2 turns the DFT into a circular convolution with the chirp
// e^{iπj²/n}, whose transform is computed once per n. All sums run in float64.

import FFT from 'fft.js';

function isPowerOfTwo(n: number): boolean {
  return n >= 2 && (n & (n - 1)) === 0;
}

/** The unnormalized forward DFT X[k] = Σ_j x[j] e^{−2πijk/n} of interleaved [re, im] arrays, any n ≥ 1. */
class ComplexDft {
  private readonly fft: FFT | undefined;
  private readonly bluestein: { fft: FFT; m: number; chirp: Float64Array; kernel: Float64Array; a: Float64Array; b: Float64Array } | undefined;

  constructor(readonly n: number) {
    if (n === 1) return;
    if (isPowerOfTwo(n)) {
      this.fft = new FFT(n);
      return;
    }
    let m = 2;
    while (m < 2 * n - 1) m *= 2;
    const fft = new FFT(m);
    // chirp[j] = e^{−iπj²/n}; j² is reduced modulo 2n first so the angle stays exact for long n.
    const chirp = new Float64Array(2 * n);
    for (let j = 0; j < n; j++) {
      const angle = (Math.PI * ((j * j) % (2 * n))) / n;
      chirp[2 * j] = Math.cos(angle);
      chirp[2 * j + 1] = -Math.sin(angle);
    }
    // The convolution kernel conj(chirp) at lags −(n−1) … n−1, wrapped to m points, transformed.
    const lags = new Float64Array(2 * m);
    for (let j = 0; j < n; j++) {
      lags[2 * j] = chirp[2 * j]!;
      lags[2 * j + 1] = -chirp[2 * j + 1]!;
      if (j > 0) {
        lags[2 * (m - j)] = chirp[2 * j]!;
        lags[2 * (m - j) + 1] = -chirp[2 * j + 1]!;
      }
    }
    const kernel = new Float64Array(2 * m);
    fft.transform(kernel, lags);
    this.bluestein = { fft, m, chirp, kernel, a: new Float64Array(2 * m), b: new Float64Array(2 * m) };
  }

  /** `output` = DFT(`input`); both hold n interleaved complex values and must be different arrays. */
  forward(input: Float64Array, output: Float64Array): void {
    const n = this.n;
    if (this.fft) {
      this.fft.transform(output, input);
      return;
    }
    const plan = this.bluestein;
    if (!plan) {
      output[0] = input[0]!;
      output[1] = input[1]!;
      return;
    }
    const { fft, m, chirp, kernel, a, b } = plan;
    a.fill(0, 2 * n);
    for (let j = 0; j < n; j++) {
      const xr = input[2 * j]!;
      const xi = input[2 * j + 1]!;
      const cr = chirp[2 * j]!;
      const ci = chirp[2 * j + 1]!;
      a[2 * j] = xr * cr - xi * ci;
      a[2 * j + 1] = xr * ci + xi * cr;
    }
    fft.transform(b, a);
    for (let i = 0; i < 2 * m; i += 2) {
      const xr = b[i]!;
      const xi = b[i + 1]!;
      const kr = kernel[i]!;
      const ki = kernel[i + 1]!;
      b[i] = xr * kr - xi * ki;
      b[i + 1] = xr * ki + xi * kr;
    }
    fft.inverseTransform(a, b);
    for (let k = 0; k < n; k++) {
      const yr = a[2 * k]!;
      const yi = a[2 * k + 1]!;
      const cr = chirp[2 * k]!;
      const ci = chirp[2 * k + 1]!;
      output[2 * k] = yr * cr - yi * ci;
      output[2 * k + 1] = yr * ci + yi * cr;
    }
  }
}

/** The n-point orthonormal DCT-II and DCT-III (its inverse) of the columns of row-major blocks. */
export class FastDct {
  private readonly dft: ComplexDft;
  /** v[p] = x[order[p]]: the even rows forwards, then the odd rows backwards. */
  private readonly order: Int32Array;
  /** w_k · cos(πk / 2n) and w_k · sin(πk / 2n), w_k = sqrt((2 − δ(k,0)) / n). */
  private readonly wCos: Float64Array;
  private readonly wSin: Float64Array;
  private readonly weight: Float64Array;
  private readonly cos: Float64Array;
  private readonly sin: Float64Array;
  private readonly z: Float64Array;
  private readonly spectrum: Float64Array;
  /** The weighted coefficients of the two channels an inverse transforms together. */
  private readonly pairA: Float64Array;
  private readonly pairB: Float64Array;

  constructor(readonly n: number) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`FastDct: the length must be a whole number ≥ 1 (got ${n})`);
    this.dft = new ComplexDft(n);
    this.order = new Int32Array(n);
    const half = Math.ceil(n / 2);
    for (let p = 0; p < n; p++) this.order[p] = p < half ? 2 * p : 2 * (n - 1 - p) + 1;
    this.weight = new Float64Array(n);
    this.cos = new Float64Array(n);
    this.sin = new Float64Array(n);
    this.wCos = new Float64Array(n);
    this.wSin = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      const w = Math.sqrt((k === 0 ? 1 : 2) / n);
      const angle = (Math.PI * k) / (2 * n);
      this.weight[k] = w;
      this.cos[k] = Math.cos(angle);
      this.sin[k] = Math.sin(angle);
      this.wCos[k] = w * this.cos[k]!;
      this.wSin[k] = w * this.sin[k]!;
    }
    this.z = new Float64Array(2 * n);
    this.spectrum = new Float64Array(2 * n);
    this.pairA = new Float64Array(n);
    this.pairB = new Float64Array(n);
  }

  /**
   * All n coefficients of each of the `width` columns of the row-major [n, width] block at
   * `input[inputOffset …]`: X[k] = Σ_j dctBasis(n, k, j) · x[j], written row-major [n, width]
   * to `output[outputOffset …]`.
   */
  forward(input: Float32Array, inputOffset: number, width: number, output: Float32Array, outputOffset: number): void {
    const { n, order, z, spectrum, wCos, wSin } = this;
    for (let c = 0; c < width; c += 2) {
      const pair = c + 1 < width;
      for (let p = 0; p < n; p++) {
        const at = inputOffset + order[p]! * width + c;
        z[2 * p] = input[at]!;
        z[2 * p + 1] = pair ? input[at + 1]! : 0;
      }
      this.dft.forward(z, spectrum);
      for (let k = 0; k < n; k++) {
        const r = (n - k) % n;
        // The spectra of the two real channels: Va = (Z[k] + conj Z[n−k]) / 2, Vb = (Z[k] − conj Z[n−k]) / 2i.
        const zr = spectrum[2 * k]!;
        const zi = spectrum[2 * k + 1]!;
        const rr = spectrum[2 * r]!;
        const ri = spectrum[2 * r + 1]!;
        const out = outputOffset + k * width + c;
        output[out] = 0.5 * (wCos[k]! * (zr + rr) + wSin[k]! * (zi - ri));
        if (pair) output[out + 1] = 0.5 * (wCos[k]! * (zi + ri) - wSin[k]! * (zr - rr));
      }
    }
  }

  /**
   * The n rows y[m] = scale · Σ_k dctBasis(n, k, m) · X[k] of each of the `width` columns, from
   * the first `coefficientRows` coefficient rows (row-major [coefficientRows, width] at
   * `input[inputOffset …]`; rows from coefficientRows to n are taken as zero), written row-major
   * [n, width] to `output[outputOffset …]`.
   */
  inverse(input: Float32Array, inputOffset: number, coefficientRows: number, width: number, output: Float32Array, outputOffset: number, scale = 1): void {
    const { n, order, z, spectrum, weight, cos, sin, pairA: a, pairB: b } = this;
    const given = Math.min(coefficientRows, n);
    for (let c = 0; c < width; c += 2) {
      const pair = c + 1 < width;
      // The weighted coefficients of both channels, read once (rows from `given` on are zero).
      for (let k = 0; k < given; k++) {
        const at = inputOffset + k * width + c;
        a[k] = scale * weight[k]! * input[at]!;
        b[k] = pair ? scale * weight[k]! * input[at + 1]! : 0;
      }
      a.fill(0, given);
      b.fill(0, given);
      for (let k = 0; k < n; k++) {
        const ak = a[k]!;
        const bk = b[k]!;
        let har = ak;
        let hai = 0;
        let hbr = bk;
        let hbi = 0;
        if (k > 0) {
          const an = a[n - k]!;
          const bn = b[n - k]!;
          har = 0.5 * (ak * cos[k]! + an * sin[k]!);
          hai = 0.5 * (ak * sin[k]! - an * cos[k]!);
          hbr = 0.5 * (bk * cos[k]! + bn * sin[k]!);
          hbi = 0.5 * (bk * sin[k]! - bn * cos[k]!);
        }
        // Z = Ha + i·Hb, stored conjugated: the inverse DFT is conj(DFT(conj Z)).
        z[2 * k] = har - hbi;
        z[2 * k + 1] = -(hai + hbr);
      }
      this.dft.forward(z, spectrum);
      for (let p = 0; p < n; p++) {
        const out = outputOffset + order[p]! * width + c;
        output[out] = spectrum[2 * p]!;
        if (pair) output[out + 1] = -spectrum[2 * p + 1]!;
      }
    }
  }
}

const MAX_PLANS = 16;
const plans = new Map<number, FastDct>();

/** The transform of length n, from a least-recently-used cache of a few lengths. */
export function fastDctOf(n: number): FastDct {
  let plan = plans.get(n);
  if (plan) {
    plans.delete(n);
  } else {
    plan = new FastDct(n);
    if (plans.size >= MAX_PLANS) plans.delete(plans.keys().next().value!);
  }
  plans.set(n, plan);
  return plan;
}
