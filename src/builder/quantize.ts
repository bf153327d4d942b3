// Block-wise symmetric weight quantization in the layout of onnxruntime's MatMulNBits
// (com.microsoft): B is [N, kBlocks, blockSize · bits / 8] bytes, scales are [N · kBlocks]
// floats, and without a zero-point input the zero point is 2^(bits − 1). Weights keep the
// [out, in] = [N, K] layout, so a Hugging Face matrix is quantized as it is stored.

export type WeightBits = 4 | 8;

export interface NBitsWeight {
  bits: WeightBits;
  blockSize: number;
  n: number; // output features
  k: number; // input features
  kBlocks: number;
  packed: Uint8Array; // [n, kBlocks, blockSize * bits / 8]
  scales: Float32Array; // [n * kBlocks]
  /** The weights as the runtime sees them after dequantization: [n, k], for the oracle. */
  dequantized: Float32Array;
}

/** Block sizes MatMulNBits and GatherBlockQuantized take: powers of two of at least 16. */
export function isNBitsBlockSize(blockSize: number): boolean {
  return Number.isInteger(blockSize) && blockSize >= 16 && (blockSize & (blockSize - 1)) === 0;
}

/**
 * Quantizes W [n, k] (row-major, one row per output feature) in blocks of `blockSize` along k.
 * Each block gets scale = max|w| / (2^(bits−1) − 1); values round to the nearest level and
 * are clamped to the signed range, then stored offset by the zero point 2^(bits−1).
 */
export function quantizeNBits(weight: Float32Array, n: number, k: number, bits: WeightBits, blockSize = 32): NBitsWeight {
  checkShape('quantizeNBits', weight, n, k, blockSize);
  const maxLevel = (1 << (bits - 1)) - 1;
  return packBlocks(weight, n, k, bits, blockSize, -(maxLevel + 1), (row, scales) => {
    for (let block = 0; block < scales.length; block++) {
      const maxAbs = blockMaxAbs(weight, row, k, block, blockSize);
      // The runtime multiplies by the float32 scale, so quantize against that same value.
      scales[block] = Math.fround(maxAbs === 0 ? 1 : maxAbs / maxLevel);
    }
  });
}

/** Largest multiple of a row's unit an int4 block scale may be: 7 · 18 = 126 fits in int8. */
export const NESTED_SCALE_MULTIPLES = 18;

/** int4 weights that are exactly an int8 matrix with one scale per row (see quantizeInt4Nested). */
export interface NestedInt4Weight extends NBitsWeight {
  /** level · multiple of every weight, [n, k] row-major: the same matrix as int8 values. */
  int8: Int8Array;
  /** Each row's unit: weight = int8 · rowScales[row] (= level · scale of its block). */
  rowScales: Float32Array;
}

/**
 * int4 block quantization whose block scales are whole multiples (1 … 18) of one unit per
 * row, so that the same matrix is also exactly int8 values (level · multiple, |·| ≤ 126) with
 * one scale per row: MatMulNBits reads it as int4, and the integer GEMM of the prefill graph
 * reads the int8 form. Levels are −7 … 7. Each block takes the multiple (near max|w| / 7) with
 * the least squared error, which costs no accuracy against plain max|w| / 7 scales (on
 * Gaussian rows the error is 4–6 % lower, on heavy-tailed ones 0–5 %; scripts/nested-quant-error.ts).
 */
