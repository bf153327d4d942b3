// The FreqKV transform matrix against the cosine definition, computed here independently.

import { describe, expect, it } from 'vitest';
import { DctPlan, getDctPlan, cachedDctPlanCount } from '../src/engine/kv/dctPlan';

/** M by the spec's two formulas, straight from the cosine definition (float64). */
function referenceMatrix(L: number, L2: number): number[][] {
  const c = (n: number, k: number): number => (k === 0 ? Math.sqrt(1 / n) : Math.sqrt(2 / n));
  const M: number[][] = [];
  for (let m = 0; m < L2; m++) {
    const row: number[] = [];
    for (let n = 0; n < L; n++) {
      let sum = 0;
      for (let k = 0; k < L2; k++) {
        sum += c(L2, k) * Math.cos((Math.PI * k * (2 * m + 1)) / (2 * L2)) * c(L, k) * Math.cos((Math.PI * k * (2 * n + 1)) / (2 * L));
      }
      row.push(Math.sqrt(L2 / L) * sum);
    }
    M.push(row);
  }
  return M;
}

function compress(x: number[], L2: number): Float32Array {
  return new DctPlan(x.length, L2).apply(Float32Array.from(x), 1);
}

describe('DctPlan', () => {
  it.each([
    [8, 4],
    [13, 6],
    [50, 25],
    [7, 7],
    [5, 1],
  ])('L=%i, L\'=%i equals the cosine definition and each row sums to 1', (L, L2) => {
    const plan = new DctPlan(L, L2);
    const ref = referenceMatrix(L, L2);
    for (let m = 0; m < L2; m++) {
      let sum = 0;
      for (let n = 0; n < L; n++) {
        expect(plan.matrix[m * L + n]).toBeCloseTo(ref[m]![n]!, 6);
        sum += plan.matrix[m * L + n]!;
      }
      expect(sum).toBeCloseTo(1, 5);
    }
  });

  it("L' = L is the identity", () => {
    const plan = new DctPlan(6, 6);
    for (let m = 0; m < 6; m++) for (let n = 0; n < 6; n++) expect(plan.matrix[m * 6 + n]).toBeCloseTo(m === n ? 1 : 0, 6);
  });

  it('a constant sequence stays constant', () => {
    for (const v of compress(new Array(40).fill(2.5), 17)) expect(v).toBeCloseTo(2.5, 5);
  });

  it('a slowly varying sequence is reconstructed closely, a high-frequency one is not', () => {
    const L = 64;
    const L2 = 32;
    // Sample the underlying signal at the compressed rows' centres: m ↦ (m + 0.5) L/L' − 0.5.
    const at = (f: (t: number) => number, m: number): number => f(((m + 0.5) * L) / L2 - 0.5);
    const slow = (t: number): number => Math.cos((Math.PI * 2 * (2 * t + 1)) / (2 * L)) + 0.3;
    const fast = (t: number): number => Math.cos((Math.PI * 48 * (2 * t + 1)) / (2 * L));
    const ySlow = compress(Array.from({ length: L }, (_, t) => slow(t)), L2);
    const yFast = compress(Array.from({ length: L }, (_, t) => fast(t)), L2);
    let slowErr = 0;
    for (let m = 0; m < L2; m++) slowErr = Math.max(slowErr, Math.abs(ySlow[m]! - at(slow, m)));
    expect(slowErr).toBeLessThan(0.02);
    // Frequency 48 ≥ L' is dropped entirely: amplitude 1 in, (almost) nothing out.
    for (const v of yFast) expect(Math.abs(v)).toBeLessThan(1e-5);
    let fastErr = 0;
    for (let m = 0; m < L2; m++) fastErr = Math.max(fastErr, Math.abs(yFast[m]! - at(fast, m)));
    expect(fastErr).toBeGreaterThan(0.5);
  });

  it('apply works on many channels and offsets like one channel at a time', () => {
    const L = 10;
    const L2 = 4;
    const width = 3;
    const x = Float32Array.from({ length: 2 * L * width }, (_, i) => Math.sin(i * 0.37));
    const plan = new DctPlan(L, L2);
    const out = new Float32Array(2 * L2 * width);
    plan.apply(x, width, out, L * width, L2 * width);
    for (let c = 0; c < width; c++) {
      const single = plan.apply(Float32Array.from({ length: L }, (_, n) => x[L * width + n * width + c]!), 1);
      for (let m = 0; m < L2; m++) expect(out[L2 * width + m * width + c]).toBeCloseTo(single[m]!, 6);
    }
  });

  it('rejects impossible sizes; getDctPlan caches at most 64 plans', () => {
    expect(() => new DctPlan(4, 5)).toThrow(RangeError);
    expect(() => new DctPlan(4, 0)).toThrow(RangeError);
    expect(getDctPlan(20, 10)).toBe(getDctPlan(20, 10));
    for (let L = 2; L < 100; L++) getDctPlan(L, 1);
    expect(cachedDctPlanCount()).toBe(64);
  });
});
