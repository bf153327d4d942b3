// Writes a decoder (the builder's DecoderModel: the same weights the ONNX folder is built from)
// as a GGUF file that llama.cpp loads, so the speed benchmark can run llama.cpp on exactly our
// model. GGUF (version 3, little-endian): magic "GGUF", version, tensor count, metadata count;
// the metadata (key, type, value); one info per tensor (name, dims innermost first, ggml type,
// offset in the data section); then the tensor data, every part aligned to 32 bytes.
//
// Tensor names and metadata follow llama.cpp's `llama` and `qwen2` architectures (the names its
// convert_hf_to_gguf.py writes). Matrices keep the Hugging Face row-major [out, in] bytes, which
// is ggml's [in, out] (ne0 = in). llama.cpp runs `qwen2` with rotate-half (NeoX) RoPE, as
// Hugging Face does, so Qwen2 weights go in as they are; its `llama` architecture rotates
// interleaved pairs, so a rotate-half Llama's q and k rows are permuted the way
// convert_hf_to_gguf.py permutes them.
//
// The tokenizer section is llama.cpp's byte-level BPE ("gpt2"): every token of tokenizer.json's
// vocabulary and added tokens by id (padded to the model's vocabulary with unused [PADn]
// tokens, as convert_hf_to_gguf.py does), their types, the merges and the special token ids.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DecoderModel } from './decoderWeights';
import type { TokenizerFiles } from './modelFolderWriter';
import { ModelFolderError } from './errors';

/** How the matrices are stored: f32 and f16 for checking against our engine, q4_0 for speed. Norms and biases are always f32. */
export type GgufTensorType = 'f32' | 'f16' | 'q4_0';
export const GGUF_TENSOR_TYPES: readonly GgufTensorType[] = ['f32', 'f16', 'q4_0'];

const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const GGUF_VERSION = 3;
const ALIGNMENT = 32;
/** ggml_type numbers. */
const GGML_TYPE = { f32: 0, f16: 1, q4_0: 2 } as const;
/** llama_ftype numbers for general.file_type. */
const FILE_TYPE = { f32: 0, f16: 1, q4_0: 2 } as const;
/** gguf_type numbers of metadata values. */
const enum ValueType {
  Uint32 = 4,
  Int32 = 5,
  Float32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
}
/** llama.cpp's token types. */
const TOKEN_TYPE = { normal: 1, control: 3, userDefined: 4, unused: 5 } as const;
const Q4_0_BLOCK = 32;
const Q4_0_BLOCK_BYTES = 2 + Q4_0_BLOCK / 2;

type MetadataValue =
  | { type: ValueType.Uint32 | ValueType.Int32 | ValueType.Float32; value: number }
  | { type: ValueType.Bool; value: boolean }
  | { type: ValueType.String; value: string }
  | { type: ValueType.Array; itemType: ValueType.String; value: readonly string[] }
  | { type: ValueType.Array; itemType: ValueType.Int32; value: readonly number[] };

interface TensorEntry {
  name: string;
  /** ggml dims, innermost (contiguous) first. */
  dims: number[];
  type: GgufTensorType;
  data: Float32Array;
}

const u32 = (value: number): MetadataValue => ({ type: ValueType.Uint32, value });
const f32 = (value: number): MetadataValue => ({ type: ValueType.Float32, value });
const str = (value: string): MetadataValue => ({ type: ValueType.String, value });

// ---------------------------------------------------------------------------------------------
// Quantization

