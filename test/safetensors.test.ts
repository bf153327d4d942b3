import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  MissingTensorError,
  ModelFolderError,
  SafetensorsFormatError,
  TensorShapeError,
  UnsupportedDtypeError,
} from '../src/builder/errors';
import { randomDecoderModel } from '../src/builder/randomWeights';
import { hfTensorsOf, readSafetensorsModel, writeSafetensors, type SafetensorsDtype, type SafetensorsTensor } from '../src/builder/safetensors';
import type { DecoderModel } from '../src/builder/decoderWeights';
import { bfloat16ToFloat32, float16ToFloat32, float32ToBfloat16, float32ToFloat16 } from '../src/engine/floatFormats';
import { toHfConfig } from '../src/engine/model/modelConfig';
import { tinyLlama, tinyQwen2 } from './testModels';

const root = mkdtempSync(join(tmpdir(), 'freqkv-safetensors-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let folderCount = 0;

/** Writes a model folder: config.json plus one file, or `shards` files with an index. */
async function writeModelFolder(model: DecoderModel, dtype: SafetensorsDtype, shards = 1): Promise<string> {
  const dir = join(root, `model-${folderCount++}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(toHfConfig(model.config)));
  const tensors = Object.entries(hfTensorsOf(model, dtype));
  if (shards === 1) {
    await writeSafetensors(join(dir, 'model.safetensors'), Object.fromEntries(tensors));
    return dir;
  }
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const part = tensors.filter((_, i) => i % shards === s);
    for (const [name] of part) weightMap[name] = file;
    await writeSafetensors(join(dir, file), Object.fromEntries(part));
  }
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return dir;
}

/** The model's arrays as they come back after storing in `dtype`. */
function roundTripped(model: DecoderModel, dtype: SafetensorsDtype): DecoderModel {
  const convert = (data: Float32Array): Float32Array => {
    if (dtype === 'F32') return data;
    const bits = new Uint16Array(data.length);
    return dtype === 'F16'
      ? float16ToFloat32(float32ToFloat16(data, bits), new Float32Array(data.length))
      : bfloat16ToFloat32(float32ToBfloat16(data, bits), new Float32Array(data.length));
  };
  const { weights } = model;
  return {
    config: model.config,
    weights: {
      embedTokens: convert(weights.embedTokens),
      layers: weights.layers.map(
        (layer) => Object.fromEntries(Object.entries(layer).map(([key, values]) => [key, convert(values)])) as unknown as typeof layer,
      ),
      finalNorm: convert(weights.finalNorm),
      ...(weights.lmHead ? { lmHead: convert(weights.lmHead) } : {}),
    },
  };
}

describe('float16 / bfloat16', () => {
  it('float16 -> float32 -> float16 is the identity on every non-NaN pattern', () => {
    const bits = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const values = float16ToFloat32(bits, new Float32Array(65536));
    const back = float32ToFloat16(values, new Uint16Array(65536));
    const mismatches = [];
    for (let i = 0; i < 65536; i++) if (!Number.isNaN(values[i]) && back[i] !== i) mismatches.push(i);
    expect(mismatches).toEqual([]);
  });

  it('narrowing picks the nearest representable value', () => {
    const xs = Float32Array.from({ length: 2000 }, (_, i) => Math.sin(i * 12.9898) * 10 ** ((i % 12) - 8));
    const half = float16ToFloat32(float32ToFloat16(xs, new Uint16Array(xs.length)), new Float32Array(xs.length));
    const brain = bfloat16ToFloat32(float32ToBfloat16(xs, new Uint16Array(xs.length)), new Float32Array(xs.length));
    xs.forEach((x, i) => {
      // Relative error at most half an ulp: 2^-11 for float16 normals, 2^-8 for bfloat16;
      // float16 subnormals (|x| < 2^-14) have absolute spacing 2^-24.
      expect(Math.abs(half[i]! - x)).toBeLessThanOrEqual(Math.max(Math.abs(x) * 2 ** -11, 2 ** -25));
      expect(Math.abs(brain[i]! - x)).toBeLessThanOrEqual(Math.abs(x) * 2 ** -8);
    });
  });
});

describe('readSafetensorsModel', () => {
  it.each([
    ['F32', 1],
    ['BF16', 1],
    ['F16', 1],
    ['F32', 3],
    ['BF16', 2],
  ] as const)('reads back a random model stored as %s in %i file(s)', async (dtype, shards) => {
    for (const config of [tinyQwen2, tinyLlama]) {
      const model = randomDecoderModel(config, 21);
      const dir = await writeModelFolder(model, dtype, shards);
      const read = await readSafetensorsModel(dir);
      expect(read).toEqual(roundTripped(model, dtype));
    }
  });

  it('writes the standard Hugging Face tensor names', async () => {
    const dir = await writeModelFolder(randomDecoderModel(tinyQwen2, 1), 'F32');
    const bytes = readFileSync(join(dir, 'model.safetensors'));
    const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8')) as Record<string, unknown>;
    for (const name of [
      'model.embed_tokens.weight',
      'model.layers.1.self_attn.q_proj.weight',
      'model.layers.1.self_attn.k_proj.bias',
      'model.layers.0.mlp.down_proj.weight',
      'model.layers.0.input_layernorm.weight',
      'model.layers.0.post_attention_layernorm.weight',
      'model.norm.weight',
    ]) {
      expect(header).toHaveProperty([name]);
    }
    expect(header).not.toHaveProperty(['lm_head.weight']); // tied
  });

  it('names a missing tensor', async () => {
    const model = randomDecoderModel(tinyLlama, 1);
    const dir = join(root, 'missing');
      mkdirSync(dir);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(toHfConfig(model.config)));
    const tensors = hfTensorsOf(model, 'F32');
    delete tensors['model.layers.1.mlp.up_proj.weight'];
    await writeSafetensors(join(dir, 'model.safetensors'), tensors);
    await expect(readSafetensorsModel(dir)).rejects.toThrow(MissingTensorError);
    await expect(readSafetensorsModel(dir)).rejects.toThrow('model.layers.1.mlp.up_proj.weight');
  });

  it('says expected vs actual shape', async () => {
    const model = randomDecoderModel(tinyLlama, 1);
    const dir = await writeModelFolder(model, 'F32');
    const wrongConfig = { ...toHfConfig(model.config), intermediate_size: tinyLlama.intermediateSize + 1 };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(wrongConfig));
    await expect(readSafetensorsModel(dir)).rejects.toThrow(TensorShapeError);
    await expect(readSafetensorsModel(dir)).rejects.toThrow(
      `shape [${tinyLlama.intermediateSize},${tinyLlama.hiddenSize}], expected [${tinyLlama.intermediateSize + 1},${tinyLlama.hiddenSize}]`,
    );
  });

  it('rejects a truncated file', async () => {
    const dir = await writeModelFolder(randomDecoderModel(tinyQwen2, 1), 'BF16');
    const file = join(dir, 'model.safetensors');
    truncateSync(file, readFileSync(file).byteLength - 2);
    await expect(readSafetensorsModel(dir)).rejects.toThrow(SafetensorsFormatError);
    await expect(readSafetensorsModel(dir)).rejects.toThrow(/truncated/);
    truncateSync(file, 5);
    await expect(readSafetensorsModel(dir)).rejects.toThrow(SafetensorsFormatError);
  });

  it('rejects an unsupported dtype, naming it', async () => {
    const model = randomDecoderModel(tinyQwen2, 1);
    const dir = await writeModelFolder(model, 'F32');
    const file = join(dir, 'model.safetensors');
    // Relabel the F32 embedding as I32 (same element size, so the header stays consistent).
    const bytes = readFileSync(file);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    const header = bytes.subarray(8, 8 + headerLength).toString('utf8');
    const relabelled = header.replace(/("model\.embed_tokens\.weight":\{"dtype":)"F32"/, '$1"I32"');
    expect(relabelled).not.toBe(header);
    bytes.write(relabelled, 8, 'utf8');
    writeFileSync(file, bytes);
    await expect(readSafetensorsModel(dir)).rejects.toThrow(UnsupportedDtypeError);
    await expect(readSafetensorsModel(dir)).rejects.toThrow(/I32.*F32, F16, BF16/);
  });

  it('explains a folder without weights and checks writes', async () => {
    const dir = join(root, 'empty');
      mkdirSync(dir);
    await expect(readSafetensorsModel(dir)).rejects.toThrow(ModelFolderError);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(toHfConfig(tinyQwen2)));
    await expect(readSafetensorsModel(dir)).rejects.toThrow(/model\.safetensors/);
    const bad: Record<string, SafetensorsTensor> = { x: { dtype: 'F32', shape: [2, 3], data: new Float32Array(5) } };
    await expect(writeSafetensors(join(dir, 'bad.safetensors'), bad)).rejects.toThrow(TensorShapeError);
  });
});
