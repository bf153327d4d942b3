// Hugging Face model folders in safetensors format: config.json plus either model.safetensors
// or shards model-0000i-of-0000n.safetensors listed in model.safetensors.index.json.
//
// A safetensors file is: u64 little-endian header length N; N bytes of JSON
// { name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: {...} } (padded with
// spaces); then the tensor bytes, offsets relative to the end of the header, little-endian,
// row-major. Tensors are read one at a time so a model larger than one Buffer still loads.

import { open, readFile, stat, writeFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { bfloat16ToFloat32, float16ToFloat32, float32ToBfloat16, float32ToFloat16 } from '../engine/floatFormats';
import { parseHfConfig } from '../engine/model/modelConfig';
import type { DecoderConfig, DecoderLayerWeights, DecoderModel, DecoderWeights } from './decoderWeights';
import {
  MissingTensorError,
  ModelFolderError,
  SafetensorsFormatError,
  TensorShapeError,
  UnsupportedDtypeError,
} from './errors';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

/** A tensor to write: float32 values, stored as `dtype`. */
export interface SafetensorsTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array;
}

const BYTES_PER_ELEMENT: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};
const READABLE_DTYPES: readonly string[] = ['F32', 'F16', 'BF16'];

if (endianness() !== 'LE') {
  // Typed-array views below reinterpret file bytes in host order, and the files are little-endian.
  throw new ModelFolderError('safetensors: this reader needs a little-endian machine.');
}

// ---------------------------------------------------------------------------------------------
// Tensor names: the Hugging Face Llama / Qwen2 layout

type LayerKey = keyof DecoderLayerWeights;

/** The tensors of one decoder layer: DecoderLayerWeights key, HF name suffix, [rows, cols] or [size]. */
function layerTensorSpecs(config: DecoderConfig): { key: LayerKey; suffix: string; shape: number[] }[] {
  const { hiddenSize: hidden, intermediateSize: inter, numHeads, numKvHeads, headDim } = config;
  const qDim = numHeads * headDim;
  const kvDim = numKvHeads * headDim;
  const specs: { key: LayerKey; suffix: string; shape: number[] }[] = [
    { key: 'inputNorm', suffix: 'input_layernorm.weight', shape: [hidden] },
    { key: 'q', suffix: 'self_attn.q_proj.weight', shape: [qDim, hidden] },
    { key: 'k', suffix: 'self_attn.k_proj.weight', shape: [kvDim, hidden] },
    { key: 'v', suffix: 'self_attn.v_proj.weight', shape: [kvDim, hidden] },
    { key: 'o', suffix: 'self_attn.o_proj.weight', shape: [hidden, qDim] },
    { key: 'postAttentionNorm', suffix: 'post_attention_layernorm.weight', shape: [hidden] },
    { key: 'gate', suffix: 'mlp.gate_proj.weight', shape: [inter, hidden] },
    { key: 'up', suffix: 'mlp.up_proj.weight', shape: [inter, hidden] },
    { key: 'down', suffix: 'mlp.down_proj.weight', shape: [hidden, inter] },
  ];
  if (config.attentionBias) {
    specs.push(
      { key: 'qBias', suffix: 'self_attn.q_proj.bias', shape: [qDim] },
      { key: 'kBias', suffix: 'self_attn.k_proj.bias', shape: [kvDim] },
      { key: 'vBias', suffix: 'self_attn.v_proj.bias', shape: [kvDim] },
    );
  }
  return specs;
}

/** The model's weights under their Hugging Face names, stored as `dtype` (the data arrays are shared, not copied). */
export function hfTensorsOf(model: DecoderModel, dtype: SafetensorsDtype): Record<string, SafetensorsTensor> {
  const { config, weights } = model;
  const tensors: Record<string, SafetensorsTensor> = {};
  tensors['model.embed_tokens.weight'] = { dtype, shape: [config.vocabSize, config.hiddenSize], data: weights.embedTokens };
  weights.layers.forEach((layer, l) => {
    for (const spec of layerTensorSpecs(config)) {
      const data = layer[spec.key];
      if (!data) throw new MissingTensorError(`layer ${l} has no ${spec.key} weights although the config requires them.`);
      tensors[`model.layers.${l}.${spec.suffix}`] = { dtype, shape: spec.shape, data };
    }
  });
  tensors['model.norm.weight'] = { dtype, shape: [config.hiddenSize], data: weights.finalNorm };
  if (!config.tieWordEmbeddings) {
    if (!weights.lmHead) throw new MissingTensorError('the config has an untied classifier but the weights have no lmHead.');
    tensors['lm_head.weight'] = { dtype, shape: [config.vocabSize, config.hiddenSize], data: weights.lmHead };
  }
  return tensors;
}