/** IEEE half from a float, rounding to nearest even (as ggml's GGML_FP32_TO_FP16). */
export function float32ToFloat16(value: number): number {
  const f = new Float32Array([value]);
  const bits = new Uint32Array(f.buffer)[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  let e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let rounded = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    if (rest > half || (rest === half && rounded & 1)) rounded++;
    return sign | rounded;
  }
  let rounded = mantissa >>> 13;
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && rounded & 1)) {
    rounded++;
    if (rounded === 0x400) {
      rounded = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | rounded;
}

/** The float a half stands for. */
export function float16ToFloat32(half: number): number {
  const sign = half & 0x8000 ? -1 : 1;
  const exponent = (half >>> 10) & 0x1f;
  const mantissa = half & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/**
 * ggml's Q4_0 (quantize_row_q4_0_ref): blocks of 32 values as {f16 d; u8 qs[16]}, where d is the
 * block's value of largest magnitude divided by −8, each value is round-down(x / d + 8.5) clamped
 * to 15, the first 16 values in the low nibbles and the last 16 in the high nibbles.
 */
export function quantizeQ4_0(values: Float32Array): Uint8Array {
  if (values.length % Q4_0_BLOCK !== 0) throw new RangeError(`quantizeQ4_0: ${values.length} values is not a multiple of ${Q4_0_BLOCK}`);
  const blocks = values.length / Q4_0_BLOCK;
  const out = new Uint8Array(blocks * Q4_0_BLOCK_BYTES);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    const base = b * Q4_0_BLOCK;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < Q4_0_BLOCK; j++) {
      const v = values[base + j]!;
      if (Math.abs(v) > amax) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = Math.fround(max / -8);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const at = b * Q4_0_BLOCK_BYTES;
    view.setUint16(at, float32ToFloat16(d), true);
    for (let j = 0; j < Q4_0_BLOCK / 2; j++) {
      const x0 = Math.fround(Math.fround(values[base + j]! * id) + 8.5);
      const x1 = Math.fround(Math.fround(values[base + j + Q4_0_BLOCK / 2]! * id) + 8.5);
      const q0 = Math.min(15, Math.trunc(x0));
      const q1 = Math.min(15, Math.trunc(x1));
      out[at + 2 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}

/** Q4_0 blocks back to floats (ggml's dequantize_row_q4_0), for checks. */
export function dequantizeQ4_0(bytes: Uint8Array): Float32Array {
  const blocks = bytes.length / Q4_0_BLOCK_BYTES;
  const out = new Float32Array(blocks * Q4_0_BLOCK);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0; b < blocks; b++) {
    const at = b * Q4_0_BLOCK_BYTES;
    const d = float16ToFloat32(view.getUint16(at, true));
    for (let j = 0; j < Q4_0_BLOCK / 2; j++) {
      const q = bytes[at + 2 + j]!;
      out[b * Q4_0_BLOCK + j] = ((q & 0x0f) - 8) * d;
      out[b * Q4_0_BLOCK + j + Q4_0_BLOCK / 2] = ((q >> 4) - 8) * d;
    }
  }
  return out;
}

function tensorBytes(tensor: TensorEntry): Uint8Array {
  switch (tensor.type) {
    case 'f32':
      return new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
    case 'f16': {
      const halves = new Uint16Array(tensor.data.length);
      for (let i = 0; i < halves.length; i++) halves[i] = float32ToFloat16(tensor.data[i]!);
      return new Uint8Array(halves.buffer);
    }
    case 'q4_0':
      return quantizeQ4_0(tensor.data);
  }
}

function tensorByteLength(tensor: TensorEntry): number {
  const elements = tensor.data.length;
  return tensor.type === 'f32' ? elements * 4 : tensor.type === 'f16' ? elements * 2 : (elements / Q4_0_BLOCK) * Q4_0_BLOCK_BYTES;
}

// ---------------------------------------------------------------------------------------------
// Tensors and metadata of a decoder

/** Llama's q/k rows reordered from rotate-half to interleaved pairs (convert_hf_to_gguf.py's permute). */
function permuteForInterleavedRope(weight: Float32Array, heads: number, headDim: number, columns: number): Float32Array {
  const out = new Float32Array(weight.length);
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (const [from, to] of [
        [i, 2 * i],
        [half + i, 2 * i + 1],
      ] as const) {
        out.set(weight.subarray((h * headDim + from) * columns, (h * headDim + from + 1) * columns), (h * headDim + to) * columns);
      }
    }
  }
  return out;
}

function decoderTensors(model: DecoderModel, matrixType: GgufTensorType): TensorEntry[] {
  const { config, weights } = model;
  const { hiddenSize: H, intermediateSize: I, numHeads, numKvHeads, headDim, vocabSize } = config;
  if (matrixType === 'q4_0') {
    for (const [name, size] of [
      ['hidden_size', H],
      ['intermediate_size', I],
      ['num_heads × head_dim', numHeads * headDim],
    ] as const) {
      if (size % Q4_0_BLOCK !== 0) throw new ModelFolderError(`Q4_0 needs every matrix's input size to be a multiple of ${Q4_0_BLOCK}; ${name} is ${size}. Use --gguf-type f16 or f32.`);
    }
  }
  const permuteQk = config.architecture === 'llama' && config.ropeLayout === 'rotate-half';
  const matrix = (name: string, data: Float32Array, rows: number, cols: number): TensorEntry => ({ name, dims: [cols, rows], type: matrixType, data });
  const vector = (name: string, data: Float32Array): TensorEntry => ({ name, dims: [data.length], type: 'f32', data });
  const tensors: TensorEntry[] = [matrix('token_embd.weight', weights.embedTokens, vocabSize, H)];
  weights.layers.forEach((layer, l) => {
    const blk = `blk.${l}`;
    const q = permuteQk ? permuteForInterleavedRope(layer.q, numHeads, headDim, H) : layer.q;
    const k = permuteQk ? permuteForInterleavedRope(layer.k, numKvHeads, headDim, H) : layer.k;
    tensors.push(vector(`${blk}.attn_norm.weight`, layer.inputNorm));
    tensors.push(matrix(`${blk}.attn_q.weight`, q, numHeads * headDim, H));
    tensors.push(matrix(`${blk}.attn_k.weight`, k, numKvHeads * headDim, H));
    tensors.push(matrix(`${blk}.attn_v.weight`, layer.v, numKvHeads * headDim, H));
    if (layer.qBias) tensors.push(vector(`${blk}.attn_q.bias`, permuteQk ? permuteForInterleavedRope(layer.qBias, numHeads, headDim, 1) : layer.qBias));
    if (layer.kBias) tensors.push(vector(`${blk}.attn_k.bias`, permuteQk ? permuteForInterleavedRope(layer.kBias, numKvHeads, headDim, 1) : layer.kBias));
    if (layer.vBias) tensors.push(vector(`${blk}.attn_v.bias`, layer.vBias));
    tensors.push(matrix(`${blk}.attn_output.weight`, layer.o, H, numHeads * headDim));
    tensors.push(vector(`${blk}.ffn_norm.weight`, layer.postAttentionNorm));
    tensors.push(matrix(`${blk}.ffn_gate.weight`, layer.gate, I, H));
    tensors.push(matrix(`${blk}.ffn_up.weight`, layer.up, I, H));
    tensors.push(matrix(`${blk}.ffn_down.weight`, layer.down, H, I));
  });
  tensors.push(vector('output_norm.weight', weights.finalNorm));
  // A tied classifier has no output.weight: llama.cpp then uses token_embd.weight.
  if (weights.lmHead) tensors.push(matrix('output.weight', weights.lmHead, vocabSize, H));
  return tensors;
}

interface TokenizerJson {
  model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[] };
  added_tokens?: { id: number; content: string; special?: boolean }[];
}

