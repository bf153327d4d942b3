// Reads a checkpoint in karpathy's llama2.c "legacy" layout (the .bin files run.c loads):
//
//   7 × int32 header: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
//                     (vocab_size < 0 means the classifier is stored separately)
//   float32 arrays:   token embedding [vocab, dim]
//                     rms_att [L, dim]; wq [L, dim, dim]; wk [L, kvDim, dim]; wv [L, kvDim, dim];
//                     wo [L, dim, dim]; rms_ffn [L, dim]; w1 [L, hidden, dim];
//                     w2 [L, dim, hidden]; w3 [L, hidden, dim]; rms_final [dim]
//                     two legacy RoPE tables of seq_len * headDim / 2 floats each (skipped)
//                     classifier [vocab, dim], only when not shared
//
// All little-endian; matrices are [out, in], row-major, like DecoderLayerWeights. llama2.c
// rotates interleaved channel pairs (2i, 2i+1) with theta 10000.

import type { DecoderConfig, DecoderLayerWeights, DecoderModel } from './decoderWeights';
import { CheckpointFormatError } from './errors';

const HEADER_BYTES = 7 * 4;

/** Parses a whole llama2.c checkpoint file. The returned arrays are copies, not views of `bytes`. */
export function readLlama2cCheckpoint(bytes: Uint8Array): DecoderModel {
  if (bytes.byteLength < HEADER_BYTES) {
    throw new CheckpointFormatError(
      `llama2.c checkpoint: expected at least ${HEADER_BYTES} bytes of header, got ${bytes.byteLength}; the file is truncated or not a checkpoint.`,
    );
  }
  const header = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  const [dim, hiddenDim, numLayers, numHeads, numKvHeads, signedVocab, seqLen] = Array.from({ length: 7 }, (_, i) =>
    header.getInt32(i * 4, true),
  ) as [number, number, number, number, number, number, number];
  const vocabSize = Math.abs(signedVocab);
  const shared = signedVocab > 0;

  const fields = { dim, hidden_dim: hiddenDim, n_layers: numLayers, n_heads: numHeads, n_kv_heads: numKvHeads, vocab_size: vocabSize, seq_len: seqLen };
  for (const [name, value] of Object.entries(fields)) {
    if (value <= 0) {
      throw new CheckpointFormatError(`llama2.c checkpoint: header field ${name} is ${value}, must be positive; the file is not a llama2.c checkpoint.`);
    }
  }
  if (dim % numHeads !== 0 || numHeads % numKvHeads !== 0) {
    throw new CheckpointFormatError(
      `llama2.c checkpoint: dim ${dim}, n_heads ${numHeads}, n_kv_heads ${numKvHeads} are inconsistent (dim must divide by n_heads, n_heads by n_kv_heads); the header is corrupt.`,
    );
  }
  const headDim = dim / numHeads;
  const kvDim = numKvHeads * headDim;

  const floatCount =
    vocabSize * dim +
    numLayers * (2 * dim + 2 * dim * dim + 2 * kvDim * dim + 3 * hiddenDim * dim) +
    dim +
    seqLen * headDim + // the two legacy RoPE tables, seqLen * headDim / 2 each
    (shared ? 0 : vocabSize * dim);
  const expectedBytes = HEADER_BYTES + floatCount * 4;
  if (bytes.byteLength !== expectedBytes) {
    throw new CheckpointFormatError(
      `llama2.c checkpoint: expected ${expectedBytes} bytes for dim ${dim}, hidden ${hiddenDim}, ${numLayers} layers, vocab ${vocabSize}, ` +
        `seq_len ${seqLen}${shared ? '' : ' with a separate classifier'}, got ${bytes.byteLength}; the file is ${bytes.byteLength < expectedBytes ? 'truncated' : 'too long'} or not in the legacy llama2.c layout.`,
    );
  }

  // Copy the float section once so it is 4-byte aligned, then cut it into arrays in order.
  const floats = new Float32Array(floatCount);
  new Uint8Array(floats.buffer).set(bytes.subarray(HEADER_BYTES));
  let cursor = 0;
  const take = (count: number): Float32Array => {
    const array = floats.subarray(cursor, cursor + count);
    cursor += count;
    return array;
  };
  /** One [L, ...] stack of per-layer arrays. */
  const takeLayers = (perLayer: number): Float32Array[] => Array.from({ length: numLayers }, () => take(perLayer));

  const embedTokens = take(vocabSize * dim);
  const rmsAtt = takeLayers(dim);
  const wq = takeLayers(dim * dim);
  const wk = takeLayers(kvDim * dim);
  const wv = takeLayers(kvDim * dim);
  const wo = takeLayers(dim * dim);
  const rmsFfn = takeLayers(dim);
  const w1 = takeLayers(hiddenDim * dim);
  const w2 = takeLayers(dim * hiddenDim);
  const w3 = takeLayers(hiddenDim * dim);
  const finalNorm = take(dim);
  take(seqLen * headDim); // freq_cis_real and freq_cis_imag, unused: RoPE is computed from theta.
  const lmHead = shared ? undefined : take(vocabSize * dim);

  const layers: DecoderLayerWeights[] = [];
  for (let l = 0; l < numLayers; l++) {
    layers.push({
      inputNorm: rmsAtt[l]!,
      q: wq[l]!,
      k: wk[l]!,
      v: wv[l]!,
      o: wo[l]!,
      postAttentionNorm: rmsFfn[l]!,
      gate: w1[l]!,
      up: w3[l]!,
      down: w2[l]!,
    });
  }

  const config: DecoderConfig = {
    architecture: 'llama',
    hiddenSize: dim,
    intermediateSize: hiddenDim,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    vocabSize,
    maxPositionEmbeddings: seqLen,
    ropeTheta: 10000,
    ropeLayout: 'interleaved',
    partialRotaryFactor: 1,
    rmsNormEps: 1e-5,
    tieWordEmbeddings: shared,
    attentionBias: false,
    bosTokenId: 1,
    eosTokenId: 2,
  };
  return { config, weights: { embedTokens, layers, finalNorm, ...(lmHead ? { lmHead } : {}) } };
}
