// Block quantization in MatMulNBits' layout: the nested int4 form is exactly an int8 matrix.

import { describe, expect, it } from 'vitest';
import { NESTED_SCALE_MULTIPLES, quantizeInt4Nested, quantizeNBits } from '../src/builder/quantize';
import { createRng } from '../src/engine/random';
import { relativeError } from './helpers';

function gaussianRows(n: number, k: number, seed: number): Float32Array {
  const random = createRng(seed);
  // Rows of different magnitudes and one block of outliers, so block scales differ.
  return Float32Array.from({ length: n * k }, (_, i) => {
    const g = Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
    const row = Math.floor(i / k);
    const column = i % k;
    return g * (1 + row) * (column >= 64 && column < 96 ? 6 : 1);
  });
}

describe('nested int4 quantization', () => {
  for (const blockSize of [32, 128]) {
    it(`block ${blockSize}: int8 values · row unit equal the dequantized int4 weights, within int8's range`, () => {
      const n = 12;
      const k = 200; // not a multiple of the block: the last block is short
      const w = gaussianRows(n, k, blockSize);
      const q = quantizeInt4Nested(w, n, k, blockSize);
      let maxLevel = 0;
      for (let row = 0; row < n; row++) {
        for (let c = 0; c < k; c++) {
          const i = row * k + c;
          maxLevel = Math.max(maxLevel, Math.abs(q.int8[i]!));
          expect(Math.abs(q.int8[i]! * q.rowScales[row]! - q.dequantized[i]!)).toBeLessThanOrEqual(Math.abs(q.dequantized[i]!) * 1e-6);
        }
        for (let b = 0; b < q.kBlocks; b++) {
          const multiple = q.scales[row * q.kBlocks + b]! / q.rowScales[row]!;
          expect(Math.abs(multiple - Math.round(multiple))).toBeLessThan(1e-4);
          expect(Math.round(multiple)).toBeGreaterThanOrEqual(1);
          expect(Math.round(multiple)).toBeLessThanOrEqual(NESTED_SCALE_MULTIPLES);
        }
      }
      expect(maxLevel).toBeLessThanOrEqual(7 * NESTED_SCALE_MULTIPLES);
      expect(maxLevel).toBeGreaterThan(100);
      // No less accurate than plain max|w| / 7 block scales.
      expect(relativeError(q.dequantized, w)).toBeLessThanOrEqual(relativeError(quantizeNBits(w, n, k, 4, blockSize).dequantized, w) * 1.01);
    });
  }

  it('the packed nibbles decode to the dequantized weights', () => {
    const n = 3;
    const k = 64;
    const q = quantizeInt4Nested(gaussianRows(n, k, 5), n, k, 32);
    for (let row = 0; row < n; row++) {
      for (let c = 0; c < k; c++) {
        const block = Math.floor(c / 32);
        const byte = q.packed[(row * q.kBlocks + block) * 16 + ((c % 32) >> 1)]!;
        const stored = c % 2 ? byte >> 4 : byte & 15;
        expect((stored - 8) * q.scales[row * q.kBlocks + block]!).toBeCloseTo(q.dequantized[row * k + c]!, 6);
      }
    }
  });
});
