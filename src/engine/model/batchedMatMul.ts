// A batched matrix product on onnxruntime, for work the engine does outside the decoder graph
// (the FreqKV transform of every layer's cache rows at once, docs/kv-compression.md §1): a one-node
// graph Y = MatMul(M, X) with M [rows, inner] broadcast over X [batch, inner, width]. MLAS runs
// it far faster than a JavaScript loop. Besides decoderSession.ts, the only module that imports
// onnxruntime-node.

import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import type { BatchedMultiply } from '../kv/compressor';
import { ModelRuntimeError } from './errors';

function matMulModel(): Uint8Array {
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const info = (name: string, dims: string[]): onnx.IValueInfoProto => ({
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((dimParam) => ({ dimParam })) } } },
  });
  return onnx.ModelProto.encode({
    irVersion: 8,
    producerName: 'freqkv',
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'batched_matmul',
      node: [{ name: 'matmul', opType: 'MatMul', input: ['m', 'x'], output: ['y'] }],
      input: [info('m', ['rows', 'inner']), info('x', ['batch', 'inner', 'width'])],
      output: [info('y', ['batch', 'rows', 'width'])],
    },
  }).finish();
}

/** Opens the one-node session; `threads` as for the decoder (0: one per core). */
export async function createBatchedMultiply(threads: number): Promise<{ multiply: BatchedMultiply; release: () => Promise<void> }> {
  const session = await ort.InferenceSession.create(matMulModel(), { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', logSeverityLevel: 3 });
  const multiply: BatchedMultiply = async (m, rows, inner, x, batch, width) => {
    if (m.length !== rows * inner || x.length !== batch * inner * width) {
      throw new ModelRuntimeError(`batched MatMul: ${m.length} and ${x.length} elements for [${rows}, ${inner}] × [${batch}, ${inner}, ${width}]`);
    }
    const y = new Float32Array(batch * rows * width);
    await session.run({ m: new ort.Tensor('float32', m, [rows, inner]), x: new ort.Tensor('float32', x, [batch, inner, width]) }, { y: new ort.Tensor('float32', y, [batch, rows, width]) });
    return y;
  };
  return { multiply, release: () => session.release() };
}
