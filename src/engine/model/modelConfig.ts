// What the engine knows about a decoder from its config.json: the shapes and the rotary
// embedding. The builder writes it (toHfConfig) and the loader reads it (parseHfConfig).

export type DecoderArchitecture = 'llama' | 'qwen2';

/** How RoPE pairs channels: Hugging Face models rotate (i, i + d/2); llama2.c rotates (2i, 2i + 1). */
export type RopeLayout = 'rotate-half' | 'interleaved';

/** Rope scaling as Hugging Face config.json writes it (`rope_scaling`). */
export type RopeScaling =
  | { ropeType: 'linear'; factor: number }
  | {
      ropeType: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    };

export interface DecoderConfig {
  architecture: DecoderArchitecture;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  /** The trained context length. */
  maxPositionEmbeddings: number;
  ropeTheta: number;
  ropeLayout: RopeLayout;
  /** Fraction of each head's channels that RoPE rotates (the first ones); 1 for Llama and Qwen2. */
  partialRotaryFactor: number;
  ropeScaling?: RopeScaling;
  rmsNormEps: number;
  /** The classifier reuses the token embedding. */
  tieWordEmbeddings: boolean;
  /** Biases on the q, k and v projections (Qwen2). */
  attentionBias: boolean;
  bosTokenId?: number;
  eosTokenId?: number | number[];
}

// ---------------------------------------------------------------------------------------------
// Reading and writing Hugging Face config.json

import { ModelConfigError, UnsupportedModelError } from './errors';

const SUPPORTED_MODEL_TYPES: readonly DecoderArchitecture[] = ['llama', 'qwen2'];
const SUPPORTED_ROPE_TYPES = ['default', 'linear', 'llama3'] as const;

/** The class name Hugging Face writes in `architectures`, per model type. */
const ARCHITECTURE_CLASS: Record<DecoderArchitecture, string> = {
  llama: 'LlamaForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
};

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads config fields, naming the field and the file when one is missing or malformed. */
class ConfigReader {
  constructor(
    private readonly json: JsonObject,
    private readonly source: string,
  ) {}

  has(key: string): boolean {
    return this.json[key] !== undefined && this.json[key] !== null;
  }

  number(key: string, fallback?: number): number {
    const value = this.json[key];
    if (value === undefined || value === null) {
      if (fallback !== undefined) return fallback;
      throw new ModelConfigError(
        `${this.source}: the required field "${key}" is missing; add it to config.json (see the model's Hugging Face config).`,
      );
    }
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new ModelConfigError(`${this.source}: "${key}" must be a number, found ${JSON.stringify(value)}; fix config.json.`);
    }
    return value;
  }

  positiveInteger(key: string, fallback?: number): number {
    const value = this.number(key, fallback);
    if (!Number.isInteger(value) || value <= 0) {
      throw new ModelConfigError(`${this.source}: "${key}" must be a positive integer, found ${value}; fix config.json.`);
    }
    return value;
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.json[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'boolean') {
      throw new ModelConfigError(`${this.source}: "${key}" must be true or false, found ${JSON.stringify(value)}; fix config.json.`);
    }
    return value;
  }

  optionalTokenId(key: string): number | undefined {
    if (!this.has(key)) return undefined;
    return this.tokenId(key, this.json[key]);
  }

  optionalTokenIds(key: string): number | number[] | undefined {
    const value = this.json[key];
    if (value === undefined || value === null) return undefined;
    if (Array.isArray(value)) return value.map((item) => this.tokenId(key, item));
    return this.tokenId(key, value);
  }

  private tokenId(key: string, value: unknown): number {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
      throw new ModelConfigError(
        `${this.source}: "${key}" must be a token id (a non-negative integer) or a list of them, found ${JSON.stringify(value)}; fix config.json.`,
      );
    }
    return value;
  }
}

function modelTypeOf(json: JsonObject): string | undefined {
  if (typeof json.model_type === 'string') return json.model_type;
  const architectures = json.architectures;
  if (Array.isArray(architectures)) {
    for (const [type, className] of Object.entries(ARCHITECTURE_CLASS)) {
      if (architectures.includes(className)) return type;
    }
    const first: unknown = architectures[0];
    if (typeof first === 'string') return first;
  }
  return undefined;
}

