// Seeded random weights for any DecoderConfig: test models with real shapes (up to a
// Qwen2.5-0.5B-sized one) without downloading anything. The initialisation imitates Hugging
// Face's (`initializer_range` 0.02): matrices and biases ~ normal(0, 0.02), RMSNorm weights
// 1 + normal(0, 0.02), so activations keep a sane scale through the layers and the logits are
// spread out rather than constant. The same config and seed always give the same weights.

import { createRng } from '../engine/random';
import type { DecoderConfig, DecoderLayerWeights, DecoderModel } from './decoderWeights';

const INITIALIZER_RANGE = 0.02;

// Normal samples by table lookup. Box-Muller (log, sqrt, cos, sin per pair) took about 18 s
// for a Qwen2.5-0.5B-sized model; interpolating a precomputed inverse normal CDF costs one
// uniform and a lookup per sample, about 3x faster. The table spans the quantiles
// (i + 0.5) / (TABLE_CELLS + 1), so samples are cut off at about ±3.5 standard deviations,
// which is harmless (and common) for weight initialisation.
const TABLE_CELLS = 4096;
let inverseNormalTable: Float64Array | undefined;

function inverseNormalCdfTable(): Float64Array {
  if (!inverseNormalTable) {
    inverseNormalTable = new Float64Array(TABLE_CELLS + 1);
    for (let i = 0; i <= TABLE_CELLS; i++) inverseNormalTable[i] = inverseNormalCdf((i + 0.5) / (TABLE_CELLS + 1));
  }
  return inverseNormalTable;
}

/** Φ⁻¹(p) for p in (0, 1): Acklam's rational approximation (relative error below 1.2e-9). */
function inverseNormalCdf(p: number): number {
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const poly = (coefficients: number[], x: number): number => coefficients.reduce((sum, coefficient) => sum * x + coefficient, 0);
  const tail = 0.02425;
  if (p < tail) {
    const q = Math.sqrt(-2 * Math.log(p));
    return poly(c, q) / (poly(d, q) * q + 1);
  }
  if (p > 1 - tail) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    return -poly(c, q) / (poly(d, q) * q + 1);
  }
  const q = p - 0.5;
  const r = q * q;
  return (poly(a, r) * q) / (poly(b, r) * r + 1);
}

/** Fills out with mean + std · (approximately) normal(0, 1) samples. */
function fillNormal(out: Float32Array, rng: () => number, mean: number, std: number): Float32Array {
  const table = inverseNormalCdfTable();
  for (let i = 0; i < out.length; i++) {
    const x = rng() * TABLE_CELLS;
    const cell = x | 0;
    const low = table[cell]!;
    out[i] = mean + std * (low + (x - cell) * (table[cell + 1]! - low));
  }
  return out;
}

/** A model with the config's shapes and seeded random weights (about 4 bytes per parameter). */
export function randomDecoderModel(config: DecoderConfig, seed: number): DecoderModel {
  const rng = createRng(seed);
  const { hiddenSize, intermediateSize, numHeads, numKvHeads, headDim, vocabSize } = config;
  const qDim = numHeads * headDim;
  const kvDim = numKvHeads * headDim;
  const matrix = (rows: number, cols: number): Float32Array => fillNormal(new Float32Array(rows * cols), rng, 0, INITIALIZER_RANGE);
  const norm = (size: number): Float32Array => fillNormal(new Float32Array(size), rng, 1, INITIALIZER_RANGE);
  const bias = (size: number): Float32Array => fillNormal(new Float32Array(size), rng, 0, INITIALIZER_RANGE);

  const embedTokens = matrix(vocabSize, hiddenSize);
  const layers: DecoderLayerWeights[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    const layer: DecoderLayerWeights = {
      inputNorm: norm(hiddenSize),
      q: matrix(qDim, hiddenSize),
      k: matrix(kvDim, hiddenSize),
      v: matrix(kvDim, hiddenSize),
      o: matrix(hiddenSize, qDim),
      postAttentionNorm: norm(hiddenSize),
      gate: matrix(intermediateSize, hiddenSize),
      up: matrix(intermediateSize, hiddenSize),
      down: matrix(hiddenSize, intermediateSize),
    };
    if (config.attentionBias) {
      layer.qBias = bias(qDim);
      layer.kBias = bias(kvDim);
      layer.vBias = bias(kvDim);
    }
    layers.push(layer);
  }
  const finalNorm = norm(hiddenSize);
  const weights = config.tieWordEmbeddings
    ? { embedTokens, layers, finalNorm }
    : { embedTokens, layers, finalNorm, lmHead: matrix(vocabSize, hiddenSize) };
  return { config, weights };
}
