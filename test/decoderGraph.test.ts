// The ONNX graphs the builder writes, run by onnxruntime-node, agree with the pure-TypeScript
// oracle (test/oracle.ts) on logits and on the cached keys and values.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readLlama2cCheckpoint } from '../src/builder/llama2cCheckpoint';
import { randomDecoderModel } from '../src/builder/randomWeights';
import type { DecoderModel } from '../src/builder/decoderWeights';
import type { DecoderConfig } from '../src/engine/model/modelConfig';
import { inspectModelFolder } from '../src/engine/model/modelFolder';
import { DecoderSession } from '../src/engine/model/decoderSession';
import { float16ToFloat32 } from '../src/engine/floatFormats';
import { OracleDecoder } from './oracle';
import { toHfConfig } from '../src/engine/model/modelConfig';
import { hfTensorsOf, readSafetensorsModel, writeSafetensors } from '../src/builder/safetensors';
import { tinyLlama, tinyQwen2 } from './testModels';
import { STORIES_DIR, buildTestModel, maxAbsDiff, tempDir } from './helpers';
import type { ModelFolderOptions } from '../src/builder/modelFolderWriter';

const work = tempDir('graph');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** Token chunks fed one after another: a prefill, single decode steps, another chunk. */
const CHUNKS = [7, 1, 1, 5, 1];

function tokensFor(vocab: number, count: number, seed: number): number[] {
  return Array.from({ length: count }, (_, i) => (seed * 31 + i * 17 + 3) % vocab);
}

function asFloat32(data: Float32Array | Uint16Array): Float32Array {
  if (data instanceof Float32Array) return data;
  const out = new Float32Array(data.length);
  float16ToFloat32(data, out);
  return out;
}

/** Runs the model folder chunk by chunk and compares with the oracle; returns the worst differences. */
async function compareWithOracle(dir: string, oracleModel: DecoderModel, seed = 1, chunks = CHUNKS): Promise<{ logits: number; keys: number; values: number }> {
  const folder = inspectModelFolder(dir);
  const session = await DecoderSession.open(folder, { threads: 1 });
  const { config } = oracleModel;
  const cache = session.createCache(config.maxPositionEmbeddings);
  const oracle = new OracleDecoder(oracleModel);
  const worst = { logits: 0, keys: 0, values: 0 };
  try {
    const tokens = tokensFor(config.vocabSize, chunks.reduce((a, b) => a + b, 0), seed);
    let at = 0;
    for (const size of chunks) {
      const chunk = tokens.slice(at, at + size);
      const positions = chunk.map((_, i) => at + i);
      const logits = await session.forward(chunk, cache);
      const expected = oracle.forward(chunk, positions);
      expected.forEach((row, i) => {
        worst.logits = Math.max(worst.logits, maxAbsDiff(logits.subarray(i * config.vocabSize, (i + 1) * config.vocabSize), row));
      });
      at += size;
    }
    // Cached rows: the graph stores [kv_heads, rows, head_dim]; the oracle one row per token.
    const { numKvHeads, headDim } = config;
    for (let layer = 0; layer < config.numLayers; layer++) {
      const keys = asFloat32(cache.keys(layer));
      const values = asFloat32(cache.values(layer));
      oracle.keys(layer).forEach((row, r) => {
        for (let h = 0; h < numKvHeads; h++) {
          const offset = (h * cache.rows + r) * headDim;
          worst.keys = Math.max(worst.keys, maxAbsDiff(keys.subarray(offset, offset + headDim), row.subarray(h * headDim, (h + 1) * headDim)));
        }
      });
      oracle.values(layer).forEach((row, r) => {
        for (let h = 0; h < numKvHeads; h++) {
          const offset = (h * cache.rows + r) * headDim;
          worst.values = Math.max(worst.values, maxAbsDiff(values.subarray(offset, offset + headDim), row.subarray(h * headDim, (h + 1) * headDim)));
        }
      });
    }
    expect(cache.rows).toBe(at);
  } finally {
    await session.release();
  }
  return worst;
}

async function buildAndCompare(model: DecoderModel, options: Partial<ModelFolderOptions> = {}, chunks = CHUNKS): Promise<{ logits: number; keys: number; values: number }> {
  const { dir, effectiveModel } = buildTestModel(model, options, fs.mkdtempSync(path.join(work, 'm-')));
  return compareWithOracle(dir, effectiveModel, 1, chunks);
}

