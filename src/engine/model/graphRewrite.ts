// Rewrites a decoder graph in memory before onnxruntime loads it, so that graphs made by other
// tools (Optimum / onnx-community exports, transformers.js quantizations) or by older builds of
// this project run as fast as the graphs `freqkv convert` writes now. Only the graph proto
// changes; external weight files are read where they are. Three rewrites, each applied only
// where the graph has the pattern:
//
//   1. MatMulNBits without accuracy_level (the exporter chose none) gets accuracy_level 4
//      (activations quantized to int8 per block: the fast integer kernels of onnxruntime's
//      MLAS). For 8-bit weights, level 0 has no fused kernel at all and is about 10× slower.
//      An explicit accuracy_level (even 0: `freqkv convert --matmul-accuracy float32`) is kept.
//   2. A classifier MatMul / MatMulNBits that produces `logits` from the [batch, seq, hidden]
//      hidden state gets a Slice in front of it that keeps the last k positions, with k a new
//      scalar input num_logits_to_keep (0: all). Generation asks for one row, scoring for all.
//   3. In a graph with quantized weights (MatMulNBits), a tied classifier written as
//      MatMul(x, Transpose(embedding)) — onnxruntime folds the Transpose into a second float32
//      copy of the embedding, read whole by every decode step — becomes MatMulNBits on an int8
//      copy of the embedding, quantized here (block 32, symmetric, as quantize.ts). A float32
//      graph keeps its float32 classifier: its user chose full precision.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { quantizeNBits } from '../../builder/quantize';

/** The optional scalar input that limits logits to the last k positions (the name transformers uses). */
export const LOGITS_TO_KEEP_INPUT = 'num_logits_to_keep';
/** MatMulNBits accuracy_level 4: int8 arithmetic. */
const INT8_ACCURACY_LEVEL = 4;
const CLASSIFIER_BLOCK_SIZE = 32;

export interface GraphRewriteOptions {
  /** Rewrite 1: set accuracy_level 4 on MatMulNBits that have no accuracy_level attribute. Default true. */
  int8MatMul?: boolean;
  /** Rewrite 2: logits of the last k positions only. Default true. */
  logitsToKeep?: boolean;
  /** Rewrite 3: an int8 MatMulNBits classifier instead of MatMul on a transposed embedding, in quantized graphs. Default true. */
  quantizeTiedClassifier?: boolean;
}

export interface GraphRewrite {
  /** The rewritten model, or undefined when nothing applied (load the file as it is). */
  model: onnx.ModelProto | undefined;
  /** What changed, for logs and the benchmark's notes. */
  changes: string[];
  /** The rewritten graph takes num_logits_to_keep. */
  hasLogitsToKeep: boolean;
}

type Attribute = onnx.IAttributeProto;

function intAttribute(node: onnx.INodeProto, name: string): number | undefined {
  const a = (node.attribute ?? []).find((x) => x.name === name);
  return a?.i == null ? undefined : Number(a.i);
}

function setIntAttribute(node: onnx.INodeProto, name: string, value: number): void {
  const attributes: Attribute[] = (node.attribute ?? []).filter((x) => x.name !== name);
  attributes.push({ name, type: onnx.AttributeProto.AttributeType.INT, i: value });
  node.attribute = attributes;
}

