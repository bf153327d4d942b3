// Small decoder configs shared by tests (not a test file).

import type { DecoderConfig } from '../src/engine/model/modelConfig';

/** A Qwen2-shaped model small enough for the oracle: GQA (4 query heads per kv head), biases, tied embeddings. */
export const tinyQwen2: DecoderConfig = {
  architecture: 'qwen2',
  hiddenSize: 64,
  intermediateSize: 160,
  numLayers: 2,
  numHeads: 8,
  numKvHeads: 2,
  headDim: 8,
  vocabSize: 97,
  maxPositionEmbeddings: 128,
  ropeTheta: 1000000,
  ropeLayout: 'rotate-half',
  partialRotaryFactor: 1,
  rmsNormEps: 1e-6,
  tieWordEmbeddings: true,
  attentionBias: true,
  bosTokenId: 1,
  eosTokenId: [2, 3],
};

/** A Llama-shaped model with an untied classifier, partial rotary and llama3 rope scaling. */
export const tinyLlama: DecoderConfig = {
  architecture: 'llama',
  hiddenSize: 48,
  intermediateSize: 96,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 4,
  headDim: 12,
  vocabSize: 61,
  maxPositionEmbeddings: 64,
  ropeTheta: 10000,
  ropeLayout: 'rotate-half',
  partialRotaryFactor: 0.5,
  ropeScaling: { ropeType: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 16 },
  rmsNormEps: 1e-5,
  tieWordEmbeddings: false,
  attentionBias: false,
};
