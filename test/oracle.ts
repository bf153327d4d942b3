// The test oracle: a deliberately plain, pure-TypeScript forward pass of a Llama / Qwen2
// decoder, written from the math in the style of llama2.c's run.c. It is slow and it is the
// reference every faster path (ONNX models, the compressed KV cache) is compared against.
//
// Per token and layer:
//   x = x + Wo · attention(RoPE(Wq · rmsnorm(x) + bq), RoPE(Wk · rmsnorm(x) + bk), Wv · rmsnorm(x) + bv)
//   x = x + Wdown · (silu(Wgate · rmsnorm(x)) ⊙ (Wup · rmsnorm(x)))
// then logits = Wcls · rmsnorm(x). Sums are accumulated in float64; the cache stores float32.

import type { DecoderConfig, DecoderLayerWeights, DecoderModel } from '../src/builder/decoderWeights';
import { ropeInverseFrequencies, rotaryDimOf } from '../src/engine/model/modelConfig';

// ---------------------------------------------------------------------------------------------
// Kernels: pure functions writing into caller-owned buffers.

/** out [n] = rmsnorm(x [n]) ⊙ weight [n]: x / sqrt(mean(x²) + eps) · weight. */
export function rmsNorm(out: Float64Array, x: Float64Array, weight: Float32Array, eps: number): void {
  let sumSquares = 0;
  for (let i = 0; i < x.length; i++) sumSquares += x[i]! * x[i]!;
  const scale = 1 / Math.sqrt(sumSquares / x.length + eps);
  for (let i = 0; i < x.length; i++) out[i] = x[i]! * scale * weight[i]!;
}

/** W [out, in] · x [in] (+ bias [out]) -> y [out]. */
export function matVec(y: Float64Array, w: Float32Array, x: Float64Array, bias?: Float32Array): void {
  const n = x.length;
  for (let row = 0; row < y.length; row++) {
    let sum = bias ? bias[row]! : 0;
    const offset = row * n;
    for (let j = 0; j < n; j++) sum += w[offset + j]! * x[j]!;
    y[row] = sum;
  }
}

/** In-place softmax over x [n]. */
export function softmax(x: Float64Array): void {
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) max = Math.max(max, x[i]!);
  let sum = 0;
  for (let i = 0; i < x.length; i++) {
    x[i] = Math.exp(x[i]! - max);
    sum += x[i]!;
  }
  for (let i = 0; i < x.length; i++) x[i] = x[i]! / sum;
}

/**
 * Rotates every head of vec [numHeads * headDim] by `position` in place. Pair i (of rotaryDim / 2)
 * turns by position * invFreq[i]; it is channels (2i, 2i+1) when interleaved (llama2.c) and
 * (i, i + rotaryDim/2) when rotate-half (Hugging Face). Channels past rotaryDim are left alone.
 */
export function applyRope(
  vec: Float64Array,
  numHeads: number,
  headDim: number,
  position: number,
  invFreq: Float64Array,
  layout: DecoderConfig['ropeLayout'],
): void {
  const half = invFreq.length; // rotaryDim / 2
  for (let h = 0; h < numHeads; h++) {
    const base = h * headDim;
    for (let i = 0; i < half; i++) {
      const angle = position * invFreq[i]!;
      const cos = Math.cos(angle);
      const sin = Math.sin(angle);
      const a = layout === 'interleaved' ? base + 2 * i : base + i;
      const b = layout === 'interleaved' ? base + 2 * i + 1 : base + i + half;
      const x0 = vec[a]!;
      const x1 = vec[b]!;
      vec[a] = x0 * cos - x1 * sin;
      vec[b] = x0 * sin + x1 * cos;
    }
  }
}

const silu = (x: number): number => x / (1 + Math.exp(-x));

// ---------------------------------------------------------------------------------------------
// The decoder

export class OracleDecoder {
  readonly config: DecoderConfig;
  private readonly invFreq: Float64Array;
  /** Per layer, one row per cached token: post-RoPE keys [numKvHeads * headDim]. */
  private readonly keyRows: Float32Array[][];
  /** Per layer, one row per cached token: values [numKvHeads * headDim]. */
  private readonly valueRows: Float32Array[][];

  constructor(private readonly model: DecoderModel) {
    this.config = model.config;
    if (rotaryDimOf(this.config) > this.config.headDim) throw new Error('rotary dimension exceeds head_dim');
    this.invFreq = ropeInverseFrequencies(this.config);
    this.keyRows = Array.from({ length: this.config.numLayers }, () => []);
    this.valueRows = Array.from({ length: this.config.numLayers }, () => []);
  }

  /** Forgets every cached token. */
  reset(): void {
    for (const rows of this.keyRows) rows.length = 0;
    for (const rows of this.valueRows) rows.length = 0;
  }

  /** The number of cached tokens. */
  get length(): number {
    return this.keyRows[0]?.length ?? 0;
  }

  /** The cached post-RoPE keys of a layer, one row [numKvHeads * headDim] per token (what ONNX `present` keys hold). */
  keys(layer: number): Float32Array[] {
    return this.layerRows(this.keyRows, layer);
  }

