// Residual vector quantization (Kumar, "Residual vector quantization for KV cache compression
// in large language model", arXiv 2410.15704; docs/kv-compression.md §2), applied to the DCT
// coefficient rows of a stored segment.
//   Per row and head: s = the standard deviation of the head_dim values (or their RMS, a state
//   option), s = 1 if 0; u = x / s, no mean subtraction. s is stored as float16 (or as an
//   8-bit log code, a state option) and the rounded value is the one divided by, so decode
//   multiplies by exactly what encode used.
//   u is split into G = head_dim / subDim sub-vectors: values contiguous chunks, keys strided
//   groups (group b holds channels b, b+G, b+2G, …).
//   Each sub-vector is encoded greedily through K stages: index i_k = the entry of stage k's
//   codebook nearest to what stages < k left; decode s · Σ_k C_k[i_k].
//   Codebooks (codecState.ts) are per layer and kind, shared by all heads and groups.
// Payload after the header (blockFormat.ts; the header's tag is the codebooks' CRC, so bytes
// encoded with other codebooks are refused): one bit stream, least significant bit first,
// row-major: for each row, for each head: the scale (16 or 8 bits, see codecState.ts), then for each group, for each stage,
// a ceil(log2(entries))-bit index. The first r rows are therefore a prefix of the stream.

import { float32ToFloat16Bits } from '../../floatFormats';
import type { SegmentBlock, SegmentCodec, SegmentKind } from '../codec';
import { nearestEntry } from '../kmeans';
import { BLOCK_HEADER_BYTES, checkBlock, checkLength, emptyBlock, readBlockHeader, writeBlockHeader } from './blockFormat';
import { crc32 } from './checksum';
import { checkRvqCodebooks, serializeCodecState, type RvqCodebooks, type RvqScaleMode } from './codecState';
import { CodecStateError, CorruptSegmentBlockError } from './errors';

const VERSION = 1;
const MAX_FLOAT16 = 65504;

/** Bits one stage index takes. */
export function indexBits(entries: number): number {
  return Math.max(1, Math.ceil(Math.log2(entries)));
}

/** Channel of sub-vector element j of group b: keys strided (b + j·G), values contiguous (b·subDim + j). */
export function groupChannel(kind: SegmentKind, b: number, j: number, groups: number, subDim: number): number {
  return kind === 'key' ? b + j * groups : b * subDim + j;
}

/** The per-vector scale of x[offset … offset + dim) before float16 rounding: std or RMS, 1 if zero or not finite. */
export function vectorScale(x: ArrayLike<number>, offset: number, dim: number, mode: RvqScaleMode): number {
  let sum = 0;
  let squares = 0;
  for (let d = 0; d < dim; d++) {
    const v = x[offset + d]!;
    sum += v;
    squares += v * v;
  }
  const mean = sum / dim;
  const variance = mode === 'std' ? Math.max(0, squares / dim - mean * mean) : squares / dim;
  const s = Math.sqrt(variance);
  return s > 0 && Number.isFinite(s) ? s : 1;
}

const f16Value = new Float32Array(1);
/** float16 bits of a positive scale, clamped to the float16 range and never 0. */
function scaleBits(s: number): number {
  const bits = float32ToFloat16Bits(Math.min(Math.max(s, 2 ** -24), MAX_FLOAT16));
  return bits === 0 ? 1 : bits;
}
function halfToFloat(bits: number): number {
  // One float16 decoded by hand, rounded to float32 (the table in floatFormats is for arrays).
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) f16Value[0] = sign * mantissa * 2 ** -24;
  else if (exponent === 0x1f) f16Value[0] = mantissa ? NaN : sign * Infinity;
  else f16Value[0] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  return f16Value[0];
}

/** How one layer's key or value scales are stored: `bits` per scale, encode s → code, decode code → s. */
export interface ScaleCoder {
  bits: number;
  encode(s: number): number;
  decode(code: number): number;
}