const interleavedQwen: DecoderConfig = { ...tinyQwen2, ropeLayout: 'interleaved', tieWordEmbeddings: false };
const linearScaledLlama: DecoderConfig = { ...tinyLlama, numKvHeads: 2, partialRotaryFactor: 1, ropeScaling: { ropeType: 'linear', factor: 2 } };

describe('decoder graph against the oracle (float32 weights, 1e-4)', () => {
  it('stories260K, the real llama2.c model (interleaved RoPE, GQA, tied classifier)', async () => {
    const model = readLlama2cCheckpoint(fs.readFileSync(path.join(STORIES_DIR, 'stories260K.bin')));
    const worst = await buildAndCompare(model);
    expect(worst.logits).toBeLessThan(1e-4);
    expect(worst.keys).toBeLessThan(1e-4);
    expect(worst.values).toBeLessThan(1e-4);
  });

  const cases: [string, DecoderConfig][] = [
    ['random Qwen2 (biases, tied embeddings, 4 query heads per kv head)', tinyQwen2],
    ['random Llama (untied, partial rotary, llama3 rope scaling)', tinyLlama],
    ['random Qwen2 with interleaved RoPE and an untied classifier', interleavedQwen],
    ['random Llama with GQA and linear rope scaling', linearScaledLlama],
  ];
  for (const [name, config] of cases) {
    it(name, async () => {
      const worst = await buildAndCompare(randomDecoderModel(config, 7));
      expect(worst.logits).toBeLessThan(1e-4);
      expect(worst.keys).toBeLessThan(1e-4);
      expect(worst.values).toBeLessThan(1e-4);
    });
  }
});