// ---------------------------------------------------------------------------------------------
// Reading

interface TensorEntry {
  file: string;
  dtype: string;
  shape: number[];
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
}

/** Parses one file's header and checks every tensor's byte range against its shape and the file size. */
async function readHeader(file: string): Promise<Map<string, TensorEntry>> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const fail = (what: string): never => {
      throw new SafetensorsFormatError(`${file}: ${what}; the file is damaged or incompletely downloaded, fetch it again.`);
    };
    if (size < 8) fail(`expected at least 8 bytes, the file has ${size} (truncated)`);
    const lengthBytes = Buffer.alloc(8);
    await handle.read(lengthBytes, 0, 8, 0);
    const headerLength = Number(lengthBytes.readBigUInt64LE(0));
    if (headerLength > size - 8) fail(`the header claims ${headerLength} bytes but the file has only ${size - 8} after the length (truncated)`);
    const headerBytes = Buffer.alloc(headerLength);
    await handle.read(headerBytes, 0, headerLength, 8);
    let header: unknown;
    try {
      header = JSON.parse(headerBytes.toString('utf8'));
    } catch (error) {
      fail(`the header is not valid JSON (${(error as Error).message})`);
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('the header is not a JSON object');

    const dataStart = 8 + headerLength;
    const entries = new Map<string, TensorEntry>();
    for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') continue;
      const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      const offsets = info.data_offsets;
      if (
        typeof info.dtype !== 'string' ||
        !Array.isArray(info.shape) ||
        !info.shape.every((d) => Number.isInteger(d) && d >= 0) ||
        !Array.isArray(offsets) ||
        offsets.length !== 2 ||
        !offsets.every((o) => Number.isInteger(o) && o >= 0)
      ) {
        fail(`tensor "${name}" has a malformed header entry ${JSON.stringify(raw)}`);
      }
      const [begin, end] = offsets as [number, number];
      const shape = info.shape as number[];
      const elementBytes = BYTES_PER_ELEMENT[info.dtype as string];
      const count = shape.reduce((a, b) => a * b, 1);
      if (end < begin || (elementBytes !== undefined && end - begin !== count * elementBytes)) {
        fail(`tensor "${name}" (${info.dtype as string} ${JSON.stringify(shape)}) has byte range [${begin}, ${end}), which does not match its shape`);
      }
      if (dataStart + end > size) {
        fail(`tensor "${name}" ends at byte ${dataStart + end} but the file has ${size} bytes (truncated)`);
      }
      entries.set(name, { file, dtype: info.dtype as string, shape, begin: dataStart + begin, end: dataStart + end });
    }
    return entries;
  } finally {
    await handle.close();
  }
}