/** llama.cpp's byte-level BPE vocabulary from a Hugging Face tokenizer.json, padded to `vocabSize`. */
function tokenizerMetadata(tokenizer: TokenizerFiles, model: DecoderModel): [string, MetadataValue][] {
  const json = tokenizer.tokenizerJson as TokenizerJson;
  if (json.model?.type !== 'BPE' || !json.model.vocab || !json.model.merges) {
    throw new ModelFolderError('The GGUF writer needs a byte-level BPE tokenizer.json (model.type "BPE" with vocab and merges), such as a Qwen2 tokenizer.');
  }
  const size = model.config.vocabSize;
  const tokens: (string | undefined)[] = new Array<string | undefined>(size);
  const types = new Array<number>(size).fill(TOKEN_TYPE.unused);
  const place = (id: number, content: string, type: number): void => {
    if (id >= size) throw new ModelFolderError(`The tokenizer's token ${JSON.stringify(content)} has id ${id}, beyond the model's vocabulary of ${size}; the tokenizer does not belong to this config.`);
    tokens[id] = content;
    types[id] = type;
  };
  for (const [content, id] of Object.entries(json.model.vocab)) place(id, content, TOKEN_TYPE.normal);
  for (const added of json.added_tokens ?? []) place(added.id, added.content, added.special ? TOKEN_TYPE.control : TOKEN_TYPE.userDefined);
  const filled = Array.from(tokens, (t, id) => t ?? `[PAD${id}]`);
  const merges = json.model.merges.map((m) => (typeof m === 'string' ? m : m.join(' ')));
  const bos = model.config.bosTokenId;
  const eos = Array.isArray(model.config.eosTokenId) ? model.config.eosTokenId[0] : model.config.eosTokenId;
  const entries: [string, MetadataValue][] = [
    ['tokenizer.ggml.model', str('gpt2')],
    ['tokenizer.ggml.pre', str(model.config.architecture === 'qwen2' ? 'qwen2' : 'default')],
    ['tokenizer.ggml.tokens', { type: ValueType.Array, itemType: ValueType.String, value: filled }],
    ['tokenizer.ggml.token_type', { type: ValueType.Array, itemType: ValueType.Int32, value: types }],
    ['tokenizer.ggml.merges', { type: ValueType.Array, itemType: ValueType.String, value: merges }],
  ];
  if (bos !== undefined) entries.push(['tokenizer.ggml.bos_token_id', u32(bos)], ['tokenizer.ggml.padding_token_id', u32(bos)]);
  if (eos !== undefined) entries.push(['tokenizer.ggml.eos_token_id', u32(eos)]);
  // Qwen2 and our engine add no BOS to a prompt.
  entries.push(['tokenizer.ggml.add_bos_token', { type: ValueType.Bool, value: false }]);
  return entries;
}

