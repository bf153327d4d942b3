import { describe, expect, it } from 'vitest';
import { randomDecoderModel } from '../src/builder/randomWeights';
import { createRng } from '../src/engine/random';
import { OracleDecoder } from './oracle';
import { tinyLlama, tinyQwen2 } from './testModels';

function allArrays(model: ReturnType<typeof randomDecoderModel>): Float32Array[] {
  const { weights } = model;
  const arrays = [weights.embedTokens, weights.finalNorm, ...(weights.lmHead ? [weights.lmHead] : [])];
  for (const layer of weights.layers) arrays.push(...Object.values(layer));
  return arrays;
}

describe('createRng', () => {
  it('repeats per seed and stays in [0, 1)', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(xs);
    expect(Array.from({ length: 1000 }, () => c())).not.toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(4 * Math.sqrt(1 / 12 / xs.length));
  });
});

describe('randomDecoderModel', () => {
  it('is deterministic per seed and differs across seeds', () => {
    const a = allArrays(randomDecoderModel(tinyQwen2, 7));
    const b = allArrays(randomDecoderModel(tinyQwen2, 7));
    const c = allArrays(randomDecoderModel(tinyQwen2, 8));
    expect(b).toEqual(a);
    expect(c[0]).not.toEqual(a[0]);
  });

  it('has the config shapes, biases and classifier', () => {
    const qwen = randomDecoderModel(tinyQwen2, 1);
    const layer = qwen.weights.layers[0]!;
    expect(qwen.weights.layers).toHaveLength(tinyQwen2.numLayers);
    expect(layer.q.length).toBe(tinyQwen2.numHeads * tinyQwen2.headDim * tinyQwen2.hiddenSize);
    expect(layer.kBias?.length).toBe(tinyQwen2.numKvHeads * tinyQwen2.headDim);
    expect(qwen.weights.lmHead).toBeUndefined();
    const llama = randomDecoderModel(tinyLlama, 1);
    expect(llama.weights.layers[0]!.qBias).toBeUndefined();
    expect(llama.weights.lmHead?.length).toBe(tinyLlama.vocabSize * tinyLlama.hiddenSize);
  });

  it('has initialiser statistics near normal(0, 0.02) and norms near 1', () => {
    const { weights } = randomDecoderModel(tinyQwen2, 3);
    const values = weights.embedTokens;
    const mean = values.reduce((s, x) => s + x, 0) / values.length;
    const std = Math.sqrt(values.reduce((s, x) => s + (x - mean) ** 2, 0) / values.length);
    expect(Math.abs(mean)).toBeLessThan(0.002);
    expect(Math.abs(std - 0.02)).toBeLessThan(0.002);
    const norm = weights.finalNorm;
    expect(Math.abs(norm.reduce((s, x) => s + x, 0) / norm.length - 1)).toBeLessThan(0.01);
  });

  it('gives non-degenerate logits', () => {
    for (const config of [tinyQwen2, tinyLlama]) {
      const oracle = new OracleDecoder(randomDecoderModel(config, 5));
      const logits = oracle.forward([3, 4, 5], [0, 1, 2]);
      for (const row of logits) {
        expect(row.every(Number.isFinite)).toBe(true);
        expect(Math.max(...row) - Math.min(...row)).toBeGreaterThan(1e-3);
      }
      expect(logits[2]).not.toEqual(logits[1]);
    }
  });
});
