import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelConfigError, UnsupportedModelError } from '../src/engine/model/errors';
import { parseHfConfig, ropeInverseFrequencies, toHfConfig, type DecoderConfig } from '../src/engine/model/modelConfig';

const QWEN_CONFIG_PATH = join(__dirname, '../../shared/formats/qwen2.5-coder-instruct/config.json');
const qwenJson = JSON.parse(readFileSync(QWEN_CONFIG_PATH, 'utf8')) as Record<string, number>;

const llamaBase: DecoderConfig = {
  architecture: 'llama',
  hiddenSize: 256,
  intermediateSize: 688,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 64,
  vocabSize: 1000,
  maxPositionEmbeddings: 2048,
  ropeTheta: 500000,
  ropeLayout: 'rotate-half',
  partialRotaryFactor: 1,
  rmsNormEps: 1e-5,
  tieWordEmbeddings: false,
  attentionBias: false,
};

describe('parseHfConfig', () => {
  it('reads the Qwen2.5-Coder config', () => {
    const config = parseHfConfig(qwenJson, QWEN_CONFIG_PATH);
    expect(config.architecture).toBe('qwen2');
    expect(config.hiddenSize).toBe(qwenJson.hidden_size);
    expect(config.intermediateSize).toBe(qwenJson.intermediate_size);
    expect(config.numLayers).toBe(qwenJson.num_hidden_layers);
    expect(config.numHeads).toBe(qwenJson.num_attention_heads);
    expect(config.numKvHeads).toBe(qwenJson.num_key_value_heads);
    expect(config.headDim).toBe(qwenJson.hidden_size! / qwenJson.num_attention_heads!);
    expect(config.vocabSize).toBe(qwenJson.vocab_size);
    expect(config.maxPositionEmbeddings).toBe(qwenJson.max_position_embeddings);
    expect(config.ropeTheta).toBe(qwenJson.rope_theta);
    expect(config.rmsNormEps).toBe(qwenJson.rms_norm_eps);
    expect(config.ropeLayout).toBe('rotate-half');
    expect(config.partialRotaryFactor).toBe(1);
    expect(config.ropeScaling).toBeUndefined();
    expect(config.tieWordEmbeddings).toBe(true);
    expect(config.attentionBias).toBe(true); // Qwen2 always has q/k/v biases
    expect(config.bosTokenId).toBe(qwenJson.bos_token_id);
    expect(config.eosTokenId).toBe(qwenJson.eos_token_id);
  });

  it('round-trips through toHfConfig', () => {
    const variants: DecoderConfig[] = [
      parseHfConfig(qwenJson, QWEN_CONFIG_PATH),
      llamaBase,
      { ...llamaBase, ropeLayout: 'interleaved', attentionBias: true, tieWordEmbeddings: true, bosTokenId: 1, eosTokenId: [2, 7] },
      { ...llamaBase, partialRotaryFactor: 0.5, ropeScaling: { ropeType: 'linear', factor: 4 } },
      {
        ...llamaBase,
        ropeScaling: { ropeType: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
      },
    ];
    for (const config of variants) {
      const json = JSON.parse(JSON.stringify(toHfConfig(config))) as Record<string, unknown>;
      expect(parseHfConfig(json, 'round-trip')).toEqual(config);
      expect(json.torch_dtype).toBe('float32');
      expect('rope_interleaved' in json).toBe(config.ropeLayout === 'interleaved');
    }
  });

  it('applies Hugging Face defaults', () => {
    const json: Record<string, unknown> = {
      model_type: 'llama',
      hidden_size: 128,
      intermediate_size: 256,
      num_hidden_layers: 1,
      num_attention_heads: 4,
      vocab_size: 100,
      max_position_embeddings: 64,
      rms_norm_eps: 1e-6,
    };
    const config = parseHfConfig(json, 'defaults.json');
    expect(config.numKvHeads).toBe(4);
    expect(config.headDim).toBe(32);
    expect(config.ropeTheta).toBe(10000);
    expect(config.tieWordEmbeddings).toBe(false);
    expect(config.attentionBias).toBe(false);
    expect(parseHfConfig({ ...json, model_type: 'qwen2' }, 'q.json').tieWordEmbeddings).toBe(false);
    expect(parseHfConfig({ ...json, rope_scaling: { type: 'linear', factor: 2 } }, 'l.json').ropeScaling).toEqual({
      ropeType: 'linear',
      factor: 2,
    });
  });

  it('rejects unsupported models and incomplete configs with named errors', () => {
    const mistral = { ...qwenJson, model_type: 'mistral', architectures: ['MistralForCausalLM'] };
    expect(() => parseHfConfig(mistral, 'mistral/config.json')).toThrow(UnsupportedModelError);
    expect(() => parseHfConfig(mistral, 'mistral/config.json')).toThrow(/"mistral".*llama, qwen2/);
    const yarn = { ...qwenJson, rope_scaling: { rope_type: 'yarn', factor: 4 } };
    expect(() => parseHfConfig(yarn, 'yarn.json')).toThrow(UnsupportedModelError);
    expect(() => parseHfConfig(yarn, 'yarn.json')).toThrow(/"yarn".*linear, llama3/);
    const { hidden_size: _dropped, ...noHidden } = qwenJson;
    expect(() => parseHfConfig(noHidden, 'broken/config.json')).toThrow(ModelConfigError);
    expect(() => parseHfConfig(noHidden, 'broken/config.json')).toThrow(/broken\/config\.json.*"hidden_size"/);
  });
});

describe('ropeInverseFrequencies', () => {
  const base = (config: DecoderConfig, rotaryDim: number): number[] =>
    Array.from({ length: rotaryDim / 2 }, (_, i) => Math.pow(config.ropeTheta, -(2 * i) / rotaryDim));

  it('gives theta^(-2i/d) per pair, over the rotary part of the head', () => {
    expect(Array.from(ropeInverseFrequencies(llamaBase))).toEqual(base(llamaBase, 64).map((f) => expect.closeTo(f, 15)));
    const partial = { ...llamaBase, partialRotaryFactor: 0.25 };
    expect(Array.from(ropeInverseFrequencies(partial))).toEqual(base(partial, 16).map((f) => expect.closeTo(f, 15)));
    // floor(10 * 0.5) = 5 rounds down to 4 rotated channels: 2 pairs.
    expect(ropeInverseFrequencies({ ...llamaBase, headDim: 10, partialRotaryFactor: 0.5 }).length).toBe(2);
  });

  it('applies linear and llama3 scaling', () => {
    const linear = { ...llamaBase, ropeScaling: { ropeType: 'linear' as const, factor: 4 } };
    expect(Array.from(ropeInverseFrequencies(linear))).toEqual(base(linear, 64).map((f) => expect.closeTo(f / 4, 15)));

    const scaling = { ropeType: 'llama3' as const, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 };
    const llama3 = { ...llamaBase, ropeTheta: 10000, ropeScaling: scaling };
    const expected = base(llama3, 64).map((f) => {
      const wavelength = (2 * Math.PI) / f;
      const low = scaling.originalMaxPositionEmbeddings / scaling.lowFreqFactor;
      const high = scaling.originalMaxPositionEmbeddings / scaling.highFreqFactor;
      if (wavelength < high) return f;
      if (wavelength > low) return f / scaling.factor;
      const s = (scaling.originalMaxPositionEmbeddings / wavelength - scaling.lowFreqFactor) / (scaling.highFreqFactor - scaling.lowFreqFactor);
      return (1 - s) * (f / scaling.factor) + s * f;
    });
    const actual = Array.from(ropeInverseFrequencies(llama3));
    expect(actual).toEqual(expected.map((f) => expect.closeTo(f, 15)));
    // The chosen context makes all three bands appear.
    const unscaled = base(llama3, 64);
    expect(actual.some((f, i) => f === unscaled[i])).toBe(true);
    expect(actual.some((f, i) => Math.abs(f - unscaled[i]! / 8) < 1e-18)).toBe(true);
    expect(actual.some((f, i) => f < unscaled[i]! && f > unscaled[i]! / 8)).toBe(true);
  });
});
