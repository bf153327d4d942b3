// Broken model folders fail before onnxruntime sees them, with a named error that says what
// is wrong and what to do.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectModelFolder } from '../src/engine/model/modelFolder';
import { ModelConfigError, ModelFileCorruptError, ModelNotFoundError, ModelSignatureError, UnsupportedModelError } from '../src/engine/model/errors';
import { TokenizerLoadError } from '../src/engine/tokenizer/errors';
import { Engine } from '../src/engine/engine';
import { randomDecoderModel } from '../src/builder/randomWeights';
import { GraphBuilder, TensorType } from '../src/builder/onnxGraph';
import { EMBEDDED_MODEL, buildTestModel, tempDir } from './helpers';
import { tinyQwen2 } from './testModels';

const work = tempDir('folder');
let good: string;
let external: string;

beforeAll(() => {
  good = buildTestModel(randomDecoderModel(tinyQwen2, 1), {}, fs.mkdtempSync(path.join(work, 'g-'))).dir;
  external = buildTestModel(randomDecoderModel(tinyQwen2, 1), { externalData: 'always' }, fs.mkdtempSync(path.join(work, 'e-'))).dir;
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** A copy of a model folder to break. */
function copyOf(dir: string): string {
  const copy = fs.mkdtempSync(path.join(work, 'c-'));
  fs.cpSync(dir, copy, { recursive: true });
  return copy;
}

function editConfig(dir: string, edit: (config: Record<string, unknown>) => void): void {
  const file = path.join(dir, 'config.json');
  const config = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(config);
  fs.writeFileSync(file, JSON.stringify(config));
}

describe('model folder validation', () => {
  it('accepts the embedded model and a built one', () => {
    expect(inspectModelFolder(EMBEDDED_MODEL).config.numLayers).toBe(5);
    // The builder applies RoPE with onnxruntime's RotaryEmbedding; the cached keys come out rotated.
    expect(inspectModelFolder(good).signature).toMatchObject({ hasPositionIds: true, kvElementType: 'float32', fusedAttentionOps: ['RotaryEmbedding'] });
  });

  it('a missing folder', () => {
    expect(() => inspectModelFolder(path.join(work, 'nope'))).toThrow(ModelNotFoundError);
  });

  it('a missing .onnx names the file and what to do', () => {
    const dir = copyOf(good);
    fs.rmSync(path.join(dir, 'onnx', 'model.onnx'));
    expect(() => inspectModelFolder(dir)).toThrow(/has no onnx\/model\.onnx.*convert|Download Model/);
  });

  it('a truncated .onnx', () => {
    const dir = copyOf(good);
    const file = path.join(dir, 'onnx', 'model.onnx');
    fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2));
    expect(() => inspectModelFolder(dir)).toThrow(ModelFileCorruptError);
    expect(() => inspectModelFolder(dir)).toThrow(/truncated/);
  });

  it('an .onnx that is not ONNX at all', () => {
    const dir = copyOf(good);
    fs.writeFileSync(path.join(dir, 'onnx', 'model.onnx'), 'version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n');
    expect(() => inspectModelFolder(dir)).toThrow(ModelFileCorruptError);
  });

  it('missing and truncated external data', () => {
    const missing = copyOf(external);
    fs.rmSync(path.join(missing, 'onnx', 'model.onnx_data'));
    expect(() => inspectModelFolder(missing)).toThrow(/model\.onnx_data, which is missing/);
    const truncated = copyOf(external);
    const data = path.join(truncated, 'onnx', 'model.onnx_data');
    fs.truncateSync(data, fs.statSync(data).size - 100);
    expect(() => inspectModelFolder(truncated)).toThrow(ModelFileCorruptError);
  });

  it('a config that disagrees with the graph: layers, kv heads, head_dim', () => {
    const layers = copyOf(good);
    editConfig(layers, (c) => (c.num_hidden_layers = 3));
    expect(() => inspectModelFolder(layers)).toThrow(/says 3 layers but .* has past_key_values for 2/);
    const heads = copyOf(good);
    editConfig(heads, (c) => (c.num_key_value_heads = 4));
    expect(() => inspectModelFolder(heads)).toThrow(ModelSignatureError);
    const headDim = copyOf(good);
    editConfig(headDim, (c) => (c.head_dim = 16));
    expect(() => inspectModelFolder(headDim)).toThrow(/head_dim 16 but/);
  });

  it('an unsupported architecture and a config that is not JSON', () => {
    const arch = copyOf(good);
    editConfig(arch, (c) => {
      c.model_type = 'gpt2';
      c.architectures = ['GPT2LMHeadModel'];
    });
    expect(() => inspectModelFolder(arch)).toThrow(UnsupportedModelError);
    const broken = copyOf(good);
    fs.writeFileSync(path.join(broken, 'config.json'), '{ "model_type": ');
    expect(() => inspectModelFolder(broken)).toThrow(ModelConfigError);
  });

  it('a graph that takes inputs_embeds, or lacks the KV cache', () => {
    const embeds = copyOf(good);
    const g = new GraphBuilder('embeds');
    g.input('inputs_embeds', TensorType.FLOAT, ['b', 's', 64]);
    g.input('attention_mask', TensorType.INT64, ['b', 't']);
    g.opNamed('logits', 'Identity', ['inputs_embeds']);
    g.output('logits', TensorType.FLOAT, ['b', 's', 64]);
    g.save(path.join(embeds, 'onnx', 'model.onnx'), { opsets: [{ domain: '', version: 17 }], producer: 'test' });
    expect(() => inspectModelFolder(embeds)).toThrow(/inputs_embeds/);

    const noPast = copyOf(good);
    const h = new GraphBuilder('nopast');
    h.input('input_ids', TensorType.INT64, ['b', 's']);
    h.input('attention_mask', TensorType.INT64, ['b', 't']);
    h.opNamed('logits', 'Cast', ['input_ids'], { to: TensorType.FLOAT });
    h.output('logits', TensorType.FLOAT, ['b', 's']);
    h.save(path.join(noPast, 'onnx', 'model.onnx'), { opsets: [{ domain: '', version: 17 }], producer: 'test' });
    expect(() => inspectModelFolder(noPast)).toThrow(/no past_key_values/);
  });

  it('a tokenizer.json that does not parse, and a missing one', async () => {
    const broken = copyOf(good);
    fs.writeFileSync(path.join(broken, 'tokenizer.json'), '{"model": {"type": "BPE", ');
    await expect(Engine.load({ modelDir: broken })).rejects.toThrow(TokenizerLoadError);
    await expect(Engine.load({ modelDir: broken })).rejects.toThrow(/tokenizer\.json/);
    const missing = copyOf(good);
    fs.rmSync(path.join(missing, 'tokenizer.json'));
    expect(() => inspectModelFolder(missing)).toThrow(/no tokenizer\.json/);
  });
});
