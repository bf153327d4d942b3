// Writes a decoder-only transformer (Llama or Qwen2) as an ONNX graph with the standard
// Hugging Face / onnx-community decoder signature:
//
//   inputs:  input_ids [batch, seq] int64, attention_mask [batch, past + seq] int64,
//            position_ids [batch, seq] int64,
//            past_key_values.{i}.key|value [batch, kv_heads, past, head_dim] (float32 or float16),
//            num_logits_to_keep [] int64 (k: logits of the last k positions only; 0: all)
//   outputs: logits [batch, k or seq, vocab] float32, and the cache rows in one of two forms
//            (keys with RoPE applied):
//            - 'new' (the default): new_key_values.{i}.key|value [batch, kv_heads, seq, head_dim],
//              the chunk's own rows only. The caller keeps the cache and may pass past rows it
//              has not filled yet (a buffer larger than the cache): attention_mask is 0 there.
//              Attention reads the past where it lies and never copies it: scores against the
//              past and against the chunk are computed apart, share one softmax, and the two
//              context products are added.
//            - 'present': present.{i}.key|value [batch, kv_heads, past + seq, head_dim], the
//              whole cache (past ++ new), as Hugging Face exports and transformers.js expect.
//              Every step copies the whole cache through a Concat and out of onnxruntime.
//
// The graph uses plain ONNX operators (opset 17) and, for quantized weights, onnxruntime's
// MatMulNBits. Attention is causal over cache rows: query i of a chunk sees the past rows
// whose mask is 1 and rows [0, i] of the chunk, whatever its position id, because under FreqKV
// a row's position is its slot in the cache, not its index in the text.

import type { DecoderModel } from './decoderWeights';
import { GraphBuilder, TensorType } from './onnxGraph';
import { quantizeInt4Nested, quantizeNBits, type NBitsWeight, type NestedInt4Weight, type WeightBits } from './quantize';
import { ropeInverseFrequencies } from '../engine/model/modelConfig';
import { LOGITS_TO_KEEP_INPUT } from '../engine/model/graphRewrite';

export type WeightFormat = 'float32' | 'int8' | 'int4';
export type KvCacheType = 'float32' | 'float16';

export interface DecoderGraphOptions {
  /** How the large matrices (attention, MLP, an untied classifier) are stored. */
  weights: WeightFormat;
  /** Element type of past_key_values / present (the graph computes in float32 either way). */
  kvCache: KvCacheType;
  /** Leave out the position_ids input (positions become past length + index, as some exports do). */
  omitPositionIds?: boolean;
  /** Block size along K for int8/int4 weights. */
  quantBlockSize?: number;
  /**
   * How MatMulNBits multiplies: 'int8' (accuracy_level 4: activations quantized to int8 per
   * block, integer dot products; the fast kernels) or 'float32' (accuracy_level 0: weights
   * dequantized, float32 arithmetic; exact against the oracle on the dequantized weights).
   */
  matMulAccuracy?: MatMulAccuracy;
  /**
   * With quantized weights and a tied classifier: how the classifier (and the embedding lookup,
   * which shares its packed weights through GatherBlockQuantized) is stored. Default: int8.
   * 'float32' keeps the float32 embedding for both, read whole by every decode step.
   */
  tiedClassifier?: WeightFormat;
  /** Which cache rows the graph outputs (see the top of this file). Default: 'new'. */
  kvOutputs?: KvOutputs;
  /**
   * int4 block scales of the layers' matrices: 'per-block' (max|w| / 7 of each block) or
   * 'nested' (whole multiples of one unit per row, so the matrix is exactly int8 values with a
   * row scale; quantize.ts quantizeInt4Nested). A decode graph and its prefill graph are both
   * built 'nested' so that they hold the same weights.
   */
  int4Scales?: Int4Scales;
  /**
   * How the layers' linear maps multiply: 'MatMulNBits' (the int4 weights as stored) or
   * 'int8-gemm' (the nested int4 weights in their int8 form, through DynamicQuantizeMatMul,
   * each activation row quantized to 8 bits on its own scale). The integer GEMM is 2–3× as fast
   * on a prefill chunk and slower on one token, so it serves the prefill graph
   * (model_prefill.onnx).
   * 'int8-gemm' needs int4 weights with 'nested' scales.
   */
  linearKernel?: LinearKernel;
  /**
   * Return the dequantized weights as the effective model (the default; the oracle tests run
   * it). false returns the weights as given, so a second graph of one model (the prefill
   * graph) does not hold another float32 copy of every matrix while it is built.
   */
  effectiveWeights?: boolean;
  /**
   * RoPE as onnxruntime's RotaryEmbedding (com.microsoft; 'fused', the default: one node per
   * projection instead of about nine) or written out in plain ONNX operators ('onnx').
   */
  rotary?: 'fused' | 'onnx';
}