function parseRopeScaling(value: unknown, source: string): RopeScaling | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) {
    throw new ModelConfigError(`${source}: "rope_scaling" must be an object or null, found ${JSON.stringify(value)}; fix config.json.`);
  }
  const ropeType = value.rope_type ?? value.type;
  const reader = new ConfigReader(value, `${source} (rope_scaling)`);
  switch (ropeType) {
    case 'default':
      return undefined;
    case 'linear':
      return { ropeType: 'linear', factor: reader.number('factor') };
    case 'llama3':
      return {
        ropeType: 'llama3',
        factor: reader.number('factor'),
        lowFreqFactor: reader.number('low_freq_factor'),
        highFreqFactor: reader.number('high_freq_factor'),
        originalMaxPositionEmbeddings: reader.positiveInteger('original_max_position_embeddings'),
      };
    default:
      throw new UnsupportedModelError(
        `${source}: rope scaling type ${JSON.stringify(ropeType)} is not supported; supported rope_scaling types: ` +
          `${SUPPORTED_ROPE_TYPES.join(', ')} (or rope_scaling null). Use a model without this rope scaling.`,
      );
  }
}

/**
 * Reads a Hugging Face config.json (already parsed) of a Llama or Qwen2 model.
 * `source` names the file in error messages.
 */
export function parseHfConfig(json: unknown, source: string): DecoderConfig {
  if (!isObject(json)) {
    throw new ModelConfigError(`${source}: expected a JSON object at the top level; is this a Hugging Face config.json?`);
  }
  const modelType = modelTypeOf(json);
  if (modelType === undefined) {
    throw new ModelConfigError(`${source}: the required field "model_type" is missing; add "model_type": "llama" or "qwen2".`);
  }
  if (!(SUPPORTED_MODEL_TYPES as readonly string[]).includes(modelType)) {
    throw new UnsupportedModelError(
      `${source}: model_type "${modelType}" is not supported; supported model types: ${SUPPORTED_MODEL_TYPES.join(', ')}. ` +
        'Choose a Llama or Qwen2 model.',
    );
  }
  const architecture = modelType as DecoderArchitecture;
  const read = new ConfigReader(json, source);

  const hiddenSize = read.positiveInteger('hidden_size');
  const numHeads = read.positiveInteger('num_attention_heads');
  const numKvHeads = read.positiveInteger('num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new ModelConfigError(
      `${source}: num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads}); fix config.json.`,
    );
  }
  if (!read.has('head_dim') && hiddenSize % numHeads !== 0) {
    throw new ModelConfigError(
      `${source}: hidden_size (${hiddenSize}) is not a multiple of num_attention_heads (${numHeads}) and "head_dim" is missing; add "head_dim".`,
    );
  }
  const headDim = read.positiveInteger('head_dim', hiddenSize / numHeads);
  const partialRotaryFactor = read.number('partial_rotary_factor', 1);
  if (!(partialRotaryFactor > 0 && partialRotaryFactor <= 1)) {
    throw new ModelConfigError(`${source}: "partial_rotary_factor" must be in (0, 1], found ${partialRotaryFactor}; fix config.json.`);
  }

  const config: DecoderConfig = {
    architecture,
    hiddenSize,
    intermediateSize: read.positiveInteger('intermediate_size'),
    numLayers: read.positiveInteger('num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: read.positiveInteger('vocab_size'),
    maxPositionEmbeddings: read.positiveInteger('max_position_embeddings'),
    ropeTheta: read.number('rope_theta', 10000),
    ropeLayout: read.boolean('rope_interleaved', false) ? 'interleaved' : 'rotate-half',
    partialRotaryFactor,
    rmsNormEps: read.number('rms_norm_eps'),
    // Both LlamaConfig and Qwen2Config default to an untied classifier.
    tieWordEmbeddings: read.boolean('tie_word_embeddings', false),
    // Qwen2Attention always has q/k/v biases; Llama has them only with attention_bias.
    attentionBias: architecture === 'qwen2' ? true : read.boolean('attention_bias', false),
  };
  const ropeScaling = parseRopeScaling(json.rope_scaling, source);
  if (ropeScaling !== undefined) config.ropeScaling = ropeScaling;
  const bos = read.optionalTokenId('bos_token_id');
  if (bos !== undefined) config.bosTokenId = bos;
  const eos = read.optionalTokenIds('eos_token_id');
  if (eos !== undefined) config.eosTokenId = eos;
  return config;
}