describe('export variants', () => {
  it('int8 and int4 weights (MatMulNBits, float32 arithmetic) match the oracle run on the dequantized weights', async () => {
    for (const weights of ['int8', 'int4'] as const) {
      // Tied: the classifier and the embedding lookup share one quantized copy (MatMulNBits and
      // GatherBlockQuantized); untied: lm_head is quantized like every other matrix.
      // The tied Llama's hidden size 48 is not a multiple of the block: the lookup drops the padding.
      for (const model of [randomDecoderModel(tinyQwen2, 3), randomDecoderModel(tinyLlama, 3), randomDecoderModel({ ...tinyLlama, tieWordEmbeddings: true }, 3)]) {
        for (const tiedClassifier of ['int8', 'int4', 'float32'] as const) {
          const worst = await buildAndCompare(model, { weights, matMulAccuracy: 'float32', tiedClassifier });
          expect(worst.logits, `${weights} ${model.config.architecture} classifier ${tiedClassifier}`).toBeLessThan(1e-4);
          expect(worst.keys).toBeLessThan(1e-4);
        }
      }
    }
  });

  it('int8 arithmetic (accuracy_level 4, the default) stays within 2e-2 of the oracle on logits of about unit size', async () => {
    for (const weights of ['int8', 'int4'] as const) {
      const worst = await buildAndCompare(randomDecoderModel(tinyQwen2, 3), { weights });
      // Activations are rounded to int8 per block of 32 before each product: small, not zero.
      expect(worst.logits, weights).toBeLessThan(2e-2);
      expect(worst.logits, weights).toBeGreaterThan(0);
    }
  });

  it('the prefill graph (integer GEMMs on the int8 form of nested int4 weights) stays within 2e-2 of the oracle, and long chunks run on it', async () => {
    // Chunks of 16 or more tokens run on onnx/model_prefill.onnx; single tokens on model.onnx.
    const chunks = [20, 1, 1, 17, 1, 3];
    for (const model of [randomDecoderModel(tinyQwen2, 3), randomDecoderModel(tinyLlama, 5)]) {
      const { dir, effectiveModel } = buildTestModel(model, { weights: 'int4', prefillGraph: true }, fs.mkdtempSync(path.join(work, 'p-')));
      const folder = inspectModelFolder(dir);
      expect(folder.prefillOnnxPath).toBe(path.join(dir, 'onnx', 'model_prefill.onnx'));
      expect(folder.graphFiles).toEqual(['onnx/model.onnx']);
      const worst = await compareWithOracle(dir, effectiveModel, 1, chunks);
      // Each activation row is rounded to int8 on its own scale before each product.
      expect(worst.logits, model.config.architecture).toBeLessThan(2e-2);
      expect(worst.keys).toBeLessThan(2e-2);
      expect(worst.values).toBeLessThan(2e-2);
    }
  });

  it('a chunk gives nearly the same logits and cache rows on the prefill graph as on the decode graph', async () => {
    const { dir } = buildTestModel(randomDecoderModel(tinyQwen2, 8), { weights: 'int4', prefillGraph: true }, fs.mkdtempSync(path.join(work, 'p-')));
    const folder = inspectModelFolder(dir);
    const withPrefill = await DecoderSession.open(folder, { threads: 1 });
    const decodeOnly = await DecoderSession.open(folder, { threads: 1, prefillGraph: false });
    try {
      expect(withPrefill.prefillGraphPath).toBe(folder.prefillOnnxPath);
      expect(decodeOnly.prefillGraphPath).toBeUndefined();
      const tokens = tokensFor(folder.config.vocabSize, 24, 5);
      const a = withPrefill.createCache(64);
      const b = decodeOnly.createCache(64);
      const logitsA = await withPrefill.forward(tokens, a);
      const logitsB = await decodeOnly.forward(tokens, b);
      const difference = maxAbsDiff(logitsA, logitsB);
      expect(difference).toBeLessThan(2e-2);
      // Different kernels, so not the very same numbers: proof that the prefill graph ran.
      expect(difference).toBeGreaterThan(0);
      expect(maxAbsDiff(asFloat32(a.keys(0)), asFloat32(b.keys(0)))).toBeLessThan(2e-2);
      // One token runs on the decode graph in both sessions: the same inputs give the same logits.
      const stepA = await withPrefill.forward([9], a, { logits: 'last' });
      const stepB = await decodeOnly.forward([9], b, { logits: 'last' });
      expect(maxAbsDiff(stepA, stepB)).toBeLessThan(2e-2);
    } finally {
      await withPrefill.release();
      await decodeOnly.release();
    }
  });

  it('a prefill graph that does not match its decode graph is refused with what to do', async () => {
    const { dir } = buildTestModel(randomDecoderModel(tinyQwen2, 8), { weights: 'int4', prefillGraph: true }, fs.mkdtempSync(path.join(work, 'p-')));
    const other = buildTestModel(randomDecoderModel(tinyQwen2, 8), { weights: 'int4', omitPositionIds: true }, fs.mkdtempSync(path.join(work, 'p-')));
    fs.copyFileSync(path.join(other.dir, 'onnx', 'model.onnx'), path.join(dir, 'onnx', 'model_prefill.onnx'));
    expect(() => inspectModelFolder(dir)).toThrow(/model_prefill\.onnx \(the prefill graph of model\.onnx\) takes or gives other tensors than model\.onnx; delete it/);
  });

  it("num_logits_to_keep: 'last' computes only the last row, equal to the last row of 'all'; 'none' fetches nothing", async () => {
    for (const weights of ['float32', 'int4'] as const) {
      const { dir } = buildTestModel(randomDecoderModel(tinyQwen2, 4), { weights }, fs.mkdtempSync(path.join(work, 'k-')));
      const folder = inspectModelFolder(dir);
      expect(folder.signature.hasLogitsToKeep).toBe(true);
      const session = await DecoderSession.open(folder, { threads: 1 });
      try {
        const V = folder.config.vocabSize;
        const tokens = tokensFor(V, 6, 2);
        const all = await session.forward(tokens, session.createCache(16), { logits: 'all' });
        const lastCache = session.createCache(16);
        const last = await session.forward(tokens, lastCache, { logits: 'last' });
        expect(all.length).toBe(6 * V);
        expect(last.length).toBe(V);
        expect(maxAbsDiff(last, all.subarray(5 * V))).toBeLessThan(1e-5);
        const none = await session.forward([1], lastCache, { logits: 'none' });
        expect(none.length).toBe(0);
        expect(lastCache.rows).toBe(7);
      } finally {
        await session.release();
      }
    }
  });

  it('a float16 KV cache stays close to the float32 oracle (the cache is rounded to float16)', async () => {
    const { dir, effectiveModel } = buildTestModel(randomDecoderModel(tinyQwen2, 5), { kvCache: 'float16' }, fs.mkdtempSync(path.join(work, 'f16-')));
    expect(inspectModelFolder(dir).signature.kvElementType).toBe('float16');
    const worst = await compareWithOracle(dir, effectiveModel);
    expect(worst.keys).toBeLessThan(5e-3);
    expect(worst.logits).toBeLessThan(5e-3);
  });

  it('external weights in model.onnx_data and in model.onnx.data', async () => {
    for (const name of ['model.onnx_data', 'model.onnx.data']) {
      const { dir, effectiveModel } = buildTestModel(randomDecoderModel(tinyQwen2, 9), { externalData: 'always', externalDataName: name }, fs.mkdtempSync(path.join(work, 'x-')));
      expect(fs.existsSync(path.join(dir, 'onnx', name))).toBe(true);
      expect(fs.statSync(path.join(dir, 'onnx', 'model.onnx')).size).toBeLessThan(64 * 1024);
      expect(inspectModelFolder(dir).externalDataFiles).toEqual([path.join(dir, 'onnx', name)]);
      const worst = await compareWithOracle(dir, effectiveModel);
      expect(worst.logits).toBeLessThan(1e-4);
    }
  });

  it('external weights split into numbered parts', async () => {
    const { dir, effectiveModel } = buildTestModel(randomDecoderModel(tinyQwen2, 9), { externalData: 'always', externalDataPartBytes: 40_000 }, fs.mkdtempSync(path.join(work, 'p-')));
    const files = inspectModelFolder(dir).externalDataFiles.map((f) => path.basename(f));
    expect(files.length).toBeGreaterThan(2);
    expect(files).toEqual(['model.onnx_data', ...Array.from({ length: files.length - 1 }, (_, i) => `model.onnx_data_${i + 1}`)]);
    const worst = await compareWithOracle(dir, effectiveModel);
    expect(worst.logits).toBeLessThan(1e-4);
  });

  it('a Hugging Face safetensors folder (bfloat16) converts to a graph that matches the oracle', async () => {
    const original = randomDecoderModel(tinyQwen2, 13);
    const hfDir = fs.mkdtempSync(path.join(work, 'hf-'));
    fs.writeFileSync(path.join(hfDir, 'config.json'), JSON.stringify(toHfConfig(original.config)));
    await writeSafetensors(path.join(hfDir, 'model.safetensors'), hfTensorsOf(original, 'BF16'));
    const read = await readSafetensorsModel(hfDir);
    const { dir, effectiveModel } = buildTestModel(read, {}, fs.mkdtempSync(path.join(work, 's-')));
    const worst = await compareWithOracle(dir, effectiveModel);
    expect(worst.logits).toBeLessThan(1e-4);
    // bfloat16 storage rounds the weights, so the converted model is close to, not equal to, the original.
    const roundedEmbedding = maxAbsDiff(read.weights.embedTokens, original.weights.embedTokens);
    expect(roundedEmbedding).toBeGreaterThan(0);
    expect(roundedEmbedding).toBeLessThan(0.01);
  });

  it('a graph without position_ids (positions = past length + index) gives the same logits', async () => {
    const worst = await buildAndCompare(randomDecoderModel(tinyLlama, 11), { omitPositionIds: true });
    expect(worst.logits).toBeLessThan(1e-4);
  });

  // 'new' graphs read the cache's buffer with unused rows masked; the buffer grows (and is
  // copied) at 64, 128 and 192 rows here. 'present' graphs take the rows alone and return them all.
  const growing = [70, 1, 1, 1, 50, 1, 1, 1];
  for (const kvOutputs of ['new', 'present'] as const) {
    for (const [name, config] of [['Qwen2 GQA', tinyQwen2], ['Llama, no position_ids', tinyLlama]] as const) {
      it(`kvOutputs '${kvOutputs}': ${name} matches the oracle over ${growing.reduce((a, b) => a + b, 0)} rows in chunks ${growing.join(',')}`, async () => {
        const chunks = config.maxPositionEmbeddings >= 126 ? growing : [30, 1, 1, 20, 1, 1];
        const worst = await buildAndCompare(randomDecoderModel(config, 5), { kvOutputs, omitPositionIds: config === tinyLlama }, chunks);
        expect(worst.logits).toBeLessThan(1e-4);
        expect(worst.keys).toBeLessThan(1e-4);
        expect(worst.values).toBeLessThan(1e-4);
      });
    }
  }
});
