// Rotary embedding outside the graph: rotate then un-rotate is the identity, and moving a
// cached key from position p to q gives the key the graph itself computes at q.

import * as fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { randomDecoderModel } from '../src/builder/randomWeights';
import type { DecoderConfig } from '../src/engine/model/modelConfig';
import { inspectModelFolder } from '../src/engine/model/modelFolder';
import { DecoderSession } from '../src/engine/model/decoderSession';
import { moveRows, rotarySpecOf, rotateRows, type RotarySpec } from '../src/engine/kv/rotary';
import { toFloat32 } from '../src/engine/kv/compressor';
import { tinyLlama, tinyQwen2 } from './testModels';
import { buildTestModel, maxAbsDiff, tempDir } from './helpers';

const work = tempDir('rotary');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const interleavedLlama: DecoderConfig = { ...tinyLlama, ropeLayout: 'interleaved' };
const CONFIGS: [string, DecoderConfig][] = [
  ['rotate-half (Qwen2)', tinyQwen2],
  ['rotate-half, partial rotary, llama3 scaling', tinyLlama],
  ['interleaved, partial rotary', interleavedLlama],
  ['interleaved, full rotary', { ...tinyQwen2, ropeLayout: 'interleaved' }],
];

describe('rotateRows', () => {
  it.each(CONFIGS)('%s: rotate then un-rotate is the identity; channels past rotaryDim are untouched', (_name, config) => {
    const spec = rotarySpecOf(config);
    const heads = 3;
    const rows = 9;
    const x = Float32Array.from({ length: heads * rows * config.headDim }, (_, i) => Math.sin(i * 1.7) * 3);
    const y = x.slice();
    const positions = [0, 1, 5, 17, 100, 511, 4095, 7, 2];
    rotateRows(spec, y, heads, rows, positions, 1);
    expect(maxAbsDiff(x, y)).toBeGreaterThan(0.01);
    for (let h = 0; h < heads; h++) {
      for (let r = 0; r < rows; r++) {
        const base = (h * rows + r) * config.headDim;
        for (let d = spec.rotaryDim; d < config.headDim; d++) expect(y[base + d]).toBe(x[base + d]);
        if (positions[r] === 0) for (let d = 0; d < config.headDim; d++) expect(y[base + d]).toBe(x[base + d]);
      }
    }
    rotateRows(spec, y, heads, rows, positions, -1);
    expect(maxAbsDiff(x, y)).toBeLessThan(1e-5);
  });

  it('rotates the pairs the layout names, by float32(position · inv_freq)', () => {
    const spec: RotarySpec = { layout: 'interleaved', headDim: 4, rotaryDim: 4, invFreq: Float32Array.from([1, 0.5]) };
    const x = Float32Array.from([1, 0, 0, 1]);
    rotateRows(spec, x, 1, 1, [Math.PI / 2], 1);
    // pair (0,1) turns by π/2: (1,0) → (0,1); pair (2,3) turns by π/4: (0,1) → (−sin, cos).
    expect(Array.from(x).map((v) => Number(v.toFixed(5)) + 0)).toEqual([0, 1, -0.70711, 0.70711]);
    const half: RotarySpec = { ...spec, layout: 'rotate-half' };
    const y = Float32Array.from([1, 0, 0, 1]); // pairs (0,2) = (1,0) and (1,3) = (0,1)
    rotateRows(half, y, 1, 1, [Math.PI / 2], 1);
    expect(Array.from(y).map((v) => Number(v.toFixed(5)) + 0)).toEqual([0, -0.70711, 1, 0.70711]);
  });
});

describe('moving keys matches the graph', () => {
  it.each(CONFIGS.slice(0, 3))('%s: the graph key at p moved to q equals the graph key at q', async (_name, config) => {
    const { dir } = buildTestModel(randomDecoderModel(config, 7), {}, tempDir('rotary-model'));
    const session = await DecoderSession.open(inspectModelFolder(dir), { threads: 1 });
    const spec = rotarySpecOf(config);
    const token = 11;
    // Layer 0's key depends only on the token and its position, not on the context.
    const keyAt = async (position: number): Promise<Float32Array> => {
      const cache = session.createCache(256);
      const tokens = Array.from({ length: position + 1 }, (_, i) => (i === position ? token : (i * 5 + 3) % config.vocabSize));
      await session.forward(tokens, cache);
      const all = toFloat32(cache.keys(0));
      const rows = position + 1;
      const out = new Float32Array(config.numKvHeads * config.headDim);
      for (let h = 0; h < config.numKvHeads; h++) out.set(all.subarray((h * rows + position) * config.headDim, (h * rows + position + 1) * config.headDim), h * config.headDim);
      return out;
    };
    try {
      for (const [p, q] of [
        [3, 40],
        [50, 4],
        [0, 63],
        [63, 0],
      ] as const) {
        const moved = await keyAt(p);
        moveRows(spec, [moved], config.numKvHeads, 1, 0, 1, p, q);
        const expected = await keyAt(q);
        const scale = Math.max(...Array.from(expected, Math.abs));
        expect(maxAbsDiff(moved, expected)).toBeLessThan(1e-5 * scale + 1e-7);
      }
    } finally {
      await session.release();
    }
  });
});
