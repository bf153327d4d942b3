// Scalar 8-bit quantization as KIVI does it (Liu et al., "KIVI: A Tuning-Free Asymmetric 2bit
// Quantization for KV Cache", arXiv 2402.02750; docs/kv-compression.md §3): asymmetric uint8,
// x ≈ min + q · step with step = (max − min) / 255, so the error is at most step / 2.
//   Keys: per channel (one min/step per head·dim channel over the rows).
//   Values: per token (one min/step per row; by default over all heads' channels, KIVI's
//   channel group of 32 for stories260K's 4 heads × 8 dims, or per head).
// (ours) The rows here are DCT coefficients, not tokens: row 0 is sqrt(L) times the channel
// mean and the low rows carry most of the energy, so one per-channel range over all rows
// would be set by row 0 and waste the 8 bits on the small high rows. Keys therefore keep row 0
// as float32 by itself and quantize the other rows per channel in groups of `keyGroupRows`
// rows (0 = one group). scripts/codec-quality.ts measured the defaults.
//
// Payload after the header (blockFormat.ts), row-major so that r rows are a prefix; C = heads·dim,
// channel c = h·dim + d:
//   keys:   [row 0 as C float32 if flag 1] then per group: C × (min f32, step f32), rows × C u8
//   values: per row: G × (min f32, step f32), then C u8 (G = 1, or heads if flag 2)

import type { SegmentBlock, SegmentCodec, SegmentKind } from '../codec';
import { BLOCK_HEADER_BYTES, checkBlock, checkLength, emptyBlock, readBlockHeader, writeBlockHeader, type BlockHeader } from './blockFormat';
import { CorruptSegmentBlockError } from './errors';

const VERSION = 1;
const FLAG_KEY_ROW_ZERO = 1;
const FLAG_VALUE_PER_HEAD = 2;

export interface Int8CodecOptions {
  /** Keys: keep coefficient row 0 as float32 outside the quantized rows (default true). */
  keyRowZeroSeparate?: boolean;
  /** Keys: rows sharing one per-channel min/step (default 0: all rows, as KIVI per channel). */
  keyGroupRows?: number;
  /** Values: one min/step per row over all heads ('row', default) or per row and head ('head'). */
  valueGroup?: 'row' | 'head';
}

export const INT8_DEFAULTS: Required<Int8CodecOptions> = { keyRowZeroSeparate: true, keyGroupRows: 0, valueGroup: 'row' };

/** Quantizes n values read at data[offset + i·stride] with one min/step; writes min, step and the codes. */
function quantizeGroup(data: Float32Array, offset: number, stride: number, n: number, view: DataView, paramAt: number, codes: Uint8Array, codeAt: number, codeStride: number): void {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = data[offset + i * stride]!;
    if (x < min) min = x;
    if (x > max) max = x;
  }
  if (n === 0 || !Number.isFinite(min) || !Number.isFinite(max)) {
    // Nothing to scale (or non-finite input): keep what float32 can, codes 0.
    min = n === 0 ? 0 : Number.isFinite(min) ? min : 0;
    max = min;
  }
  const step = Math.fround((max - min) / 255);
  view.setFloat32(paramAt, min, true);
  view.setFloat32(paramAt + 4, step, true);
  for (let i = 0; i < n; i++) {
    const x = data[offset + i * stride]!;
    const q = step > 0 ? Math.round((x - min) / step) : 0;
    codes[codeAt + i * codeStride] = q < 0 ? 0 : q > 255 ? 255 : q;
  }
}

export class Int8Codec implements SegmentCodec {
  readonly name = 'int8';
  readonly options: Required<Int8CodecOptions>;

  constructor(options: Int8CodecOptions = {}) {
    this.options = { ...INT8_DEFAULTS, ...options };
    const g = this.options.keyGroupRows;
    if (!Number.isInteger(g) || g < 0 || g > 0xffff) throw new RangeError(`Int8Codec: keyGroupRows must be a whole number in [0, 65535] (got ${g})`);
  }

  encode(block: SegmentBlock, kind: SegmentKind, layer: number): Uint8Array {
    checkBlock(block, layer, this.name);
    const { rows, numKvHeads: heads, headDim: dim } = block;
    const flags = kind === 'key' ? (this.options.keyRowZeroSeparate ? FLAG_KEY_ROW_ZERO : 0) : this.options.valueGroup === 'head' ? FLAG_VALUE_PER_HEAD : 0;
    const param = kind === 'key' ? this.options.keyGroupRows : 0;
    const header: BlockHeader = { codec: this.name, version: VERSION, kind, flags, param, layer, numKvHeads: heads, headDim: dim, rows, tag: 0 };
    const out = new Uint8Array(payloadBytes(header, rows).total);
    writeBlockHeader(out, header);
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    if (kind === 'key') encodeKeys(block, header, view, out);
    else encodeValues(block, header, view, out);
    return out;
  }

  decode(bytes: Uint8Array, kind: SegmentKind, layer: number, rows?: number): SegmentBlock {
    const header = readBlockHeader(bytes, this.name, VERSION, kind, layer, rows);
    const known = kind === 'key' ? FLAG_KEY_ROW_ZERO : FLAG_VALUE_PER_HEAD;
    if ((header.flags & ~known) !== 0 || (kind === 'value' && header.param !== 0)) {
      throw new CorruptSegmentBlockError(`An int8 segment block (${kind}s of layer ${layer}) is corrupt: flags ${header.flags}, parameter ${header.param}. Delete the segment so that it is rebuilt.`);
    }
    checkLength(bytes, payloadBytes(header, header.rows).total, header);
    const block = emptyBlock(header, header.decodeRows);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (kind === 'key') decodeKeys(block, header, view, bytes);
    else decodeValues(block, header, view, bytes);
    return block;
  }
}

