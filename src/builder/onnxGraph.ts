// A small, typed way to write ONNX graphs with the onnx-proto protobuf bindings. It names
// every intermediate value, collects nodes and initializers, and serializes the model with
// weights either inline or in an external data file (the layout Hugging Face exports use).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';

export const TensorType = onnx.TensorProto.DataType;
export type TensorTypeCode = onnx.TensorProto.DataType;

export type AttributeValue = number | number[] | string | { float: number } | { floats: number[] };

/** A symbolic or fixed dimension of a graph input or output. */
export type Dim = number | string;

interface InitializerRecord {
  name: string;
  dataType: TensorTypeCode;
  dims: number[];
  bytes: Uint8Array;
}

/** Tensors smaller than this stay inline even when the model uses external data. */
const INLINE_LIMIT_BYTES = 1024;
/** External tensors start at offsets aligned to this many bytes. */
const EXTERNAL_ALIGNMENT = 64;

export class GraphBuilder {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly initializers: InitializerRecord[] = [];
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private readonly constantCache = new Map<string, string>();
  private counter = 0;

  constructor(private readonly graphName: string) {}

  /** Adds a node and returns the names of its outputs (one per requested output). */
  node(opType: string, inputs: string[], attributes: Record<string, AttributeValue> = {}, outputCount = 1, domain = ''): string[] {
    const base = `${opType.toLowerCase()}_${this.counter++}`;
    const outputs = Array.from({ length: outputCount }, (_, i) => (outputCount === 1 ? base : `${base}_${i}`));
    this.nodes.push({
      name: base,
      opType,
      domain,
      input: inputs,
      output: outputs,
      attribute: Object.entries(attributes).map(([name, value]) => toAttribute(name, value)),
    });
    return outputs;
  }

  /** Adds a node with exactly one output and returns its name. */
  op(opType: string, inputs: string[], attributes: Record<string, AttributeValue> = {}, domain = ''): string {
    const [output] = this.node(opType, inputs, attributes, 1, domain);
    return output as string;
  }

  /** Adds a node whose output has a fixed name (graph outputs). */
  opNamed(output: string, opType: string, inputs: string[], attributes: Record<string, AttributeValue> = {}): string {
    this.nodes.push({
      name: `${opType.toLowerCase()}_${this.counter++}`,
      opType,
      input: inputs,
      output: [output],
      attribute: Object.entries(attributes).map(([name, value]) => toAttribute(name, value)),
    });
    return output;
  }

  input(name: string, dataType: TensorTypeCode, dims: Dim[]): string {
    this.inputs.push(valueInfo(name, dataType, dims));
    return name;
  }

  output(name: string, dataType: TensorTypeCode, dims: Dim[]): void {
    this.outputs.push(valueInfo(name, dataType, dims));
  }