function decoderMetadata(model: DecoderModel, matrixType: GgufTensorType, name: string): [string, MetadataValue][] {
  const c = model.config;
  if (c.partialRotaryFactor !== 1 || c.ropeScaling) throw new ModelFolderError('The GGUF writer handles full rotary embeddings without rope scaling (Qwen2 and plain Llama configs).');
  const arch = c.architecture;
  return [
    ['general.architecture', str(arch)],
    ['general.name', str(name)],
    ['general.alignment', u32(ALIGNMENT)],
    ['general.file_type', u32(FILE_TYPE[matrixType])],
    [`${arch}.context_length`, u32(c.maxPositionEmbeddings)],
    [`${arch}.embedding_length`, u32(c.hiddenSize)],
    [`${arch}.block_count`, u32(c.numLayers)],
    [`${arch}.feed_forward_length`, u32(c.intermediateSize)],
    [`${arch}.attention.head_count`, u32(c.numHeads)],
    [`${arch}.attention.head_count_kv`, u32(c.numKvHeads)],
    [`${arch}.attention.key_length`, u32(c.headDim)],
    [`${arch}.attention.value_length`, u32(c.headDim)],
    [`${arch}.rope.dimension_count`, u32(c.headDim)],
    [`${arch}.rope.freq_base`, f32(c.ropeTheta)],
    [`${arch}.attention.layer_norm_rms_epsilon`, f32(c.rmsNormEps)],
  ];
}

// ---------------------------------------------------------------------------------------------
// Serialisation

/** Appends little-endian values to a growing byte list (the header; tensor data is written apart). */
class HeaderWriter {
  private chunks: Uint8Array[] = [];
  length = 0;

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }
  u32(value: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value, true);
    this.push(b);
  }
  i32(value: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, value, true);
    this.push(b);
  }
  u64(value: number): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(value), true);
    this.push(b);
  }
  f32(value: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.push(b);
  }
  string(value: string): void {
    const bytes = Buffer.from(value, 'utf8');
    this.u64(bytes.length);
    this.push(bytes);
  }
  pad(): void {
    const rest = (ALIGNMENT - (this.length % ALIGNMENT)) % ALIGNMENT;
    if (rest > 0) this.push(new Uint8Array(rest));
  }
  value(v: MetadataValue): void {
    this.u32(v.type);
    switch (v.type) {
      case ValueType.Uint32:
        return this.u32(v.value);
      case ValueType.Int32:
        return this.i32(v.value);
      case ValueType.Float32:
        return this.f32(v.value);
      case ValueType.Bool:
        return this.push(new Uint8Array([v.value ? 1 : 0]));
      case ValueType.String:
        return this.string(v.value);
      case ValueType.Array:
        this.u32(v.itemType);
        this.u64(v.value.length);
        if (v.itemType === ValueType.String) for (const s of v.value) this.string(s);
        else for (const n of v.value) this.i32(n);
    }
  }
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

export interface GgufOptions {
  /** How the matrices are stored (norms and biases stay f32). */
  tensorType: GgufTensorType;
  /** general.name. */
  name?: string;
}

/**
 * Writes `model` with `tokenizer` to `file` as GGUF. The file is written next to its
 * destination and renamed into place, so a failed write leaves nothing half-written.
 * Returns the file's size in bytes.
 */
export function writeGguf(file: string, model: DecoderModel, tokenizer: TokenizerFiles, options: GgufOptions): number {
  const tensors = decoderTensors(model, options.tensorType);
  const metadata = [...decoderMetadata(model, options.tensorType, options.name ?? path.basename(file, '.gguf')), ...tokenizerMetadata(tokenizer, model)];
  const header = new HeaderWriter();
  header.u32(GGUF_MAGIC);
  header.u32(GGUF_VERSION);
  header.u64(tensors.length);
  header.u64(metadata.length);
  for (const [key, value] of metadata) {
    header.string(key);
    header.value(value);
  }
  let offset = 0;
  const aligned = (n: number): number => Math.ceil(n / ALIGNMENT) * ALIGNMENT;
  for (const tensor of tensors) {
    header.string(tensor.name);
    header.u32(tensor.dims.length);
    for (const d of tensor.dims) header.u64(d);
    header.u32(GGML_TYPE[tensor.type]);
    header.u64(offset);
    offset += aligned(tensorByteLength(tensor));
  }
  header.pad();

  const target = path.resolve(file);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const staging = `${target}.writing-${process.pid}`;
  const fd = fs.openSync(staging, 'w');
  try {
    let written = 0;
    const write = (bytes: Uint8Array): void => {
      fs.writeSync(fd, bytes);
      written += bytes.length;
    };
    write(header.bytes());
    const padding = new Uint8Array(ALIGNMENT);
    for (const tensor of tensors) {
      const bytes = tensorBytes(tensor);
      write(bytes);
      const rest = aligned(bytes.length) - bytes.length;
      if (rest > 0) write(padding.subarray(0, rest));
    }
    fs.closeSync(fd);
    fs.renameSync(staging, target);
    return written;
  } catch (error) {
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
    fs.rmSync(staging, { force: true });
    throw error;
  }
}