  /** The cached values of a layer, one row [numKvHeads * headDim] per token. */
  values(layer: number): Float32Array[] {
    return this.layerRows(this.valueRows, layer);
  }

  /**
   * Runs the tokens in order after everything already cached, each attending causally to all
   * cached rows and to the new tokens before it. positionIds[t] is the RoPE position of
   * tokenIds[t]. Returns the logits [vocab] of every input token.
   */
  forward(tokenIds: number[], positionIds: number[]): Float32Array[] {
    if (tokenIds.length !== positionIds.length) {
      throw new Error(`forward: ${tokenIds.length} token ids but ${positionIds.length} position ids`);
    }
    return tokenIds.map((token, t) => this.forwardOne(token, positionIds[t]!));
  }

  private layerRows(rows: Float32Array[][], layer: number): Float32Array[] {
    const result = rows[layer];
    if (!result) throw new Error(`layer ${layer} out of range (the model has ${rows.length})`);
    return result;
  }

  private forwardOne(token: number, position: number): Float32Array {
    const { hiddenSize, numHeads, numKvHeads, headDim, intermediateSize, vocabSize, rmsNormEps } = this.config;
    const { weights } = this.model;
    if (!Number.isInteger(token) || token < 0 || token >= vocabSize) throw new Error(`token id ${token} outside [0, ${vocabSize})`);
    const qDim = numHeads * headDim;
    const kvDim = numKvHeads * headDim;
    const groupSize = numHeads / numKvHeads; // query heads per kv head

    // The residual stream starts as the token's embedding row.
    const x = Float64Array.from(weights.embedTokens.subarray(token * hiddenSize, (token + 1) * hiddenSize));
    const xb = new Float64Array(hiddenSize);
    const q = new Float64Array(qDim);
    const k = new Float64Array(kvDim);
    const v = new Float64Array(kvDim);
    const attended = new Float64Array(qDim);
    const projected = new Float64Array(hiddenSize);
    const gate = new Float64Array(intermediateSize);
    const up = new Float64Array(intermediateSize);

    for (let l = 0; l < this.config.numLayers; l++) {
      const layer: DecoderLayerWeights = weights.layers[l]!;

      // Attention: project, rotate q and k by the token's position, append k and v to the cache.
      rmsNorm(xb, x, layer.inputNorm, rmsNormEps);
      matVec(q, layer.q, xb, layer.qBias);
      matVec(k, layer.k, xb, layer.kBias);
      matVec(v, layer.v, xb, layer.vBias);
      applyRope(q, numHeads, headDim, position, this.invFreq, this.config.ropeLayout);
      applyRope(k, numKvHeads, headDim, position, this.invFreq, this.config.ropeLayout);
      const keyRows = this.keyRows[l]!;
      const valueRows = this.valueRows[l]!;
      keyRows.push(Float32Array.from(k));
      valueRows.push(Float32Array.from(v));

      // Each query head h reads kv head floor(h / groupSize) over every cached row (this token included).
      const rows = keyRows.length;
      const scores = new Float64Array(rows);
      const scale = 1 / Math.sqrt(headDim);
      attended.fill(0);
      for (let h = 0; h < numHeads; h++) {
        const qOffset = h * headDim;
        const kvOffset = Math.floor(h / groupSize) * headDim;
        for (let r = 0; r < rows; r++) {
          const keyRow = keyRows[r]!;
          let dot = 0;
          for (let i = 0; i < headDim; i++) dot += q[qOffset + i]! * keyRow[kvOffset + i]!;
          scores[r] = dot * scale;
        }
        softmax(scores);
        for (let r = 0; r < rows; r++) {
          const valueRow = valueRows[r]!;
          const weight = scores[r]!;
          for (let i = 0; i < headDim; i++) attended[qOffset + i] = attended[qOffset + i]! + weight * valueRow[kvOffset + i]!;
        }
      }
      matVec(projected, layer.o, attended);
      for (let i = 0; i < hiddenSize; i++) x[i] = x[i]! + projected[i]!;

      // SwiGLU MLP.
      rmsNorm(xb, x, layer.postAttentionNorm, rmsNormEps);
      matVec(gate, layer.gate, xb);
      matVec(up, layer.up, xb);
      for (let i = 0; i < intermediateSize; i++) gate[i] = silu(gate[i]!) * up[i]!;
      matVec(projected, layer.down, gate);
      for (let i = 0; i < hiddenSize; i++) x[i] = x[i]! + projected[i]!;
    }

    rmsNorm(xb, x, weights.finalNorm, rmsNormEps);
    const classifier = this.config.tieWordEmbeddings ? weights.embedTokens : weights.lmHead;
    if (!classifier) throw new Error('the config says the classifier is not tied, but the weights have no lmHead');
    const logits = new Float64Array(vocabSize);
    matVec(logits, classifier, xb);
    return Float32Array.from(logits);
  }
}

/** The index of the largest logit; the first one on ties, like run.c's argmax. */
export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}