/** Reads one tensor's bytes and converts them to float32. */
async function readTensorData(name: string, entry: TensorEntry): Promise<Float32Array> {
  if (!READABLE_DTYPES.includes(entry.dtype)) {
    throw new UnsupportedDtypeError(
      `${entry.file}: tensor "${name}" is stored as ${entry.dtype}; supported dtypes are ${READABLE_DTYPES.join(', ')}. ` +
        'Convert the model to float32, float16 or bfloat16 first.',
    );
  }
  const byteLength = entry.end - entry.begin;
  const bytes = new Uint8Array(byteLength); // fresh, so 4-byte aligned for the typed-array views
  const handle = await open(entry.file, 'r');
  try {
    const CHUNK = 1 << 30; // one read call is limited to 2 GiB
    for (let done = 0; done < byteLength; ) {
      const { bytesRead } = await handle.read(bytes, done, Math.min(CHUNK, byteLength - done), entry.begin + done);
      if (bytesRead === 0) throw new SafetensorsFormatError(`${entry.file}: unexpected end of file while reading tensor "${name}"; fetch the file again.`);
      done += bytesRead;
    }
  } finally {
    await handle.close();
  }
  if (entry.dtype === 'F32') return new Float32Array(bytes.buffer, 0, byteLength / 4);
  const halves = new Uint16Array(bytes.buffer, 0, byteLength / 2);
  const out = new Float32Array(halves.length);
  return entry.dtype === 'F16' ? float16ToFloat32(halves, out) : bfloat16ToFloat32(halves, out);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Every tensor of the folder's safetensors file(s), by name. */
async function indexModelFolder(dir: string): Promise<Map<string, TensorEntry>> {
  const indexPath = join(dir, 'model.safetensors.index.json');
  const singlePath = join(dir, 'model.safetensors');
  let files: string[];
  if (await exists(indexPath)) {
    const index = JSON.parse(await readFile(indexPath, 'utf8')) as { weight_map?: Record<string, string> };
    if (typeof index.weight_map !== 'object' || index.weight_map === null) {
      throw new ModelFolderError(`${indexPath}: "weight_map" is missing; the index file is damaged, fetch it again.`);
    }
    files = [...new Set(Object.values(index.weight_map))].map((shard) => join(dir, shard));
  } else if (await exists(singlePath)) {
    files = [singlePath];
  } else {
    throw new ModelFolderError(
      `${dir}: neither model.safetensors nor model.safetensors.index.json is there; point at a Hugging Face model folder with safetensors weights.`,
    );
  }
  const all = new Map<string, TensorEntry>();
  for (const file of files) {
    if (!(await exists(file))) throw new ModelFolderError(`${file}: this shard is listed in the index but missing; download it.`);
    for (const [name, entry] of await readHeader(file)) all.set(name, entry);
  }
  return all;
}

/** Reads a Hugging Face Llama or Qwen2 model folder (config.json + safetensors) into float32 weights. */
export async function readSafetensorsModel(dir: string): Promise<DecoderModel> {
  const configPath = join(dir, 'config.json');
  if (!(await exists(configPath))) {
    throw new ModelFolderError(`${dir}: config.json is missing; point at a Hugging Face model folder.`);
  }
  const config = parseHfConfig(JSON.parse(await readFile(configPath, 'utf8')), configPath);
  const entries = await indexModelFolder(dir);

  const tensor = async (name: string, shape: number[]): Promise<Float32Array> => {
    const entry = entries.get(name);
    if (!entry) {
      throw new MissingTensorError(`${dir}: tensor "${name}" is in none of the safetensors files; the model is incomplete or not a ${config.architecture} model.`);
    }
    if (entry.shape.length !== shape.length || entry.shape.some((d, i) => d !== shape[i])) {
      throw new TensorShapeError(
        `${entry.file}: tensor "${name}" has shape ${JSON.stringify(entry.shape)}, expected ${JSON.stringify(shape)} from config.json; the weights and the config do not belong together.`,
      );
    }
    return readTensorData(name, entry);
  };

  const embedTokens = await tensor('model.embed_tokens.weight', [config.vocabSize, config.hiddenSize]);
  const layers: DecoderLayerWeights[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    const layer: Partial<DecoderLayerWeights> = {};
    for (const spec of layerTensorSpecs(config)) layer[spec.key] = await tensor(`model.layers.${l}.${spec.suffix}`, spec.shape);
    layers.push(layer as DecoderLayerWeights);
  }
  const finalNorm = await tensor('model.norm.weight', [config.hiddenSize]);
  const weights: DecoderWeights = { embedTokens, layers, finalNorm };
  if (!config.tieWordEmbeddings) weights.lmHead = await tensor('lm_head.weight', [config.vocabSize, config.hiddenSize]);
  return { config, weights };
}

// ---------------------------------------------------------------------------------------------
// Writing

/** Writes tensors as one safetensors file (header padded to 8 bytes, tensors in the given order). */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, SafetensorsTensor>,
  metadata: Record<string, string> = { format: 'pt' },
): Promise<void> {
  const header: Record<string, unknown> = { __metadata__: metadata };
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const [name, { dtype, shape, data }] of Object.entries(tensors)) {
    const count = shape.reduce((a, b) => a * b, 1);
    if (count !== data.length) {
      throw new TensorShapeError(`writeSafetensors: tensor "${name}" has ${data.length} values but shape ${JSON.stringify(shape)} needs ${count}.`);
    }
    let blob: Uint8Array;
    if (dtype === 'F32') blob = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else if (dtype === 'F16') blob = new Uint8Array(float32ToFloat16(data, new Uint16Array(count)).buffer);
    else if (dtype === 'BF16') blob = new Uint8Array(float32ToBfloat16(data, new Uint16Array(count)).buffer);
    else throw new UnsupportedDtypeError(`writeSafetensors: tensor "${name}" has dtype ${String(dtype)}; use F32, F16 or BF16.`);
    header[name] = { dtype, shape, data_offsets: [offset, offset + blob.byteLength] };
    blobs.push(blob);
    offset += blob.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(headerBytes.byteLength));
  await writeFile(path, [length, headerBytes, ...blobs]);
}