/** Byte sizes of the layout for `rows` rows (the whole block when rows = header.rows). */
function payloadBytes(header: BlockHeader, rows: number): { total: number; rowZero: number; group: number; quantizedRows: number } {
  const C = header.numKvHeads * header.headDim;
  if (header.kind === 'key') {
    const rowZero = header.flags & FLAG_KEY_ROW_ZERO && rows > 0 ? 1 : 0;
    const quantizedRows = rows - rowZero;
    const group = header.param === 0 ? Math.max(quantizedRows, 1) : header.param;
    const groups = Math.ceil(quantizedRows / group);
    return { total: BLOCK_HEADER_BYTES + rowZero * C * 4 + groups * C * 8 + quantizedRows * C, rowZero, group, quantizedRows };
  }
  const paramsPerRow = header.flags & FLAG_VALUE_PER_HEAD ? header.numKvHeads : 1;
  return { total: BLOCK_HEADER_BYTES + rows * (paramsPerRow * 8 + C), rowZero: 0, group: 1, quantizedRows: rows };
}

function encodeKeys(block: SegmentBlock, header: BlockHeader, view: DataView, out: Uint8Array): void {
  const { rows, numKvHeads: heads, headDim: dim, data } = block;
  const C = heads * dim;
  const { rowZero, group, quantizedRows } = payloadBytes(header, rows);
  let at = BLOCK_HEADER_BYTES;
  if (rowZero) {
    for (let h = 0; h < heads; h++) for (let d = 0; d < dim; d++, at += 4) view.setFloat32(at, data[h * rows * dim + d]!, true);
  }
  for (let first = 0; first < quantizedRows; first += group) {
    const n = Math.min(group, quantizedRows - first);
    const codesAt = at + C * 8;
    for (let h = 0; h < heads; h++) {
      for (let d = 0; d < dim; d++) {
        const c = h * dim + d;
        // Channel c of rows rowZero + first … : stride dim in the [heads, rows, dim] layout.
        quantizeGroup(data, (h * rows + rowZero + first) * dim + d, dim, n, view, at + c * 8, out, codesAt + c, C);
      }
    }
    at = codesAt + n * C;
  }
}

function decodeKeys(block: SegmentBlock, header: BlockHeader, view: DataView, bytes: Uint8Array): void {
  const { numKvHeads: heads, headDim: dim } = header;
  const rows = block.rows;
  const C = heads * dim;
  const { rowZero, group, quantizedRows } = payloadBytes(header, header.rows);
  let at = BLOCK_HEADER_BYTES;
  if (rowZero) {
    for (let h = 0; h < heads; h++) {
      for (let d = 0; d < dim; d++, at += 4) if (rows > 0) block.data[h * rows * dim + d] = view.getFloat32(at, true);
    }
  }
  const wanted = Math.min(quantizedRows, rows - rowZero);
  for (let first = 0; first < wanted; first += group) {
    const n = Math.min(group, quantizedRows - first);
    const codesAt = at + C * 8;
    const used = Math.min(n, wanted - first);
    for (let c = 0; c < C; c++) {
      const min = view.getFloat32(at + c * 8, true);
      const step = view.getFloat32(at + c * 8 + 4, true);
      const h = Math.floor(c / dim);
      const d = c - h * dim;
      for (let i = 0; i < used; i++) {
        block.data[(h * rows + rowZero + first + i) * dim + d] = min + bytes[codesAt + i * C + c]! * step;
      }
    }
    at = codesAt + n * C;
  }
}

function encodeValues(block: SegmentBlock, header: BlockHeader, view: DataView, out: Uint8Array): void {
  const { rows, numKvHeads: heads, headDim: dim, data } = block;
  const C = heads * dim;
  const perHead = (header.flags & FLAG_VALUE_PER_HEAD) !== 0;
  const params = perHead ? heads : 1;
  const row = new Float32Array(C);
  let at = BLOCK_HEADER_BYTES;
  for (let r = 0; r < rows; r++) {
    for (let h = 0; h < heads; h++) row.set(data.subarray((h * rows + r) * dim, (h * rows + r + 1) * dim), h * dim);
    const codesAt = at + params * 8;
    if (perHead) for (let h = 0; h < heads; h++) quantizeGroup(row, h * dim, 1, dim, view, at + h * 8, out, codesAt + h * dim, 1);
    else quantizeGroup(row, 0, 1, C, view, at, out, codesAt, 1);
    at = codesAt + C;
  }
}

function decodeValues(block: SegmentBlock, header: BlockHeader, view: DataView, bytes: Uint8Array): void {
  const { numKvHeads: heads, headDim: dim } = header;
  const rows = block.rows;
  const C = heads * dim;
  const params = header.flags & FLAG_VALUE_PER_HEAD ? heads : 1;
  const span = C / params;
  let at = BLOCK_HEADER_BYTES;
  for (let r = 0; r < rows; r++) {
    const codesAt = at + params * 8;
    for (let c = 0; c < C; c++) {
      const p = Math.floor(c / span);
      const min = view.getFloat32(at + p * 8, true);
      const step = view.getFloat32(at + p * 8 + 4, true);
      const h = Math.floor(c / dim);
      block.data[(h * rows + r) * dim + (c - h * dim)] = min + bytes[codesAt + c]! * step;
    }
    at = codesAt + C;
  }
}