  /** A weight or constant tensor, stored as raw little-endian bytes. */
  initializer(name: string, dataType: TensorTypeCode, dims: number[], data: Float32Array | Uint8Array | BigInt64Array | Uint16Array): string {
    const expected = dims.reduce((a, b) => a * b, 1);
    if (data.length !== expected) {
      throw new Error(`initializer ${name}: ${data.length} elements for dims [${dims.join(', ')}] (${expected} expected)`);
    }
    this.initializers.push({ name, dataType, dims, bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
    return name;
  }

  float(name: string, dims: number[], data: Float32Array): string {
    return this.initializer(name, TensorType.FLOAT, dims, data);
  }

  /** A shared int64 constant vector, created once per distinct value. */
  int64s(values: number[]): string {
    const key = `i64:${values.join(',')}`;
    const existing = this.constantCache.get(key);
    if (existing) return existing;
    const name = `const_i64_${this.constantCache.size}`;
    this.initializer(name, TensorType.INT64, [values.length], BigInt64Array.from(values.map((v) => BigInt(v))));
    this.constantCache.set(key, name);
    return name;
  }

  /** A shared int64 scalar constant (rank 0). */
  int64Scalar(value: number): string {
    const key = `i64s:${value}`;
    const existing = this.constantCache.get(key);
    if (existing) return existing;
    const name = `const_i64s_${this.constantCache.size}`;
    this.initializer(name, TensorType.INT64, [], BigInt64Array.of(BigInt(value)));
    this.constantCache.set(key, name);
    return name;
  }

  /** A shared float32 scalar constant (rank 0). */
  floatScalar(value: number): string {
    const key = `f32s:${value}`;
    const existing = this.constantCache.get(key);
    if (existing) return existing;
    const name = `const_f32s_${this.constantCache.size}`;
    this.initializer(name, TensorType.FLOAT, [], Float32Array.of(value));
    this.constantCache.set(key, name);
    return name;
  }

  /**
   * Writes the model. With `externalDataFile`, tensors above a small size go to that file
   * (next to the .onnx), as Hugging Face exports do; the .onnx then holds only the graph.
   */
  save(
    onnxPath: string,
    options: {
      externalDataFile?: string;
      /** Start a new numbered part (NAME_1, NAME_2, …) before a part would pass this size. */
      externalDataPartBytes?: number;
      opsets: { domain: string; version: number }[];
      producer: string;
    },
  ): void {
    fs.mkdirSync(path.dirname(onnxPath), { recursive: true });
    const tensors: onnx.ITensorProto[] = [];
    const dir = path.dirname(onnxPath);
    const partLimit = options.externalDataPartBytes ?? Infinity;
    let dataFd: number | undefined;
    let partName = options.externalDataFile;
    let partIndex = 0;
    let offset = 0;
    try {
      if (options.externalDataFile) dataFd = fs.openSync(path.join(dir, options.externalDataFile), 'w');
      for (const init of this.initializers) {
        if (dataFd !== undefined && options.externalDataFile && init.bytes.byteLength > INLINE_LIMIT_BYTES) {
          if (offset > 0 && offset + init.bytes.byteLength > partLimit) {
            // Large exports split their weights into numbered files next to the first one.
            fs.closeSync(dataFd);
            partIndex++;
            partName = `${options.externalDataFile}_${partIndex}`;
            dataFd = fs.openSync(path.join(dir, partName), 'w');
            offset = 0;
          }
          const padding = (EXTERNAL_ALIGNMENT - (offset % EXTERNAL_ALIGNMENT)) % EXTERNAL_ALIGNMENT;
          if (padding > 0) {
            fs.writeSync(dataFd, new Uint8Array(padding));
            offset += padding;
          }
          fs.writeSync(dataFd, init.bytes);
          tensors.push({
            name: init.name,
            dataType: init.dataType,
            dims: init.dims,
            dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
            externalData: [
              { key: 'location', value: partName },
              { key: 'offset', value: String(offset) },
              { key: 'length', value: String(init.bytes.byteLength) },
            ],
          });
          offset += init.bytes.byteLength;
        } else {
          tensors.push({ name: init.name, dataType: init.dataType, dims: init.dims, rawData: init.bytes });
        }
      }
    } finally {
      if (dataFd !== undefined) fs.closeSync(dataFd);
    }
    const model: onnx.IModelProto = {
      irVersion: 8,
      producerName: options.producer,
      opsetImport: options.opsets,
      graph: {
        name: this.graphName,
        node: this.nodes,
        initializer: tensors,
        input: this.inputs,
        output: this.outputs,
      },
    };
    const bytes = onnx.ModelProto.encode(model).finish();
    const temp = `${onnxPath}.tmp-${process.pid}`;
    fs.writeFileSync(temp, bytes);
    fs.renameSync(temp, onnxPath);
  }
}

function valueInfo(name: string, elemType: TensorTypeCode, dims: Dim[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function toAttribute(name: string, value: AttributeValue): onnx.IAttributeProto {
  const A = onnx.AttributeProto.AttributeType;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: use { float } for non-integers`);
    return { name, type: A.INT, i: value };
  }
  if (typeof value === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: A.INTS, ints: value };
  if ('float' in value) return { name, type: A.FLOAT, f: value.float };
  return { name, type: A.FLOATS, floats: value.floats };
}