/** The inverse of parseHfConfig: a config.json object that Hugging Face and parseHfConfig both read. */
export function toHfConfig(config: DecoderConfig): Record<string, unknown> {
  if (config.architecture === 'qwen2' && !config.attentionBias) {
    throw new ModelConfigError(
      'A qwen2 config must have attentionBias true (Qwen2 always has q/k/v biases); use architecture "llama" for a model without them.',
    );
  }
  const json: Record<string, unknown> = {
    architectures: [ARCHITECTURE_CLASS[config.architecture]],
    model_type: config.architecture,
    hidden_act: 'silu',
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: config.numHeads,
    num_key_value_heads: config.numKvHeads,
    head_dim: config.headDim,
    vocab_size: config.vocabSize,
    max_position_embeddings: config.maxPositionEmbeddings,
    rope_theta: config.ropeTheta,
    rope_scaling: ropeScalingToHf(config.ropeScaling),
    rms_norm_eps: config.rmsNormEps,
    tie_word_embeddings: config.tieWordEmbeddings,
    torch_dtype: 'float32',
  };
  if (config.architecture === 'llama') json.attention_bias = config.attentionBias;
  if (config.partialRotaryFactor !== 1) json.partial_rotary_factor = config.partialRotaryFactor;
  if (config.ropeLayout === 'interleaved') json.rope_interleaved = true;
  if (config.bosTokenId !== undefined) json.bos_token_id = config.bosTokenId;
  if (config.eosTokenId !== undefined) json.eos_token_id = config.eosTokenId;
  return json;
}

function ropeScalingToHf(scaling: RopeScaling | undefined): Record<string, unknown> | null {
  if (scaling === undefined) return null;
  if (scaling.ropeType === 'linear') return { rope_type: 'linear', factor: scaling.factor };
  return {
    rope_type: 'llama3',
    factor: scaling.factor,
    low_freq_factor: scaling.lowFreqFactor,
    high_freq_factor: scaling.highFreqFactor,
    original_max_position_embeddings: scaling.originalMaxPositionEmbeddings,
  };
}

// ---------------------------------------------------------------------------------------------
// Rotary embedding frequencies

/** The number of leading channels of each head that RoPE rotates: floor(headDim * factor), rounded down to even. */
export function rotaryDimOf(config: DecoderConfig): number {
  const rotaryDim = Math.floor(config.headDim * config.partialRotaryFactor);
  return rotaryDim - (rotaryDim % 2);
}

/**
 * The inverse frequency of each rotated channel pair, length rotaryDim / 2: pair i turns by
 * position * invFreq[i] radians. Base: theta^(-2i / rotaryDim). Linear scaling divides every
 * frequency by the factor; llama3 scaling divides only the low frequencies (long wavelengths)
 * and interpolates smoothly in between, as Hugging Face's `_compute_llama3_parameters` does.
 */
export function ropeInverseFrequencies(config: DecoderConfig): Float64Array {
  const rotaryDim = rotaryDimOf(config);
  const invFreq = new Float64Array(rotaryDim / 2);
  for (let i = 0; i < invFreq.length; i++) {
    invFreq[i] = 1 / Math.pow(config.ropeTheta, (2 * i) / rotaryDim);
  }
  const scaling = config.ropeScaling;
  if (scaling === undefined) return invFreq;
  if (scaling.ropeType === 'linear') {
    for (let i = 0; i < invFreq.length; i++) invFreq[i] = invFreq[i]! / scaling.factor;
    return invFreq;
  }
  // llama3: wavelengths shorter than oldContext / highFreqFactor are kept, longer than
  // oldContext / lowFreqFactor are divided by factor, the band between is interpolated.
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: oldContext } = scaling;
  const lowFreqWavelen = oldContext / lowFreqFactor;
  const highFreqWavelen = oldContext / highFreqFactor;
  for (let i = 0; i < invFreq.length; i++) {
    const base = invFreq[i]!;
    const wavelen = (2 * Math.PI) / base;
    if (wavelen < highFreqWavelen) continue;
    if (wavelen > lowFreqWavelen) {
      invFreq[i] = base / factor;
    } else {
      const smooth = (oldContext / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
      invFreq[i] = ((1 - smooth) * base) / factor + smooth * base;
    }
  }
  return invFreq;
}
