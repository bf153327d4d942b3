// The machine limits the speed benchmark compares against: decode is bound by memory bandwidth
// (every weight and every cache row attended to is read once per generated token), prefill by
// compute (2 operations per weight per token, plus attention). The benchmark measures the
// machine's int8 rate and bandwidth (machineLimits.ts); the two constants are the fallback when
// it cannot (no C compiler): earlier measurements on these machines, about 38 GB/s of memory
// bandwidth and about 340 GFLOP/s of float32 MatMul in onnxruntime on 2 threads.

import type { DecoderConfig } from '../model/modelConfig';

export const MACHINE_BANDWIDTH_BYTES_PER_SECOND = 38e9;
export const MACHINE_MATMUL_FLOPS_PER_SECOND = 340e9;

/** Weights that take part in a matrix product for every token (the classifier included). */
export function matmulParameters(config: DecoderConfig): number {
  const { hiddenSize: H, intermediateSize: I, numHeads, numKvHeads, headDim, vocabSize, numLayers } = config;
  const attention = H * numHeads * headDim * 2 + H * numKvHeads * headDim * 2;
  const mlp = 3 * H * I;
  return numLayers * (attention + mlp) + vocabSize * H;
}

/** FLOPs of one token that attends to `attendedRows` cache rows: 2·matmul weights + 4·layers·heads·headDim·rows. */
export function flopsPerToken(config: DecoderConfig, attendedRows: number): number {
  return 2 * matmulParameters(config) + 4 * config.numLayers * config.numHeads * config.headDim * attendedRows;
}

/** The prefill rate compute allows: tokens/s ≤ FLOP/s ÷ FLOPs per token. */
export function prefillComputeLimit(config: DecoderConfig, meanAttendedRows: number, flopsPerSecond = MACHINE_MATMUL_FLOPS_PER_SECOND): number {
  return flopsPerSecond / flopsPerToken(config, meanAttendedRows);
}

/**
 * The decode rate bandwidth allows: tokens/s ≤ bandwidth ÷ (weight bytes + cache bytes read).
 * `weightBytes` is the model's weights as stored (the graph's initializers: float32 or packed
 * int4 with scales; a tied embedding is read whole by the classifier).
 */
export function decodeBandwidthLimit(weightBytes: number, cacheBytesRead: number, bandwidth = MACHINE_BANDWIDTH_BYTES_PER_SECOND): number {
  return bandwidth / (weightBytes + cacheBytesRead);
}

/** Cache rows the tokens of a chunk attend to in all: the chunk's n tokens end at row `rowsAfter` (exclusive). */
export function attendedRowsOfChunk(chunkTokens: number, rowsAfter: number): number {
  return chunkTokens * rowsAfter - (chunkTokens * (chunkTokens - 1)) / 2;
}