export type Int4Scales = 'per-block' | 'nested';
export type LinearKernel = 'MatMulNBits' | 'int8-gemm';

export type KvOutputs = 'new' | 'present';
export const KV_OUTPUTS: readonly KvOutputs[] = ['new', 'present'];

export type MatMulAccuracy = 'int8' | 'float32';

/** MatMulNBits' accuracy_level for each arithmetic (onnxruntime: 0 unset/float32, 4 int8). */
export const ACCURACY_LEVEL: Record<MatMulAccuracy, number> = { float32: 0, int8: 4 };

/** Negative bias that masks a score; large but finite so a fully masked row stays finite. */
const MASKED = -1e9;

/**
 * Builds the graph. Returns the builder (ready to save) and, for quantized weights, the
 * model with the dequantized matrices the runtime will actually use (for the test oracle).
 */
export function buildDecoderGraph(model: DecoderModel, options: DecoderGraphOptions): { graph: GraphBuilder; effectiveModel: DecoderModel } {
  const { config, weights } = model;
  const g = new GraphBuilder(`${config.architecture}-decoder`);
  const H = config.hiddenSize;
  const nh = config.numHeads;
  const kvh = config.numKvHeads;
  const hd = config.headDim;
  const groups = nh / kvh;
  if (!Number.isInteger(groups)) throw new Error(`numHeads ${nh} is not a multiple of numKvHeads ${kvh}`);
  const kvType = options.kvCache === 'float16' ? TensorType.FLOAT16 : TensorType.FLOAT;
  const effective: DecoderModel = { config, weights: { ...weights, layers: weights.layers.map((l) => ({ ...l })) } };
  const accuracyLevel = ACCURACY_LEVEL[options.matMulAccuracy ?? 'int8'];
  const nestedScales = options.int4Scales === 'nested';
  const keepEffective = options.effectiveWeights !== false;
  const integerGemm = options.linearKernel === 'int8-gemm';
  if (integerGemm && (options.weights !== 'int4' || !nestedScales)) {
    throw new Error("linearKernel 'int8-gemm' needs int4 weights with nested scales (int4Scales: 'nested')");
  }

  // ---- inputs ----------------------------------------------------------------------------
  const inputIds = g.input('input_ids', TensorType.INT64, ['batch_size', 'sequence_length']);
  const attentionMask = g.input('attention_mask', TensorType.INT64, ['batch_size', 'total_sequence_length']);
  let positionIds: string;
  if (options.omitPositionIds) {
    // Positions are past + [0, seq): the exports without position_ids behave this way. With
    // 'new' outputs the past may hold unused (masked) rows, so past counts the mask's ones.
    const total = g.op('Gather', [g.op('Shape', [attentionMask]), g.int64Scalar(1)], { axis: 0 });
    const seq = g.op('Gather', [g.op('Shape', [inputIds]), g.int64Scalar(1)], { axis: 0 });
    let past = g.op('Sub', [total, seq]);
    if ((options.kvOutputs ?? 'new') === 'new') {
      const pastMask = g.op('Slice', [attentionMask, g.int64s([0]), g.op('Unsqueeze', [past, g.int64s([0])]), g.int64s([1])]);
      past = g.op('ReduceSum', [g.op('Gather', [pastMask, g.int64Scalar(0)], { axis: 0 })], { keepdims: 0 });
    }
    positionIds = g.op('Unsqueeze', [g.op('Range', [past, g.op('Add', [past, seq]), g.int64Scalar(1)]), g.int64s([0])]);
  } else {
    positionIds = g.input('position_ids', TensorType.INT64, ['batch_size', 'sequence_length']);
  }
  const pastKeys: string[] = [];
  const pastValues: string[] = [];
  for (let i = 0; i < config.numLayers; i++) {
    pastKeys.push(g.input(`past_key_values.${i}.key`, kvType, ['batch_size', kvh, 'past_sequence_length', hd]));
    pastValues.push(g.input(`past_key_values.${i}.value`, kvType, ['batch_size', kvh, 'past_sequence_length', hd]));
  }
  const logitsToKeep = g.input(LOGITS_TO_KEEP_INPUT, TensorType.INT64, []);

  // ---- shared per-call tensors: rotary cos/sin and the attention bias ----------------------
  const invFreq = ropeInverseFrequencies(config); // [rotaryDim / 2]
  const halfRotary = invFreq.length;
  const rotaryDim = 2 * halfRotary;
  const invFreqName = g.float('rope.inv_freq', [halfRotary], Float32Array.from(invFreq));
  // freqs [B, S, R/2] = position [B, S, 1] · inv_freq [R/2]
  const freqs = g.op('Mul', [g.op('Unsqueeze', [g.op('Cast', [positionIds], { to: TensorType.FLOAT }), g.int64s([2])]), invFreqName]);
  const fusedRotary = (options.rotary ?? 'fused') === 'fused';
  // Written out: broadcast over heads in the [B, S, heads, ...] layout, [B, S, 1, R/2].
  const cos = fusedRotary ? '' : g.op('Unsqueeze', [g.op('Cos', [freqs]), g.int64s([2])]);
  const sin = fusedRotary ? '' : g.op('Unsqueeze', [g.op('Sin', [freqs]), g.int64s([2])]);
  // For interleaved pairs the rotation acts on [..., R/2, 2]: cos/sin get a trailing axis.
  const cosPairs = fusedRotary ? '' : g.op('Unsqueeze', [cos, g.int64s([-1])]);
  const sinPairs = fusedRotary ? '' : g.op('Unsqueeze', [sin, g.int64s([-1])]);
  // For onnxruntime's RotaryEmbedding (com.microsoft): this call's cos/sin as tables of B·S rows
  // [B·S, R/2], and each token's own row as its "position" [B, S] (the table already holds the
  // angle of its position id, whatever it is).
  const cosTable = fusedRotary ? g.op('Reshape', [g.op('Cos', [freqs]), g.int64s([-1, halfRotary])]) : '';
  const sinTable = fusedRotary ? g.op('Reshape', [g.op('Sin', [freqs]), g.int64s([-1, halfRotary])]) : '';
  const tableRows = fusedRotary
    ? g.op('Reshape', [g.op('Range', [g.int64Scalar(0), g.op('ReduceProd', [g.op('Shape', [inputIds])], { keepdims: 0 }), g.int64Scalar(1)]), g.op('Shape', [inputIds])])
    : '';

  // Causal bias over cache rows. Query s of the chunk sees the past rows whose mask is 1 and
  // the chunk's rows j <= s whose mask is 1. Rows are ordered (group, s): [B, 1, groups·S, ·].
  const kvOutputs = options.kvOutputs ?? 'new';
  const totalLen = g.op('Gather', [g.op('Shape', [attentionMask]), g.int64Scalar(1)], { axis: 0 });
  const seqLen = g.op('Gather', [g.op('Shape', [inputIds]), g.int64Scalar(1)], { axis: 0 });
  const pastLen = g.op('Sub', [totalLen, seqLen]);
  const maskAllowed = g.op('Unsqueeze', [g.op('Cast', [attentionMask], { to: TensorType.BOOL }), g.int64s([1, 2])]); // [B, 1, 1, T]
  const biasOf = (allowed: string): string => g.op('Where', [allowed, g.floatScalar(0), g.floatScalar(MASKED)]);
  const tileGroups = (b: string): string => (groups > 1 ? g.op('Tile', [b, g.int64s([1, 1, groups, 1])]) : b);
  const toOneD = (scalar: string): string => g.op('Unsqueeze', [scalar, g.int64s([0])]);
  let bias = '';
  let biasPast = '';
  let biasNew = '';
  let pastAndNew = '';
  if (kvOutputs === 'present') {
    const rowIndex = g.op('Unsqueeze', [g.op('Range', [g.int64Scalar(0), totalLen, g.int64Scalar(1)]), g.int64s([0])]); // [1, T]
    const queryRow = g.op('Unsqueeze', [g.op('Range', [pastLen, totalLen, g.int64Scalar(1)]), g.int64s([1])]); // [S, 1]
    bias = tileGroups(biasOf(g.op('And', [maskAllowed, g.op('LessOrEqual', [rowIndex, queryRow])]))); // [B, 1, groups·S, T]
  } else {
    // Past: the mask alone, broadcast over the query rows: [B, 1, 1, P].
    biasPast = biasOf(g.op('Slice', [maskAllowed, g.int64s([0]), toOneD(pastLen), g.int64s([3])]));
    // Chunk: causal within the chunk and the mask: [B, 1, groups·S, S].
    const chunkIndex = g.op('Range', [g.int64Scalar(0), seqLen, g.int64Scalar(1)]);
    const causal = g.op('LessOrEqual', [g.op('Unsqueeze', [chunkIndex, g.int64s([0])]), g.op('Unsqueeze', [chunkIndex, g.int64s([1])])]); // [S, S]
    biasNew = tileGroups(biasOf(g.op('And', [g.op('Slice', [maskAllowed, toOneD(pastLen), toOneD(totalLen), g.int64s([3])]), causal])));
    pastAndNew = g.op('Concat', [toOneD(pastLen), toOneD(seqLen)], { axis: 0 }); // the softmax's split
  }

  // ---- weights ---------------------------------------------------------------------------
  /** x [..., in] · Wᵀ where W is [out, in] (+ bias [out]). */
  const linear = (x: string, name: string, w: Float32Array, out: number, inn: number, b?: Float32Array): { y: string; used: Float32Array } => {
    let y: string;
    let used = w;
    if (options.weights === 'float32') {
      y = g.op('MatMul', [x, g.float(`${name}.weight`, [inn, out], transpose(w, out, inn))]);
    } else if (options.weights === 'int4' && nestedScales) {
      const q = quantizeInt4Nested(w, out, inn, options.quantBlockSize ?? 32);
      used = q.dequantized;
      y = integerGemm ? int8Gemm(x, name, q) : matMulNBits(x, storeNBits(name, q));
    } else {
      const q = quantizedMatrix(name, w, out, inn, options.weights);
      used = q.dequantized;
      y = matMulNBits(x, q);
    }
    if (b) y = g.op('Add', [y, g.float(`${name}.bias`, [out], b)]);
    return { y, used: keepEffective ? used : w };
  };
  /**
   * x [..., K] · Wᵀ through onnxruntime's DynamicQuantizeMatMul (an integer GEMM with the
   * activations quantized to uint8 on one scale per tensor) on the nested int4 matrix in its
   * int8 form ([K, N], with W's row units as per-column scales). Each row of x is divided by
   * its own max |x| first and the product multiplied back, so the quantization is in effect one
   * scale per row: an outlier token (massive activations) cannot flatten the other tokens of the
   * chunk to zero. One normalized x serves every part of a fused projection.
   */
  const int8Gemm = (x: string, name: string, q: NestedInt4Weight): string => {
    let rows = normalizedRows.get(x);
    if (!rows) {
      const rowMax = g.op('Max', [g.op('ReduceMax', [g.op('Abs', [x])], { axes: [-1], keepdims: 1 }), g.floatScalar(1e-30)]);
      rows = { normalized: g.op('Div', [x, rowMax]), rowMax };
      normalizedRows.set(x, rows);
    }
    const weightsKN = new Int8Array(q.k * q.n);
    for (let r = 0; r < q.n; r++) for (let c = 0; c < q.k; c++) weightsKN[c * q.n + r] = q.int8[r * q.k + c]!;
    const b = g.initializer(`${name}.weight_i8`, TensorType.INT8, [q.k, q.n], new Uint8Array(weightsKN.buffer));
    const units = g.float(`${name}.weight_row_units`, [q.n], q.rowScales);
    return g.op('Mul', [g.op('DynamicQuantizeMatMul', [rows.normalized, b, units], {}, 'com.microsoft'), rows.rowMax]);
  };
  const normalizedRows = new Map<string, { normalized: string; rowMax: string }>();
  /**
   * Several projections of one input as one matrix (their rows stacked: W [Σ out, in]) and one
   * multiplication, split after: one MatMulNBits quantizes its input once and reads the weights
   * in one pass. Quantization blocks run along a row, so each part is quantized as it would be
   * alone. Returns each part's output and the weights the runtime uses for it.
   */
  const linears = (x: string, name: string, parts: { w: Float32Array; out: number; b?: Float32Array }[], inn: number): { y: string; used: Float32Array }[] => {
    const total = parts.reduce((sum, part) => sum + part.out, 0);
    const w = new Float32Array(total * inn);
    const hasBias = parts.some((part) => part.b);
    const b = hasBias ? new Float32Array(total) : undefined;
    let row = 0;
    for (const part of parts) {
      w.set(part.w, row * inn);
      if (part.b) b!.set(part.b, row);
      row += part.out;
    }
    const fused = linear(x, name, w, total, inn, b);
    const ys = g.node('Split', [fused.y, g.int64s(parts.map((part) => part.out))], { axis: -1 }, parts.length);
    row = 0;
    return parts.map((part, i) => {
      const used = keepEffective ? fused.used.subarray(row * inn, (row + part.out) * inn) : part.w;
      row += part.out;
      return { y: ys[i]!, used };
    });
  };
  /** Quantizes W [out, in] and stores it in MatMulNBits' layout. */
  const quantizedMatrix = (name: string, w: Float32Array, out: number, inn: number, format: WeightFormat): QuantizedInitializer => {
    const bits: WeightBits = format === 'int8' ? 8 : 4;
    return storeNBits(name, quantizeNBits(w, out, inn, bits, options.quantBlockSize ?? 32));
  };
  const storeNBits = (name: string, q: NBitsWeight): QuantizedInitializer => {
    const { bits, n: out } = q;
    const packed = g.initializer(`${name}.weight_q${bits}`, TensorType.UINT8, [out, q.kBlocks, (q.blockSize * bits) / 8], q.packed);
    const scales = g.float(`${name}.weight_scales`, [out * q.kBlocks], q.scales);
    return { ...q, packedName: packed, scalesName: scales };
  };
  const matMulNBits = (x: string, q: QuantizedInitializer): string =>
    g.op('MatMulNBits', [x, q.packedName, q.scalesName], { K: q.k, N: q.n, bits: q.bits, block_size: q.blockSize, accuracy_level: accuracyLevel }, 'com.microsoft');
  // x / sqrt(mean(x²) + eps) · w, written as the pattern onnxruntime fuses into one
  // SimplifiedLayerNormalization (Pow, ReduceMean, Add, Sqrt, Div, Mul).
  const rmsNorm = (x: string, name: string, w: Float32Array): string => {
    const meanSquare = g.op('ReduceMean', [g.op('Pow', [x, g.floatScalar(2)])], { axes: [-1], keepdims: 1 });
    const rms = g.op('Sqrt', [g.op('Add', [meanSquare, g.floatScalar(config.rmsNormEps)])]);
    return g.op('Mul', [g.op('Div', [x, rms]), g.float(`${name}.weight`, [H], w)]);
  };
  /** RoPE on x [B, S, heads · hd] through onnxruntime's RotaryEmbedding. */
  const rotaryOp = (x: string, heads: number): string =>
    g.op(
      'RotaryEmbedding',
      [x, tableRows, cosTable, sinTable],
      { interleaved: config.ropeLayout === 'interleaved' ? 1 : 0, num_heads: heads, rotary_embedding_dim: rotaryDim },
      'com.microsoft',
    );
  /** RoPE on x [B, S, heads, hd] by the shared cos/sin, in the model's pair layout. */
  const rotary = (x: string): string => {
    let rot = x;
    let pass: string | undefined;
    if (rotaryDim < hd) {
      [rot, pass] = g.node('Split', [x, g.int64s([rotaryDim, hd - rotaryDim])], { axis: -1 }, 2) as [string, string];
    }
    let rotated: string;
    if (config.ropeLayout === 'interleaved') {
      // Pairs (2i, 2i+1): view as [..., R/2, 2].
      const pairs = g.op('Reshape', [rot, g.int64s([0, 0, 0, halfRotary, 2])]);
      const [even, odd] = g.node('Split', [pairs, g.int64s([1, 1])], { axis: -1 }, 2) as [string, string];
      const outEven = g.op('Sub', [g.op('Mul', [even, cosPairs]), g.op('Mul', [odd, sinPairs])]);
      const outOdd = g.op('Add', [g.op('Mul', [odd, cosPairs]), g.op('Mul', [even, sinPairs])]);
      rotated = g.op('Reshape', [g.op('Concat', [outEven, outOdd], { axis: -1 }), g.int64s([0, 0, 0, rotaryDim])]);
    } else {
      // Pairs (i, i + R/2): the rotate-half layout of Hugging Face models.
      const [x1, x2] = g.node('Split', [rot, g.int64s([halfRotary, halfRotary])], { axis: -1 }, 2) as [string, string];
      const out1 = g.op('Sub', [g.op('Mul', [x1, cos]), g.op('Mul', [x2, sin])]);
      const out2 = g.op('Add', [g.op('Mul', [x2, cos]), g.op('Mul', [x1, sin])]);
      rotated = g.op('Concat', [out1, out2], { axis: -1 });
    }
    return pass ? g.op('Concat', [rotated, pass], { axis: -1 }) : rotated;
  };

  // ---- the layers ------------------------------------------------------------------------
  const tied = config.tieWordEmbeddings || !weights.lmHead;
  const tiedFormat = options.weights === 'float32' ? 'float32' : (options.tiedClassifier ?? 'int8');
  let embedding: string | undefined;
  let tiedQuantized: QuantizedInitializer | undefined;
  let hidden: string;
  if (tied && tiedFormat !== 'float32') {
    // One quantized copy of the tied matrix serves the classifier (MatMulNBits) and the lookup:
    // GatherBlockQuantized reads MatMulNBits' [vocab, kBlocks, blob] bytes as they are, one
    // quantization block per row of the last axis, with the same default zero point.
    tiedQuantized = quantizedMatrix('model.embed_tokens', weights.embedTokens, config.vocabSize, H, tiedFormat);
    if (keepEffective) effective.weights.embedTokens = tiedQuantized.dequantized;
    const gatherScales = g.float('model.embed_tokens.gather_scales', [config.vocabSize, tiedQuantized.kBlocks, 1], tiedQuantized.scales);
    const rows = g.op(
      'GatherBlockQuantized',
      [tiedQuantized.packedName, inputIds, gatherScales],
      { gather_axis: 0, quantize_axis: 2, block_size: tiedQuantized.blockSize, bits: tiedQuantized.bits },
      'com.microsoft',
    ); // [B, S, kBlocks, blockSize]
    hidden = g.op('Reshape', [rows, g.int64s([0, 0, tiedQuantized.kBlocks * tiedQuantized.blockSize])]);
    if (tiedQuantized.kBlocks * tiedQuantized.blockSize !== H) {
      hidden = g.op('Slice', [hidden, g.int64s([0]), g.int64s([H]), g.int64s([2])]);
    }
  } else {
    embedding = g.float('model.embed_tokens.weight', [config.vocabSize, H], weights.embedTokens);
    hidden = g.op('Gather', [embedding, inputIds], { axis: 0 }); // [B, S, H]
  }
  const queryScale = g.floatScalar(1 / Math.sqrt(hd));

  weights.layers.forEach((layer, i) => {
    const p = `model.layers.${i}`;
    const eff = effective.weights.layers[i]!;
    const x = rmsNorm(hidden, `${p}.input_layernorm`, layer.inputNorm);
    const [q, k, v] = linears(
      x,
      `${p}.self_attn.qkv_proj`,
      [
        { w: layer.q, out: nh * hd, b: layer.qBias },
        { w: layer.k, out: kvh * hd, b: layer.kBias },
        { w: layer.v, out: kvh * hd, b: layer.vBias },
      ],
      H,
    ) as [Projection, Projection, Projection];
    eff.q = q.used;
    eff.k = k.used;
    eff.v = v.used;

    // q: [B, S, nh·hd] → [B, S, nh, hd] → RoPE → scale → [B, S, kvh, groups, hd]
    //    → [B, kvh, groups, S, hd] → [B, kvh, groups·S, hd]: each kv head's query heads
    //    stacked along the row axis, so keys and values are never repeated.
    const qRot = g.op('Mul', [fusedRotary ? rotaryOp(q.y, nh) : rotary(g.op('Reshape', [q.y, g.int64s([0, 0, nh, hd])])), queryScale]);
    const qGrouped = g.op('Reshape', [
      g.op('Transpose', [g.op('Reshape', [qRot, g.int64s([0, 0, kvh, groups, hd])])], { perm: [0, 2, 3, 1, 4] }),
      g.int64s([0, kvh, -1, hd]),
    ]);
    // k, v: [B, S, kvh·hd] → [B, kvh, S, hd]; present = past ++ new along the row axis.
    const kRot = fusedRotary ? g.op('Reshape', [rotaryOp(k.y, kvh), g.int64s([0, 0, kvh, hd])]) : rotary(g.op('Reshape', [k.y, g.int64s([0, 0, kvh, hd])]));
    const kNew = g.op('Transpose', [kRot], { perm: [0, 2, 1, 3] });
    const vNew = g.op('Transpose', [g.op('Reshape', [v.y, g.int64s([0, 0, kvh, hd])])], { perm: [0, 2, 1, 3] });
    let pastK = pastKeys[i]!;
    let pastV = pastValues[i]!;
    if (kvType === TensorType.FLOAT16) {
      pastK = g.op('Cast', [pastK], { to: TensorType.FLOAT });
      pastV = g.op('Cast', [pastV], { to: TensorType.FLOAT });
    }
    const cacheOutput = (name: string, rows: string): void => {
      if (kvType === TensorType.FLOAT16) g.opNamed(name, 'Cast', [rows], { to: TensorType.FLOAT16 });
      else g.opNamed(name, 'Identity', [rows]);
    };
    const scoresAgainst = (keys: string): string => g.op('MatMul', [qGrouped, g.op('Transpose', [keys], { perm: [0, 1, 3, 2] })]);
    let context: string; // [B, kvh, groups·S, hd]
    if (kvOutputs === 'present') {
      const keys = g.op('Concat', [pastK, kNew], { axis: 2 }); // [B, kvh, T, hd]
      const values = g.op('Concat', [pastV, vNew], { axis: 2 });
      cacheOutput(`present.${i}.key`, keys);
      cacheOutput(`present.${i}.value`, values);
      // scores [B, kvh, groups·S, T] + bias → softmax → · values [B, kvh, T, hd]
      context = g.op('MatMul', [g.op('Softmax', [g.op('Add', [scoresAgainst(keys), bias])], { axis: -1 }), values]);
    } else {
      cacheOutput(`new_key_values.${i}.key`, kNew);
      cacheOutput(`new_key_values.${i}.value`, vNew);
      // One softmax over [past scores | chunk scores], then probabilities · rows of each part.
      const scores = g.op('Concat', [g.op('Add', [scoresAgainst(pastK), biasPast]), g.op('Add', [scoresAgainst(kNew), biasNew])], { axis: -1 });
      const [pPast, pNew] = g.node('Split', [g.op('Softmax', [scores], { axis: -1 }), pastAndNew], { axis: -1 }, 2) as [string, string];
      context = g.op('Add', [g.op('MatMul', [pPast, pastV]), g.op('MatMul', [pNew, vNew])]);
    }
    // Back to [B, S, nh·hd] with heads in their original order (kv head major, group minor).
    const merged = g.op('Reshape', [
      g.op('Transpose', [g.op('Reshape', [context, g.int64s([0, kvh, groups, -1, hd])])], { perm: [0, 3, 1, 2, 4] }),
      g.int64s([0, 0, nh * hd]),
    ]);
    const o = linear(merged, `${p}.self_attn.o_proj`, layer.o, H, nh * hd);
    eff.o = o.used;
    hidden = g.op('Add', [hidden, o.y]);

    // SwiGLU MLP: down(silu(gate(x)) · up(x)).
    const x2 = rmsNorm(hidden, `${p}.post_attention_layernorm`, layer.postAttentionNorm);
    const I = config.intermediateSize;
    const [gate, up] = linears(x2, `${p}.mlp.gate_up_proj`, [{ w: layer.gate, out: I }, { w: layer.up, out: I }], H) as [Projection, Projection];
    const act = g.op('Mul', [g.op('Mul', [gate.y, g.op('Sigmoid', [gate.y])]), up.y]);
    const down = linear(act, `${p}.mlp.down_proj`, layer.down, H, I);
    eff.gate = gate.used;
    eff.up = up.used;
    eff.down = down.used;
    hidden = g.op('Add', [hidden, down.y]);
  });

  // Only the last k positions reach the classifier (k = 0: all): generation reads one row,
  // scoring reads every row. Slice from −k clamps to the whole sequence when k ≥ seq.
  const kept = g.op('Slice', [hidden, g.op('Neg', [g.op('Unsqueeze', [logitsToKeep, g.int64s([0])])]), g.int64s([Number.MAX_SAFE_INTEGER]), g.int64s([1])]);
  const normed = rmsNorm(kept, 'model.norm', weights.finalNorm);
  if (tiedQuantized) {
    g.opNamed('logits', 'Identity', [matMulNBits(normed, tiedQuantized)]);
  } else if (tied) {
    // Tied classifier: logits = x · Eᵀ with the embedding itself ([vocab, H]), through Gemm
    // on a 2-D view so the embedding is stored once.
    const flat = g.op('Reshape', [normed, g.int64s([-1, H])]);
    const keptShape = g.op('Shape', [normed], { end: 2 });
    const logitsShape = g.op('Concat', [keptShape, g.int64s([config.vocabSize])], { axis: 0 });
    g.opNamed('logits', 'Reshape', [g.op('Gemm', [flat, embedding!], { transB: 1 }), logitsShape]);
  } else {
    const head = linear(normed, 'lm_head', weights.lmHead!, config.vocabSize, H);
    effective.weights.lmHead = head.used;
    g.opNamed('logits', 'Identity', [head.y]);
  }

  g.output('logits', TensorType.FLOAT, ['batch_size', 'logits_length', config.vocabSize]);
  const [cacheName, cacheRows] = kvOutputs === 'present' ? ['present', 'total_sequence_length'] : ['new_key_values', 'sequence_length'];
  for (let i = 0; i < config.numLayers; i++) {
    g.output(`${cacheName}.${i}.key`, kvType, ['batch_size', kvh, cacheRows, hd]);
    g.output(`${cacheName}.${i}.value`, kvType, ['batch_size', kvh, cacheRows, hd]);
  }
  return { graph: g, effectiveModel: effective };
}

interface Projection {
  y: string;
  used: Float32Array;
}

interface QuantizedInitializer extends NBitsWeight {
  packedName: string;
  scalesName: string;
}

/** W [rows, cols] → Wᵀ [cols, rows]. */
function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c] as number;
  }
  return out;
}
