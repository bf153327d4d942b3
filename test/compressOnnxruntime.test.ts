// FreqKV's transform through onnxruntime (makeRoomWith + the batched MatMul session) against the
// JavaScript loop (makeRoom): same row counts, the same rows up to float rounding, for float32
// and float16 caches, with and without a recent window.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvCache } from '../src/engine/kv/kvCache';
import { FreqKvCompressor } from '../src/engine/kv/freqKvCompressor';
import { toFloat32 } from '../src/engine/kv/compressor';
import { rotarySpecOf } from '../src/engine/kv/rotary';
import { float32ToFloat16 } from '../src/engine/floatFormats';
import { createBatchedMultiply } from '../src/engine/model/batchedMatMul';
import type { BatchedMultiply } from '../src/engine/kv/compressor';
import { createRng } from '../src/engine/random';
import { tinyQwen2 } from './testModels';
import { maxAbsDiff } from './helpers';

let matMul: { multiply: BatchedMultiply; release: () => Promise<void> };
beforeAll(async () => {
  matMul = await createBatchedMultiply(1);
});
afterAll(async () => {
  await matMul.release();
});

const spec = rotarySpecOf(tinyQwen2);
const shape = { numLayers: 3, numKvHeads: 2, headDim: tinyQwen2.headDim };

function filledCache(type: 'float32' | 'float16', N: number, seed: number): KvCache {
  const random = createRng(seed);
  const cache = new KvCache(shape, type, N);
  const length = shape.numKvHeads * N * shape.headDim;
  const make = (): Float32Array | Uint16Array => {
    const data = Float32Array.from({ length }, () => random() * 2 - 1);
    return type === 'float16' ? float32ToFloat16(data, new Uint16Array(length)) : data;
  };
  cache.replaceRows(
    Array.from({ length: shape.numLayers }, make),
    Array.from({ length: shape.numLayers }, make),
    N,
  );
  return cache;
}

describe('FreqKvCompressor.makeRoomWith (onnxruntime MatMul)', () => {
  it.each([
    ['float32', 64, 0],
    ['float32', 64, 20],
    ['float32', 37, 5],
    ['float16', 64, 16],
  ] as const)('%s N=%i R=%i: the rows of makeRoom, up to rounding', async (type, N, recent) => {
    const compressor = new FreqKvCompressor({ capacity: N, sinks: 4, retain: 0.5, recent }, spec);
    const viaJs = filledCache(type, N, N + recent);
    const viaOrt = filledCache(type, N, N + recent);
    expect(compressor.makeRoom(viaJs, 1)).toBe(true);
    expect(await compressor.makeRoomWith(viaOrt, 1, matMul.multiply)).toBe(true);
    expect(viaOrt.rows).toBe(viaJs.rows);
    expect(viaOrt.rows).toBe(4 + compressor.keptRows + recent);
    for (let layer = 0; layer < shape.numLayers; layer++) {
      const tolerance = type === 'float16' ? 2e-3 : 1e-5;
      expect(maxAbsDiff(toFloat32(viaOrt.keys(layer)), toFloat32(viaJs.keys(layer)))).toBeLessThan(tolerance);
      expect(maxAbsDiff(toFloat32(viaOrt.values(layer)), toFloat32(viaJs.values(layer)))).toBeLessThan(tolerance);
    }
    // Nothing to do when the rows fit.
    expect(await compressor.makeRoomWith(viaOrt, 1, matMul.multiply)).toBe(false);
  });
});
