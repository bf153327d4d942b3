// Finds and validates a model folder in the Hugging Face / onnx-community layout before any
// session is created, so that a broken download or conversion fails with an error that says
// which file is wrong and what to do, instead of an onnxruntime stack trace.
//
//   DIR/config.json                 shapes and rotary embedding (parseHfConfig)
//   DIR/generation_config.json      optional: eos/bos ids
//   DIR/tokenizer.json (+ tokenizer_config.json, chat_template.jinja)
//   DIR/onnx/model.onnx             the decoder graph (or another variant, see graphFile.ts)
//   DIR/onnx/model.onnx_data …      external weights, if the graph references them

import * as fs from 'node:fs';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { parseHfConfig, type DecoderConfig } from './modelConfig';
import { ModelConfigError, ModelFileCorruptError, ModelNotFoundError, ModelSignatureError, UnsupportedModelError } from './errors';
import { chooseGraphFile, prefillCompanionOf, type GraphChoice } from './graphFile';

/** The element types the engine feeds and reads for float tensors (past/present KV, logits). */
export type KvElementType = 'float32' | 'float16';

/** What the decoder graph looks like from the outside. */
export interface DecoderSignature {
  hasPositionIds: boolean;
  /** The graph takes num_logits_to_keep (logits of the last k positions; 0: all). */
  hasLogitsToKeep: boolean;
  /** past_key_values inputs and the cache outputs (always the same). */
  kvElementType: KvElementType;
  /**
   * Which cache rows the graph outputs: 'present' (present.{i}.key|value, the whole cache, as
   * Hugging Face exports do) or 'new' (new_key_values.{i}.key|value, the chunk's rows only; the
   * past may then be a buffer longer than the cache, its unused rows masked by attention_mask).
   */
  kvOutputs: 'present' | 'new';
  logitsElementType: KvElementType;
  numLayers: number;
  /**
   * Fused operators of the graph that apply rotary embedding (for the record: the builder's
   * graphs use RotaryEmbedding; in every supported graph the cached keys come out rotated).
   */
  fusedAttentionOps: string[];
}

export interface ModelFolder {
  dir: string;
  config: DecoderConfig;
  onnxPath: string;
  /** How onnxPath was chosen among the folder's graphs (see graphFile.ts). */
  graphChoice: GraphChoice;
  /** Every .onnx file of the folder, relative to it, sorted. */
  graphFiles: string[];
  externalDataFiles: string[];
  signature: DecoderSignature;
  /**
   * The graph's prefill companion (NAME_prefill.onnx, graphFile.ts), checked to have the same
   * signature; the session runs prompt chunks on it. Undefined when there is none.
   */
  prefillOnnxPath?: string;
  bosTokenId: number | undefined;
  eosTokenIds: number[];
  /** Total bytes of the graph and its weights on disk (what a decode step reads). */
  bytesOnDisk: number;
  /** Bytes of the prefill companion and its weights (0 without one). */
  prefillBytesOnDisk: number;
}

const HOW_TO_FIX = "rebuild it with 'npx freqkv convert …', run 'Download Model' again, or choose another model folder";

/** `onnxFile`: the graph to load, in DIR or DIR/onnx; by default see graphFile.ts. */
export function inspectModelFolder(dir: string, options: { onnxFile?: string } = {}): ModelFolder {
  const folder = path.resolve(dir);
  if (!fs.existsSync(folder) || !fs.statSync(folder).isDirectory()) {
    throw new ModelNotFoundError(`Model folder ${folder} does not exist. Pass --model DIR (or set freqkv.modelPath) to a folder with config.json, tokenizer.json and onnx/model.onnx.`);
  }
  const configPath = path.join(folder, 'config.json');
  const config = parseHfConfig(readJson(configPath, 'config.json', folder), configPath);
  if (!fs.existsSync(path.join(folder, 'tokenizer.json'))) {
    throw new ModelNotFoundError(`Model folder ${folder} has no tokenizer.json; ${HOW_TO_FIX}.`);
  }
  const { onnxPath, choice: graphChoice, graphFiles } = chooseGraphFile(folder, options.onnxFile);
  const { graph, bytes } = readGraph(onnxPath);
  const externalDataFiles = checkExternalData(graph, onnxPath);
  const signature = checkSignature(graph, config, onnxPath);
  const prefill = checkPrefillCompanion(onnxPath, config, signature);

  const generationConfigPath = path.join(folder, 'generation_config.json');
  const generationConfig = fs.existsSync(generationConfigPath) ? (readJson(generationConfigPath, 'generation_config.json', folder) as Record<string, unknown>) : {};
  const eosTokenIds = uniqueIds([...toIdList(generationConfig.eos_token_id), ...toIdList(config.eosTokenId)]);
  const bos = typeof generationConfig.bos_token_id === 'number' ? generationConfig.bos_token_id : config.bosTokenId;
  const sizeOf = (files: string[]): number => files.reduce((sum, f) => sum + fs.statSync(f).size, 0);
  const bytesOnDisk = bytes + sizeOf(externalDataFiles);
  const prefillBytesOnDisk = prefill ? sizeOf(prefill.files) : 0;
  return {
    dir: folder,
    config,
    onnxPath,
    graphChoice,
    graphFiles,
    externalDataFiles,
    signature,
    prefillOnnxPath: prefill?.onnxPath,
    prefillBytesOnDisk,
    bosTokenId: bos,
    eosTokenIds,
    bytesOnDisk,
  };
}

