// The FFT-based segment transform against the O(L²) definition it replaced (test/referenceDct.ts),
// for lengths that are powers of two, primes and composites (Bluestein), and truncated rebuilds.

import { describe, expect, it } from 'vitest';
import { relativeError } from './helpers';
import { FastDct } from '../src/engine/kv/fastDct';
import { createRng } from '../src/engine/random';
import type { SegmentBlock } from '../src/engine/segments/codec';
import { inverseSequenceDct, sequenceDct } from '../src/engine/segments/codecs/sequenceDct';
import { inverseDct } from '../src/engine/segments/spectrum';
import { referenceInverseSequenceDct, referenceSequenceDct } from './referenceDct';

function randomBlock(heads: number, rows: number, dim: number, seed: number): SegmentBlock {
  const random = createRng(seed);
  // A smooth part plus noise, so that coefficients span several orders of magnitude as real KV rows do.
  const data = new Float32Array(heads * rows * dim);
  for (let h = 0; h < heads; h++) {
    for (let r = 0; r < rows; r++) {
      for (let d = 0; d < dim; d++) data[(h * rows + r) * dim + d] = Math.sin((r + 1) * (d + 1) * 0.01 + h) * 3 + (random() * 2 - 1) * 0.1;
    }
  }
  return { rows, numKvHeads: heads, headDim: dim, data };
}

/** The first k coefficient rows of each head of a block. */
function firstRows(block: SegmentBlock, k: number): SegmentBlock {
  const { rows, numKvHeads: heads, headDim: dim } = block;
  const data = new Float32Array(heads * k * dim);
  for (let h = 0; h < heads; h++) data.set(block.data.subarray(h * rows * dim, (h * rows + k) * dim), h * k * dim);
  return { rows: k, numKvHeads: heads, headDim: dim, data };
}

describe('FFT-based sequence DCT', () => {
  // 6000 is the long file (2^4 · 3 · 5^3, Bluestein); 511 = 7 · 73; 64 a power of two.
  const lengths = [1, 2, 3, 4, 7, 64, 100, 511, 6000];
  for (const L of lengths) {
    it(`L = ${L}: the forward transform and rebuilds at L' rows match the O(L²) definition`, () => {
      // An odd head_dim too, so the last channel of a pair is alone.
      const dim = L === 6000 ? 4 : L >= 511 ? 8 : 5;
      const heads = L >= 511 ? 1 : 2;
      const block = randomBlock(heads, L, dim, L);
      const coefficients = sequenceDct(block);
      const reference = referenceSequenceDct(block);
      expect(relativeError(coefficients.data, reference.data)).toBeLessThan(1e-5);
      const targets = [...new Set([1, 2, Math.ceil(L / 3), L - 1, L].filter((k) => k >= 1 && k <= L))];
      for (const L2 of L === 6000 ? [1, 600, 6000] : targets) {
        const want = referenceInverseSequenceDct(reference, L, L2);
        const got = inverseSequenceDct(coefficients, L, L2);
        expect(relativeError(got.data, want.data), `L'=${L2}`).toBeLessThan(1e-5);
        // Given only the first L' coefficient rows, the same rows come back.
        expect(relativeError(inverseSequenceDct(firstRows(coefficients, L2), L, L2).data, want.data), `L'=${L2} from ${L2} rows`).toBeLessThan(1e-5);
      }
      if (L > 1) expect(relativeError(inverseSequenceDct(coefficients, L, L).data, block.data)).toBeLessThan(1e-5);
    });
  }

  it('coefficients the block does not hold count as zero (a store that keeps fewer than L)', () => {
    const L = 100;
    const block = randomBlock(2, L, 6, 9);
    const full = referenceSequenceDct(block);
    const kept = 30;
    const padded = new Float32Array(full.data.length);
    for (let h = 0; h < 2; h++) padded.set(full.data.subarray(h * L * 6, (h * L + kept) * 6), h * L * 6);
    for (const L2 of [30, 55, 100]) {
      const want = referenceInverseSequenceDct({ ...full, data: padded }, L, L2);
      expect(relativeError(inverseSequenceDct(firstRows(full, kept), L, L2).data, want.data), `L'=${L2}`).toBeLessThan(1e-5);
      expect(relativeError(inverseDct(firstRows(full, kept).data, 2, L2, 6, L), want.data), `spectrum L'=${L2}`).toBeLessThan(1e-5);
    }
  });

  it('transforms the columns of a strided block and leaves the rest of the output alone', () => {
    const dct = new FastDct(12);
    const input = Float32Array.from({ length: 3 + 12 * 4 }, (_, i) => Math.cos(i));
    const output = new Float32Array(5 + 12 * 4).fill(7);
    dct.forward(input, 3, 4, output, 5);
    expect(Array.from(output.subarray(0, 5))).toEqual([7, 7, 7, 7, 7]);
    const back = new Float32Array(12 * 4);
    dct.inverse(output, 5, 12, 4, back, 0);
    expect(relativeError(back, input.subarray(3))).toBeLessThan(1e-6);
  });

  it('refuses lengths that are not whole and positive, and rebuilds longer than the segment', () => {
    expect(() => new FastDct(0)).toThrow(RangeError);
    expect(() => new FastDct(2.5)).toThrow(RangeError);
    expect(() => inverseSequenceDct(randomBlock(1, 4, 2, 1), 4, 5)).toThrow(RangeError);
  });
});
