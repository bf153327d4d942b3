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

/**
 * Quantizes W [n, k] (row-major, one row per output feature) in blocks of `blockSize` along k.
 * Each block gets scale = max|w| / (2^(bits−1) − 1); values round to the nearest level and
 * are clamped to the signed range, then stored offset by the zero point 2^(bits−1).
 */
/** Block sizes MatMulNBits and GatherBlockQuantized take: powers of two of at least 16. */
export function isNBitsBlockSize(blockSize: number): boolean {
  return Number.isInteger(blockSize) && blockSize >= 16 && (blockSize & (blockSize - 1)) === 0;
}

export function quantizeNBits(weight: Float32Array, n: number, k: number, bits: WeightBits, blockSize = 32): NBitsWeight {
  if (weight.length !== n * k) throw new Error(`quantizeNBits: ${weight.length} values for [${n}, ${k}]`);
  if (!isNBitsBlockSize(blockSize)) throw new RangeError(`quantizeNBits: block size ${blockSize} is not a power of two of at least 16`);
  const kBlocks = Math.ceil(k / blockSize);
  const blobSize = (blockSize * bits) / 8;
  const packed = new Uint8Array(n * kBlocks * blobSize);
  const scales = new Float32Array(n * kBlocks);
  const dequantized = new Float32Array(n * k);
  const zeroPoint = 1 << (bits - 1);
  const maxLevel = zeroPoint - 1;
  for (let row = 0; row < n; row++) {
    for (let block = 0; block < kBlocks; block++) {
      const start = block * blockSize;
      const end = Math.min(start + blockSize, k);
      let maxAbs = 0;
      for (let c = start; c < end; c++) maxAbs = Math.max(maxAbs, Math.abs(weight[row * k + c] as number));
      // The runtime multiplies by the float32 scale, so quantize against that same value.
      const scale = Math.fround(maxAbs === 0 ? 1 : maxAbs / maxLevel);
      scales[row * kBlocks + block] = scale;
      const blobBase = (row * kBlocks + block) * blobSize;
      for (let c = start; c < end; c++) {
        const w = weight[row * k + c] as number;
        const level = Math.max(-zeroPoint, Math.min(maxLevel, Math.round(w / scale)));
        const stored = level + zeroPoint;
        dequantized[row * k + c] = Math.fround(level * scale);
        const indexInBlock = c - start;
        if (bits === 8) {
          packed[blobBase + indexInBlock] = stored;
        } else {
          // Two 4-bit values per byte, the even element in the low nibble.
          const byteIndex = blobBase + (indexInBlock >> 1);
          packed[byteIndex] = (packed[byteIndex] as number) | (indexInBlock & 1 ? stored << 4 : stored);
        }
      }
      // Padding past k (when k is not a multiple of the block size) holds the zero point,
      // which dequantizes to exactly 0.
      for (let c = end; c < start + blockSize; c++) {
        const indexInBlock = c - start;
        if (bits === 8) packed[blobBase + indexInBlock] = zeroPoint;
        else {
          const byteIndex = blobBase + (indexInBlock >> 1);
          packed[byteIndex] = (packed[byteIndex] as number) | (indexInBlock & 1 ? zeroPoint << 4 : zeroPoint);
        }
      }
    }
  }
  return { bits, blockSize, n, k, kBlocks, packed, scales, dequantized };
}