/** Reads and checks NAME_prefill.onnx beside the graph: it must take and give the same tensors. */
function checkPrefillCompanion(onnxPath: string, config: DecoderConfig, signature: DecoderSignature): { onnxPath: string; files: string[] } | undefined {
  const companion = prefillCompanionOf(onnxPath);
  if (!companion) return undefined;
  const { graph } = readGraph(companion);
  const externalDataFiles = checkExternalData(graph, companion);
  const own = checkSignature(graph, config, companion);
  if (JSON.stringify(own) !== JSON.stringify(signature)) {
    throw new ModelFileCorruptError(
      `${companion} (the prefill graph of ${path.basename(onnxPath)}) takes or gives other tensors than ${path.basename(onnxPath)}; delete it to run without it, or ${HOW_TO_FIX}.`,
    );
  }
  return { onnxPath: companion, files: [companion, ...externalDataFiles] };
}

function readJson(file: string, label: string, folder: string): unknown {
  if (!fs.existsSync(file)) throw new ModelNotFoundError(`Model folder ${folder} has no ${label}; ${HOW_TO_FIX}.`);
  const text = fs.readFileSync(file, 'utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ModelConfigError(`${file} is not valid JSON (${(error as Error).message}); ${HOW_TO_FIX}.`);
  }
}

/**
 * Decodes an ONNX model from its bytes. Reads them as a plain Uint8Array, never as the Buffer
 * readFileSync returns: protobufjs makes an empty `bytes` field (Optimum's graphs have empty
 * raw_data) with `new buf.constructor(0)`, which for a Buffer is the deprecated Buffer()
 * constructor (warning DEP0005 in the bundles).
 */
export function decodeOnnxModel(bytes: Uint8Array): onnx.ModelProto {
  return onnx.ModelProto.decode(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length));
}

function readGraph(onnxPath: string): { graph: onnx.IGraphProto; bytes: number } {
  const bytes = fs.readFileSync(onnxPath);
  if (bytes.length === 0) throw new ModelFileCorruptError(`${onnxPath} is empty; ${HOW_TO_FIX}.`);
  let model: onnx.ModelProto;
  try {
    model = decodeOnnxModel(bytes);
  } catch (error) {
    throw new ModelFileCorruptError(`${onnxPath} is truncated or is not an ONNX model (${(error as Error).message}); ${HOW_TO_FIX}.`);
  }
  if (!model.graph || (model.graph.node ?? []).length === 0) {
    throw new ModelFileCorruptError(`${onnxPath} holds no graph (${bytes.length} bytes read); ${HOW_TO_FIX}.`);
  }
  return { graph: model.graph, bytes: bytes.length };
}

