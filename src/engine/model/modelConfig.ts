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