/** 16 bits: float16 (clamped to its positive range, never 0). */
const FLOAT16_SCALES: ScaleCoder = { bits: 16, encode: scaleBits, decode: halfToFloat };

/** 8 bits: code c ↦ 2^(lo + c·(hi − lo)/255), the nearest code to log2(s), clamped to the range. */
function logScaleCoder(lo: number, hi: number): ScaleCoder {
  const step = (hi - lo) / 255;
  const table = Float32Array.from({ length: 256 }, (_, c) => 2 ** (lo + c * step));
  return {
    bits: 8,
    encode: (s) => (step > 0 ? Math.min(255, Math.max(0, Math.round((Math.log2(s) - lo) / step))) : 0),
    decode: (code) => table[code]!,
  };
}

/** The scale coder of a layer and kind under these codebooks. */
export function scaleCoderOf(books: Pick<RvqCodebooks, 'scaleBits' | 'scaleRanges'>, kind: SegmentKind, layer: number): ScaleCoder {
  if (books.scaleBits === 16) return FLOAT16_SCALES;
  const at = layer * 4 + (kind === 'key' ? 0 : 2);
  return logScaleCoder(books.scaleRanges[at]!, books.scaleRanges[at + 1]!);
}

/** Writes bit fields least significant bit first. */
class BitWriter {
  private at = 0;
  constructor(private readonly out: Uint8Array, private readonly offset: number) {}
  write(value: number, bits: number): void {
    for (let i = 0; i < bits; i++, this.at++) {
      if ((value >>> i) & 1) this.out[this.offset + (this.at >>> 3)]! |= 1 << (this.at & 7);
    }
  }
}

class BitReader {
  private at = 0;
  constructor(private readonly bytes: Uint8Array, private readonly offset: number) {}
  read(bits: number): number {
    let value = 0;
    for (let i = 0; i < bits; i++, this.at++) value |= ((this.bytes[this.offset + (this.at >>> 3)]! >>> (this.at & 7)) & 1) << i;
    return value >>> 0;
  }
}

export class RvqCodec implements SegmentCodec {
  readonly name = 'rvq';
  /** CRC-32 of the serialized codebooks (as codecState.ts stores it); written into every block's header. */
  readonly fingerprint: number;
  private readonly bits: number;
  private readonly groups: number;

  constructor(readonly codebooks: RvqCodebooks) {
    checkRvqCodebooks(codebooks);
    // The state's own checksum (its last 4 bytes); a CRC over bytes that end in their CRC would be a constant.
    const state = serializeCodecState({ codec: 'rvq', rvq: codebooks });
    this.fingerprint = crc32(state.subarray(0, state.length - 4));
    this.bits = indexBits(codebooks.entries);
    this.groups = codebooks.headDim / codebooks.subDim;
  }

  /** Bits one row takes: per head a scale and groups × stages indices. */
  private rowBits(heads: number): number {
    return heads * (this.codebooks.scaleBits + this.groups * this.codebooks.stages * this.bits);
  }

  private checkShape(kind: SegmentKind, layer: number, headDim: number): Float32Array {
    const books = this.codebooks;
    if (headDim !== books.headDim || layer >= books.numLayers) {
      throw new CodecStateError(`The RVQ codebooks were calibrated for ${books.numLayers} layers of head_dim ${books.headDim}, not layer ${layer} of head_dim ${headDim}; recalibrate them for this model.`);
    }
    return (kind === 'key' ? books.keys : books.values)[layer]!;
  }