/** Float32 data of an initializer, inline or in an external file next to the graph. */
function floatData(tensor: onnx.ITensorProto, onnxDir: string): Float32Array | undefined {
  if (tensor.dataType !== onnx.TensorProto.DataType.FLOAT) return undefined;
  if (tensor.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    const entries = new Map((tensor.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
    const file = path.join(onnxDir, entries.get('location') ?? '');
    const offset = Number(entries.get('offset') ?? 0);
    const length = Number(entries.get('length') ?? fs.statSync(file).size - offset);
    const bytes = new Uint8Array(length);
    const fd = fs.openSync(file, 'r');
    try {
      fs.readSync(fd, bytes, 0, length, offset);
    } finally {
      fs.closeSync(fd);
    }
    return new Float32Array(bytes.buffer, 0, length / 4);
  }
  if (tensor.rawData && tensor.rawData.length > 0) {
    const raw = tensor.rawData;
    return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  }
  if (tensor.floatData && tensor.floatData.length > 0) return Float32Array.from(tensor.floatData);
  return undefined;
}

export function rewriteDecoderGraph(model: onnx.ModelProto, onnxPath: string, options: GraphRewriteOptions = {}): GraphRewrite {
  const graph = model.graph;
  const changes: string[] = [];
  const inputNames = new Set((graph?.input ?? []).map((i) => i.name));
  if (!graph) return { model: undefined, changes, hasLogitsToKeep: false };
  const nodes = graph.node ?? [];
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const producer = new Map<string, onnx.INodeProto>();
  for (const node of nodes) for (const output of node.output ?? []) producer.set(output, node);
  const consumers = (name: string): onnx.INodeProto[] => nodes.filter((n) => (n.input ?? []).includes(name));
  let counter = 0;
  const fresh = (stem: string): string => `freqkv_rewrite_${stem}_${counter++}`;
  const int64Initializer = (values: number[], dims: number[]): string => {
    const name = fresh('const');
    graph.initializer!.push({ name, dataType: onnx.TensorProto.DataType.INT64, dims, rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer) });
    return name;
  };

  const quantized = nodes.some((n) => n.opType === 'MatMulNBits' && n.domain === 'com.microsoft');

  // 1. int8 arithmetic in MatMulNBits.
  if (options.int8MatMul ?? true) {
    let count = 0;
    for (const node of nodes) {
      if (node.opType === 'MatMulNBits' && node.domain === 'com.microsoft' && intAttribute(node, 'accuracy_level') === undefined) {
        setIntAttribute(node, 'accuracy_level', INT8_ACCURACY_LEVEL);
        count++;
      }
    }
    if (count > 0) changes.push(`accuracy_level 4 (int8 arithmetic) on ${count} MatMulNBits`);
  }

  // The classifier: the MatMul / MatMulNBits that writes `logits` itself. With logits declared
  // [batch, seq, vocab], its activation input is [batch, seq, hidden] (a product keeps the rank).
  const classifier = producer.get('logits');
  const logitsRank = (graph.output ?? []).find((o) => o.name === 'logits')?.type?.tensorType?.shape?.dim?.length;
  const isClassifier =
    classifier !== undefined && logitsRank === 3 && (classifier.opType === 'MatMul' || (classifier.opType === 'MatMulNBits' && classifier.domain === 'com.microsoft'));

  // 3. MatMul(x, Transpose(E)) with E the embedding initializer → MatMulNBits on int8 E.
  if ((options.quantizeTiedClassifier ?? true) && quantized && classifier && isClassifier && classifier.opType === 'MatMul') {
    const transpose = producer.get(classifier.input![1]!);
    const source = transpose?.opType === 'Transpose' ? initializers.get(transpose.input![0]!) : undefined;
    const perm = transpose ? (transpose.attribute ?? []).find((a) => a.name === 'perm')?.ints?.map(Number) : undefined;
    if (transpose && source && source.dims?.length === 2 && (perm === undefined || (perm[0] === 1 && perm[1] === 0))) {
      const [n, k] = source.dims.map(Number) as [number, number];
      const data = floatData(source, path.dirname(onnxPath));
      if (data && data.length === n * k) {
        const q = quantizeNBits(data, n, k, 8, CLASSIFIER_BLOCK_SIZE);
        const packed = fresh('classifier_q8');
        const scales = fresh('classifier_scales');
        graph.initializer!.push({ name: packed, dataType: onnx.TensorProto.DataType.UINT8, dims: [n, q.kBlocks, q.blockSize], rawData: q.packed });
        graph.initializer!.push({ name: scales, dataType: onnx.TensorProto.DataType.FLOAT, dims: [n * q.kBlocks], rawData: new Uint8Array(q.scales.buffer) });
        classifier.opType = 'MatMulNBits';
        classifier.domain = 'com.microsoft';
        classifier.input = [classifier.input![0]!, packed, scales];
        classifier.attribute = [];
        for (const [name, value] of [['K', k], ['N', n], ['bits', 8], ['block_size', q.blockSize], ['accuracy_level', INT8_ACCURACY_LEVEL]] as const) setIntAttribute(classifier, name, value);
        if (consumers(transpose.output![0]!).length === 0) graph.node = (graph.node ?? []).filter((x) => x !== transpose);
        changes.push(`tied classifier: MatMul on the transposed ${source.name} → int8 MatMulNBits (block ${q.blockSize})`);
      }
    }
  }

  // 2. Slice the classifier's input to the last num_logits_to_keep positions.
  let hasLogitsToKeep = inputNames.has(LOGITS_TO_KEEP_INPUT);
  if ((options.logitsToKeep ?? true) && !hasLogitsToKeep && classifier && isClassifier) {
    graph.input!.push({ name: LOGITS_TO_KEEP_INPUT, type: { tensorType: { elemType: onnx.TensorProto.DataType.INT64, shape: { dim: [] } } } });
    const unsqueezed = fresh('keep_1d');
    const start = fresh('keep_start');
    const kept = fresh('kept_hidden');
    const newNodes: onnx.INodeProto[] = [
      { name: fresh('node'), opType: 'Unsqueeze', input: [LOGITS_TO_KEEP_INPUT, int64Initializer([0], [1])], output: [unsqueezed] },
      { name: fresh('node'), opType: 'Neg', input: [unsqueezed], output: [start] },
      { name: fresh('node'), opType: 'Slice', input: [classifier.input![0]!, start, int64Initializer([Number.MAX_SAFE_INTEGER], [1]), int64Initializer([1], [1])], output: [kept] },
    ];
    classifier.input = [kept, ...classifier.input!.slice(1)];
    const at = graph.node!.indexOf(classifier);
    graph.node!.splice(at, 0, ...newNodes);
    const logitsOutput = (graph.output ?? []).find((o) => o.name === 'logits');
    const dims = logitsOutput?.type?.tensorType?.shape?.dim;
    if (dims && dims.length === 3) dims[1] = { dimParam: 'logits_length' };
    hasLogitsToKeep = true;
    changes.push('logits of the last num_logits_to_keep positions only (a Slice before the classifier)');
  }

  return { model: changes.length > 0 ? model : undefined, changes, hasLogitsToKeep };
}