/** Every external weight file exists and is long enough for the tensors that point into it. */
function checkExternalData(graph: onnx.IGraphProto, onnxPath: string): string[] {
  const needed = new Map<string, number>();
  for (const tensor of graph.initializer ?? []) {
    if (tensor.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
    const entries = new Map((tensor.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
    const location = entries.get('location');
    if (!location) throw new ModelFileCorruptError(`${onnxPath}: tensor ${tensor.name} is external but names no file; ${HOW_TO_FIX}.`);
    const end = Number(entries.get('offset') ?? 0) + Number(entries.get('length') ?? 0);
    needed.set(location, Math.max(needed.get(location) ?? 0, end));
  }
  const files: string[] = [];
  for (const [location, end] of needed) {
    const file = path.join(path.dirname(onnxPath), location);
    if (!fs.existsSync(file)) {
      throw new ModelNotFoundError(`${onnxPath} keeps its weights in ${location}, which is missing from ${path.dirname(onnxPath)}; ${HOW_TO_FIX}.`);
    }
    const size = fs.statSync(file).size;
    if (size < end) {
      throw new ModelFileCorruptError(`${file} is truncated: ${size} bytes, but the graph reads up to byte ${end}; ${HOW_TO_FIX}.`);
    }
    files.push(file);
  }
  return files;
}

const PAST = /^past_key_values\.(\d+)\.(key|value)$/;
const PRESENT = /^present\.(\d+)\.(key|value)$/;
const NEW_ROWS = /^new_key_values\.(\d+)\.(key|value)$/;
const FUSED_ROTARY_OPS = new Set(['GroupQueryAttention', 'RotaryEmbedding', 'MultiHeadAttention']);

function checkSignature(graph: onnx.IGraphProto, config: DecoderConfig, onnxPath: string): DecoderSignature {
  const initializerNames = new Set((graph.initializer ?? []).map((t) => t.name));
  const inputs = (graph.input ?? []).filter((i) => !initializerNames.has(i.name));
  const inputNames = new Set(inputs.map((i) => i.name ?? ''));
  const outputNames = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  const where = `${onnxPath}`;

  if (!inputNames.has('input_ids')) {
    if (inputNames.has('inputs_embeds')) {
      throw new UnsupportedModelError(`${where} takes inputs_embeds from a separate embedding graph; only decoders that take input_ids are supported. Use an export with input_ids (for example one built by 'npx freqkv convert').`);
    }
    throw new ModelSignatureError(`${where} has no input_ids input (inputs: ${[...inputNames].join(', ')}); it is not a decoder with the expected signature.`);
  }
  if (!inputNames.has('attention_mask')) throw new ModelSignatureError(`${where} has no attention_mask input; it is not a decoder with the expected signature.`);
  if (!outputNames.has('logits')) throw new ModelSignatureError(`${where} has no logits output (outputs: ${[...outputNames].join(', ')}).`);

  const known = new Set(['input_ids', 'attention_mask', 'position_ids', 'num_logits_to_keep']);
  const unknown = [...inputNames].filter((n) => !known.has(n) && !PAST.test(n));
  if (unknown.length > 0) {
    throw new UnsupportedModelError(`${where} needs inputs the engine does not provide: ${unknown.join(', ')}. Supported inputs: input_ids, attention_mask, position_ids, num_logits_to_keep, past_key_values.{i}.key|value.`);
  }

  for (const input of inputs) {
    if (known.has(input.name ?? '') && elementTypeCode(input) !== onnx.TensorProto.DataType.INT64) {
      throw new UnsupportedModelError(
        `${where}: input ${input.name} is ${elementTypeName(input)}; the engine feeds int64 input_ids, attention_mask and position_ids, as Hugging Face Optimum exports take them. Use such an export (or one built by 'npx freqkv convert').`,
      );
    }
  }
  const logitsElementType = floatElementType(graph.output!.find((o) => o.name === 'logits')!, where, 'output');

  const pastLayers = new Set<number>();
  let kvElementType: KvElementType | undefined;
  for (const input of inputs) {
    const match = PAST.exec(input.name ?? '');
    if (!match) continue;
    pastLayers.add(Number(match[1]));
    const tensorType = input.type?.tensorType;
    const thisType = floatElementType(input, where, 'input');
    if (kvElementType && kvElementType !== thisType) throw new UnsupportedModelError(`${where} mixes float16 and float32 KV cache inputs; choose another export of this model.`);
    kvElementType = thisType;
    const dims = tensorType?.shape?.dim ?? [];
    if (dims.length !== 4) throw new ModelSignatureError(`${where}: ${input.name} has rank ${dims.length}; expected [batch, kv_heads, past, head_dim].`);
    const heads = dims[1]?.dimValue;
    const headDim = dims[3]?.dimValue;
    if (heads != null && Number(heads) !== 0 && Number(heads) !== config.numKvHeads) {
      throw new ModelSignatureError(`config.json says ${config.numKvHeads} key/value heads but ${where} has ${Number(heads)} in ${input.name}; the config does not belong to this graph.`);
    }
    if (headDim != null && Number(headDim) !== 0 && Number(headDim) !== config.headDim) {
      throw new ModelSignatureError(`config.json says head_dim ${config.headDim} but ${where} has ${Number(headDim)} in ${input.name}; the config does not belong to this graph.`);
    }
  }
  if (pastLayers.size === 0) {
    throw new ModelSignatureError(`${where} has no past_key_values inputs; an export without a KV cache cannot be used (export it "with past").`);
  }
  if (pastLayers.size !== config.numLayers) {
    throw new ModelSignatureError(`config.json says ${config.numLayers} layers but ${where} has past_key_values for ${pastLayers.size}; the config does not belong to this graph.`);
  }
  const kvOutputs = [...outputNames].some((n) => NEW_ROWS.test(n)) ? 'new' : 'present';
  const cacheOutput = kvOutputs === 'new' ? NEW_ROWS : PRESENT;
  const cacheOutputName = kvOutputs === 'new' ? 'new_key_values' : 'present';
  for (let i = 0; i < config.numLayers; i++) {
    for (const kind of ['key', 'value']) {
      if (!inputNames.has(`past_key_values.${i}.${kind}`)) throw new ModelSignatureError(`${where} lacks input past_key_values.${i}.${kind}.`);
      if (!outputNames.has(`${cacheOutputName}.${i}.${kind}`)) throw new ModelSignatureError(`${where} lacks output ${cacheOutputName}.${i}.${kind}.`);
    }
  }
  for (const output of graph.output ?? []) {
    if (!cacheOutput.test(output.name ?? '')) continue;
    const outputType = floatElementType(output, where, 'output');
    if (outputType !== kvElementType) {
      throw new UnsupportedModelError(
        `${where}: output ${output.name} is ${outputType} but the past_key_values inputs are ${kvElementType}; the engine feeds the cache rows back as the next past, so they must match. Choose another export of this model.`,
      );
    }
  }
  const cacheOutputCount = [...outputNames].filter((n) => PRESENT.test(n) || NEW_ROWS.test(n)).length;
  if (cacheOutputCount !== 2 * config.numLayers) {
    throw new ModelSignatureError(`${where} has ${cacheOutputCount} cache outputs (present / new_key_values) for ${config.numLayers} layers.`);
  }
  const fusedAttentionOps = [...new Set((graph.node ?? []).map((n) => n.opType ?? '').filter((op) => FUSED_ROTARY_OPS.has(op)))];
  return { hasPositionIds: inputNames.has('position_ids'), hasLogitsToKeep: inputNames.has('num_logits_to_keep'), kvElementType: kvElementType ?? 'float32', kvOutputs, logitsElementType, numLayers: config.numLayers, fusedAttentionOps };
}

function elementTypeCode(value: onnx.IValueInfoProto): number {
  return value.type?.tensorType?.elemType ?? onnx.TensorProto.DataType.UNDEFINED;
}

function elementTypeName(value: onnx.IValueInfoProto): string {
  const code = elementTypeCode(value);
  return code === onnx.TensorProto.DataType.UNDEFINED ? 'of no declared element type' : (onnx.TensorProto.DataType[code] ?? `element type ${code}`).toLowerCase();
}

/**
 * The element type of a KV or logits tensor: float32 or float16, the two the engine converts
 * (float16 as raw bits, see decoderSession.ts). Anything else, bfloat16 for one, is refused.
 */
function floatElementType(value: onnx.IValueInfoProto, where: string, role: 'input' | 'output'): KvElementType {
  const code = elementTypeCode(value);
  if (code === onnx.TensorProto.DataType.FLOAT) return 'float32';
  if (code === onnx.TensorProto.DataType.FLOAT16) return 'float16';
  throw new UnsupportedModelError(
    `${where}: ${role} ${value.name} is ${elementTypeName(value)}; the engine supports float32 and float16 logits and KV caches. Choose another export of this model (model.onnx, model_q4.onnx, model_fp16.onnx or model_q4f16.onnx, with --onnx-file or the freqkv.onnxFile setting), or convert it with 'npx freqkv convert'.`,
  );
}

function toIdList(value: unknown): number[] {
  if (typeof value === 'number') return [value];
  if (Array.isArray(value)) return value.filter((v): v is number => typeof v === 'number');
  return [];
}

function uniqueIds(ids: number[]): number[] {
  return [...new Set(ids)];
}
