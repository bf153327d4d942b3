// KvCache: rows appended in place into a growing buffer, compact views, replaced rows.

import { describe, expect, it } from 'vitest';
import { KvCache } from '../src/engine/kv/kvCache';

const shape = { numLayers: 2, numKvHeads: 3, headDim: 4 };

/** Rows [heads, n, dim] whose values name (layer, kind, head, row, channel). */
function rowsOf(layer: number, kind: number, first: number, n: number): Float32Array {
  const out = new Float32Array(shape.numKvHeads * n * shape.headDim);
  for (let h = 0; h < shape.numKvHeads; h++) {
    for (let r = 0; r < n; r++) for (let c = 0; c < shape.headDim; c++) out[(h * n + r) * shape.headDim + c] = layer * 1e6 + kind * 1e5 + h * 1e4 + (first + r) * 10 + c;
  }
  return out;
}

function append(cache: KvCache, n: number): void {
  const first = cache.rows;
  cache.appendRows([0, 1].map((l) => rowsOf(l, 0, first, n)), [0, 1].map((l) => rowsOf(l, 1, first, n)), n);
}

describe('KvCache', () => {
  it('appends rows into a buffer that grows, and keys()/values() give the rows compactly', () => {
    const cache = new KvCache(shape, 'float32', 1000);
    const strides: number[] = [];
    for (const n of [5, 1, 1, 70, 1, 200]) {
      append(cache, n);
      strides.push(cache.buffers().stride);
      expect(cache.buffers().stride).toBeGreaterThanOrEqual(cache.rows);
      for (let layer = 0; layer < 2; layer++) {
        expect(Array.from(cache.keys(layer))).toEqual(Array.from(rowsOf(layer, 0, 0, cache.rows)));
        expect(Array.from(cache.values(layer))).toEqual(Array.from(rowsOf(layer, 1, 0, cache.rows)));
      }
    }
    expect(cache.rows).toBe(278);
    // Grows by a quarter, in steps of 64 rows, only when full.
    expect(strides).toEqual([64, 64, 64, 128, 128, 384]);
    expect(cache.bytes).toBe(278 * cache.bytesPerRow);
  });

  it('the buffer holds each head at its stride, unused rows after the filled ones', () => {
    const cache = new KvCache(shape, 'float32', 100);
    append(cache, 3);
    const { keys, stride } = cache.buffers();
    expect(stride).toBe(64);
    expect(keys[1]!.length).toBe(shape.numKvHeads * stride * shape.headDim);
    // Head 2, row 1, channel 3 of layer 1's keys.
    expect(keys[1]![(2 * stride + 1) * shape.headDim + 3]).toBe(1e6 + 2e4 + 10 + 3);
  });

  it('replaceRows installs compact rows; appending after it grows from there', () => {
    const cache = new KvCache(shape, 'float16', 100);
    const bits = (n: number): Uint16Array[] => [0, 1].map(() => new Uint16Array(shape.numKvHeads * n * shape.headDim).fill(7));
    cache.replaceRows(bits(10), bits(10), 10);
    expect(cache.buffers().stride).toBe(10);
    expect(cache.keys(0)).toBe(cache.buffers().keys[0]); // compact already: no copy
    const one = [0, 1].map(() => new Uint16Array(shape.numKvHeads * shape.headDim).fill(9));
    cache.appendRows(one, one, 1);
    expect(cache.rows).toBe(11);
    const keys = cache.keys(1);
    expect(keys).toBeInstanceOf(Uint16Array);
    expect(keys.length).toBe(shape.numKvHeads * 11 * shape.headDim);
    expect(keys[10 * shape.headDim]).toBe(9); // head 0, row 10
    expect(keys[11 * shape.headDim]).toBe(7); // head 1, row 0
    cache.clear();
    expect(cache.rows).toBe(0);
    expect(cache.keys(0).length).toBe(0);
  });

  it('refuses rows of the wrong size', () => {
    const cache = new KvCache(shape, 'float32', 100);
    expect(() => cache.appendRows([new Float32Array(5), new Float32Array(5)], [new Float32Array(5), new Float32Array(5)], 1)).toThrow(/layer 0 has 5\/5 elements for 1 rows/);
    expect(() => cache.appendRows([new Float32Array(12)], [new Float32Array(12)], 1)).toThrow(/1 key and 1 value layers for 2 layers/);
  });
});