export function quantizeInt4Nested(weight: Float32Array, n: number, k: number, blockSize = 32): NestedInt4Weight {
  checkShape('quantizeInt4Nested', weight, n, k, blockSize);
  const kBlocks = Math.ceil(k / blockSize);
  const rowScales = new Float32Array(n);
  const multiples = new Uint8Array(n * kBlocks);
  const ideal = new Float64Array(kBlocks);
  const chooseScales = (row: number, scales: Float32Array): void => {
    let rowMax = 0;
    for (let block = 0; block < kBlocks; block++) {
      ideal[block] = blockMaxAbs(weight, row, k, block, blockSize) / 7;
      rowMax = Math.max(rowMax, ideal[block]!);
    }
    const unit = Math.fround(rowMax === 0 ? 1 : rowMax / NESTED_SCALE_MULTIPLES);
    rowScales[row] = unit;
    for (let block = 0; block < kBlocks; block++) {
      const start = block * blockSize;
      const end = Math.min(start + blockSize, k);
      const near = Math.max(1, Math.min(NESTED_SCALE_MULTIPLES, Math.round(ideal[block]! / unit)));
      let best = near;
      let bestError = Infinity;
      for (let m = Math.max(1, near - 1); m <= Math.min(NESTED_SCALE_MULTIPLES, near + 1); m++) {
        const scale = Math.fround(unit * m);
        let error = 0;
        for (let c = start; c < end; c++) {
          const w = weight[row * k + c]!;
          error += (Math.max(-7, Math.min(7, Math.round(w / scale))) * scale - w) ** 2;
        }
        if (error < bestError) {
          bestError = error;
          best = m;
        }
      }
      multiples[row * kBlocks + block] = best;
      scales[block] = Math.fround(unit * best);
    }
  };
  // The levels packBlocks wrote, times their block's multiple.
  const { levels, ...weightInt4 } = packBlocks(weight, n, k, 4, blockSize, -7, chooseScales, true);
  const int8 = new Int8Array(n * k);
  levels!.forEach((level, i) => {
    int8[i] = level * multiples[Math.floor(i / k) * kBlocks + Math.floor((i % k) / blockSize)]!;
  });
  return { ...weightInt4, int8, rowScales };
}

function checkShape(caller: string, weight: Float32Array, n: number, k: number, blockSize: number): void {
  if (weight.length !== n * k) throw new Error(`${caller}: ${weight.length} values for [${n}, ${k}]`);
  if (!isNBitsBlockSize(blockSize)) throw new RangeError(`${caller}: block size ${blockSize} is not a power of two of at least 16`);
}

function blockMaxAbs(weight: Float32Array, row: number, k: number, block: number, blockSize: number): number {
  let maxAbs = 0;
  for (let c = block * blockSize; c < Math.min((block + 1) * blockSize, k); c++) maxAbs = Math.max(maxAbs, Math.abs(weight[row * k + c]!));
  return maxAbs;
}

/**
 * Packs W [n, k] in MatMulNBits' layout with the block scales `chooseScales` writes for each
 * row (float32 values, as the runtime multiplies by them). Levels round to nearest and are
 * clamped to [minLevel, 2^(bits−1) − 1], then stored offset by the zero point 2^(bits−1).
 * With `keepLevels` the signed levels come back too, [n, k].
 */
function packBlocks(
  weight: Float32Array,
  n: number,
  k: number,
  bits: WeightBits,
  blockSize: number,
  minLevel: number,
  chooseScales: (row: number, scales: Float32Array) => void,
  keepLevels = false,
): NBitsWeight & { levels?: Int8Array } {
  const kBlocks = Math.ceil(k / blockSize);
  const blobSize = (blockSize * bits) / 8;
  const packed = new Uint8Array(n * kBlocks * blobSize);
  const scales = new Float32Array(n * kBlocks);
  const dequantized = new Float32Array(n * k);
  const levels = keepLevels ? new Int8Array(n * k) : undefined;
  const zeroPoint = 1 << (bits - 1);
  const maxLevel = zeroPoint - 1;
  const put = (blobBase: number, indexInBlock: number, stored: number): void => {
    if (bits === 8) packed[blobBase + indexInBlock] = stored;
    else {
      // Two 4-bit values per byte, the even element in the low nibble.
      const byteIndex = blobBase + (indexInBlock >> 1);
      packed[byteIndex] = packed[byteIndex]! | (indexInBlock & 1 ? stored << 4 : stored);
    }
  };
  for (let row = 0; row < n; row++) {
    const rowScales = scales.subarray(row * kBlocks, (row + 1) * kBlocks);
    chooseScales(row, rowScales);
    for (let block = 0; block < kBlocks; block++) {
      const start = block * blockSize;
      const end = Math.min(start + blockSize, k);
      const scale = rowScales[block]!;
      const blobBase = (row * kBlocks + block) * blobSize;
      for (let c = start; c < end; c++) {
        const level = Math.max(minLevel, Math.min(maxLevel, Math.round(weight[row * k + c]! / scale)));
        dequantized[row * k + c] = Math.fround(level * scale);
        if (levels) levels[row * k + c] = level;
        put(blobBase, c - start, level + zeroPoint);
      }
      // Padding past k (when k is not a multiple of the block size) holds the zero point,
      // which dequantizes to exactly 0.
      for (let c = end; c < start + blockSize; c++) put(blobBase, c - start, zeroPoint);
    }
  }
  return { bits, blockSize, n, k, kBlocks, packed, scales, dequantized, ...(levels ? { levels } : {}) };
}