  encode(block: SegmentBlock, kind: SegmentKind, layer: number): Uint8Array {
    checkBlock(block, layer, this.name);
    const { rows, numKvHeads: heads, headDim: dim, data } = block;
    const book = this.checkShape(kind, layer, dim);
    const { subDim, stages, entries, scale } = this.codebooks;
    const G = this.groups;
    const scales = scaleCoderOf(this.codebooks, kind, layer);
    const out = new Uint8Array(BLOCK_HEADER_BYTES + Math.ceil((rows * this.rowBits(heads)) / 8));
    writeBlockHeader(out, { codec: this.name, version: VERSION, kind, flags: 0, param: 0, layer, numKvHeads: heads, headDim: dim, rows, tag: this.fingerprint });
    const writer = new BitWriter(out, BLOCK_HEADER_BYTES);
    const residual = new Float32Array(subDim);
    const nearest = { index: 0, distance: 0 };
    const stageSize = entries * subDim;
    for (let r = 0; r < rows; r++) {
      for (let h = 0; h < heads; h++) {
        const offset = (h * rows + r) * dim;
        const code = scales.encode(vectorScale(data, offset, dim, scale));
        writer.write(code, scales.bits);
        const s = scales.decode(code);
        for (let b = 0; b < G; b++) {
          for (let j = 0; j < subDim; j++) residual[j] = data[offset + groupChannel(kind, b, j, G, subDim)]! / s;
          for (let k = 0; k < stages; k++) {
            const stage = book.subarray(k * stageSize, (k + 1) * stageSize);
            nearestEntry(stage, entries, subDim, residual, 0, nearest);
            writer.write(nearest.index, this.bits);
            const base = nearest.index * subDim;
            for (let j = 0; j < subDim; j++) residual[j] = residual[j]! - stage[base + j]!;
          }
        }
      }
    }
    return out;
  }

  decode(bytes: Uint8Array, kind: SegmentKind, layer: number, rows?: number): SegmentBlock {
    const header = readBlockHeader(bytes, this.name, VERSION, kind, layer, rows);
    if (header.tag !== this.fingerprint) {
      throw new CorruptSegmentBlockError(`An RVQ segment block (${kind}s of layer ${layer}) was encoded with other codebooks (${header.tag.toString(16)}, these are ${this.fingerprint.toString(16)}). Delete the segment so that it is rebuilt.`);
    }
    const { numKvHeads: heads, headDim: dim, decodeRows } = header;
    const book = this.checkShape(kind, layer, dim);
    checkLength(bytes, BLOCK_HEADER_BYTES + Math.ceil((header.rows * this.rowBits(heads)) / 8), header);
    const { subDim, stages, entries } = this.codebooks;
    const G = this.groups;
    const scales = scaleCoderOf(this.codebooks, kind, layer);
    const block = emptyBlock(header, decodeRows);
    const reader = new BitReader(bytes, BLOCK_HEADER_BYTES);
    const stageSize = entries * subDim;
    const sum = new Float64Array(subDim);
    for (let r = 0; r < decodeRows; r++) {
      for (let h = 0; h < heads; h++) {
        const offset = (h * decodeRows + r) * dim;
        const s = scales.decode(reader.read(scales.bits));
        if (!(s > 0) || !Number.isFinite(s)) {
          throw new CorruptSegmentBlockError(`An RVQ segment block (${kind}s of layer ${layer}) is corrupt: row ${r} head ${h} has scale ${s}. Delete the segment so that it is rebuilt.`);
        }
        for (let b = 0; b < G; b++) {
          sum.fill(0);
          for (let k = 0; k < stages; k++) {
            const index = reader.read(this.bits);
            if (index >= entries) {
              throw new CorruptSegmentBlockError(`An RVQ segment block (${kind}s of layer ${layer}) is corrupt: index ${index} of a ${entries}-entry codebook. Delete the segment so that it is rebuilt.`);
            }
            const base = k * stageSize + index * subDim;
            for (let j = 0; j < subDim; j++) sum[j] = sum[j]! + book[base + j]!;
          }
          for (let j = 0; j < subDim; j++) block.data[offset + groupChannel(kind, b, j, G, subDim)] = s * sum[j]!;
        }
      }
    }
    return block;
  }
}
