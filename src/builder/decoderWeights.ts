// The in-memory description of a decoder-only transformer that the builder turns into a model
// folder, and that the test oracle runs directly. Every source (llama2.c checkpoint, Hugging
// Face safetensors, seeded random weights) produces these two objects.
//
// Matrices use the Hugging Face / llama2.c convention: row-major [out, in], so y = W · x.

import type { DecoderConfig } from '../engine/model/modelConfig';

export type { DecoderArchitecture, DecoderConfig, RopeLayout, RopeScaling } from '../engine/model/modelConfig';

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
