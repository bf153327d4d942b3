// The in-memory description of a decoder-only transformer that the builder turns into a model
// folder, and that the test oracle runs directly. Every source (llama2.c checkpoint, Hugging
// Face safetensors, seeded random weights) produces these two objects.
//
// Matrices use the Hugging Face / llama2.c convention: row-major [out, in], so y = W · x.

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

export interface DecoderLayerWeights {
  inputNorm: Float32Array; // [hidden]
  q: Float32Array; // [numHeads * headDim, hidden]
  k: Float32Array; // [numKvHeads * headDim, hidden]
  v: Float32Array; // [numKvHeads * headDim, hidden]
  o: Float32Array; // [hidden, numHeads * headDim]
  qBias?: Float32Array; // [numHeads * headDim]
  kBias?: Float32Array; // [numKvHeads * headDim]
  vBias?: Float32Array; // [numKvHeads * headDim]
  postAttentionNorm: Float32Array; // [hidden]
  gate: Float32Array; // [intermediate, hidden]  (w1 in llama2.c)
  up: Float32Array; // [intermediate, hidden]    (w3 in llama2.c)
  down: Float32Array; // [hidden, intermediate]  (w2 in llama2.c)
}

export interface DecoderWeights {
  embedTokens: Float32Array; // [vocab, hidden]
  layers: DecoderLayerWeights[];
  finalNorm: Float32Array; // [hidden]
  /** Present only when the classifier is not tied to the embedding. [vocab, hidden] */
  lmHead?: Float32Array;
}

export interface DecoderModel {
  config: DecoderConfig;
  weights: DecoderWeights;
}
