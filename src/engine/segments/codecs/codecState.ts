// Calibration state a codec needs besides the encoded bytes: today the residual-VQ codebooks.
// It is saved next to the segments as bytes with a header and a CRC-32, and a codec is
// constructed from it (createSegmentCodec). Little-endian layout:
//
//   0  magic    u32  'FKVQ'
//   4  version  u16  1
//   6  codec    u8   3 (rvq)
//   7  scale    u8   0 std, 1 rms (how the per-vector scale is computed)
//   8  layers   u16
//  10  headDim  u16
//  12  subDim   u16
//  14  stages   u16
//  16  entries  u32
//  20  scaleBits u8  16 (float16 scales) or 8 (log-scale codes over a calibrated range)
//  21  (zero)   3 bytes
//  24  scale ranges: per layer, keys (lo, hi) then values (lo, hi), log2, f32
//  …   for each layer: key codebooks then value codebooks, each [stages, entries, subDim] f32
//  …   crc32    u32  of every byte before it

import { crc32 } from './checksum';
import { CodecStateError } from './errors';

const MAGIC = 0x51564b46; // 'FKVQ'
const VERSION = 1;
const HEADER_BYTES = 24;
const MAX_ENTRIES = 1 << 16;

export type RvqScaleMode = 'std' | 'rms';

export interface RvqParameters {
  /** Channels per sub-vector; divides head_dim. */
  subDim: number;
  /** Residual stages K. */
  stages: number;
  /** Entries per stage codebook (indices take ceil(log2(entries)) bits). */
  entries: number;
  /** Per-vector scale: the standard deviation over head_dim as in the paper ('std'), or the root mean square ('rms'). */
  scale: RvqScaleMode;
  /**
   * Bits of each stored scale: 16 (float16, as in the paper) or 8 (ours: a code for log2(s) on
   * 256 even steps of a range calibrated per layer and kind; with head_dim 8 a 16-bit scale
   * costs as much as two 8-bit stage indices).
   */
  scaleBits: 8 | 16;
}

export interface RvqCodebooks extends RvqParameters {
  numLayers: number;
  headDim: number;
  /** log2 of the smallest and largest scale seen in calibration: [layer·4 + (0 keys | 2 values) + (0 lo | 1 hi)]. */
  scaleRanges: Float32Array;
  /** Per layer: [stages, entries, subDim] row-major; stage k at offset k·entries·subDim. */
  keys: Float32Array[];
  values: Float32Array[];
}

export interface CodecState {
  codec: 'rvq';
  rvq: RvqCodebooks;
}

/** Throws CodecStateError unless the codebooks' shape fields are consistent. */
export function checkRvqCodebooks(books: RvqCodebooks): void {
  const { numLayers, headDim, subDim, stages, entries } = books;
  const whole = (x: number, lo: number, hi: number): boolean => Number.isInteger(x) && x >= lo && x <= hi;
  if (!whole(numLayers, 1, 0xffff) || !whole(headDim, 1, 0xffff) || !whole(subDim, 1, headDim) || headDim % subDim !== 0 || !whole(stages, 1, 0xffff) || !whole(entries, 1, MAX_ENTRIES)) {
    throw new CodecStateError(`RVQ codebooks have an impossible shape (${numLayers} layers, head_dim ${headDim}, sub-vectors of ${subDim}, ${stages} stages of ${entries} entries); recalibrate them.`);
  }
  if (books.scale !== 'std' && books.scale !== 'rms') throw new CodecStateError(`RVQ codebooks have an unknown scale mode ${String(books.scale)}; recalibrate them.`);
  if (books.scaleBits !== 8 && books.scaleBits !== 16) throw new CodecStateError(`RVQ codebooks have ${String(books.scaleBits)}-bit scales, not 8 or 16; recalibrate them.`);
  const ranges = books.scaleRanges;
  if (!(ranges instanceof Float32Array) || ranges.length !== numLayers * 4 || !ranges.every(Number.isFinite) || ranges.some((lo, i) => i % 2 === 0 && !(ranges[i + 1]! >= lo))) {
    throw new CodecStateError(`RVQ codebooks have ${ranges?.length ?? 0} unusable scale range values where ${numLayers * 4} ordered finite ones were expected; recalibrate them.`);
  }
  const size = stages * entries * subDim;
  for (const list of [books.keys, books.values]) {
    if (list.length !== numLayers || list.some((book) => book.length !== size)) {
      throw new CodecStateError(`RVQ codebooks hold ${list.length} layers of ${list.map((b) => b.length).join('/')} floats where ${numLayers} of ${size} were expected; recalibrate them.`);
    }
  }
}

export function serializeCodecState(state: CodecState): Uint8Array {
  const books = state.rvq;
  checkRvqCodebooks(books);
  const size = books.stages * books.entries * books.subDim;
  const out = new Uint8Array(HEADER_BYTES + books.numLayers * 4 * 4 + books.numLayers * 2 * size * 4 + 4);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint16(4, VERSION, true);
  view.setUint8(6, 3);
  view.setUint8(7, books.scale === 'std' ? 0 : 1);
  view.setUint16(8, books.numLayers, true);
  view.setUint16(10, books.headDim, true);
  view.setUint16(12, books.subDim, true);
  view.setUint16(14, books.stages, true);
  view.setUint32(16, books.entries, true);
  view.setUint8(20, books.scaleBits);
  let at = HEADER_BYTES;
  for (const x of books.scaleRanges) {
    view.setFloat32(at, x, true);
    at += 4;
  }
  for (let layer = 0; layer < books.numLayers; layer++) {
    for (const book of [books.keys[layer]!, books.values[layer]!]) {
      for (let i = 0; i < size; i++, at += 4) view.setFloat32(at, book[i]!, true);
    }
  }
  view.setUint32(at, crc32(out.subarray(0, at)), true);
  return out;
}

/** Parses saved state; throws CodecStateError when it is truncated, corrupt or of another version. */
export function parseCodecState(bytes: Uint8Array): CodecState {
  const fail = (what: string): never => {
    throw new CodecStateError(`The codec state (codebooks) is unusable: ${what}. Delete it so that the codebooks are recalibrated and the segments rebuilt.`);
  };
  if (!(bytes instanceof Uint8Array) || bytes.length < HEADER_BYTES + 4) fail(`${bytes?.length ?? 0} bytes are too few`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) fail('it does not start with the state magic');
  const stored = view.getUint32(bytes.length - 4, true);
  if (crc32(bytes.subarray(0, bytes.length - 4)) !== stored) fail('its checksum does not match');
  if (view.getUint16(4, true) !== VERSION) fail(`format version ${view.getUint16(4, true)}, this build reads ${VERSION}`);
  if (view.getUint8(6) !== 3) fail(`codec id ${view.getUint8(6)}`);
  const scaleByte = view.getUint8(7);
  if (scaleByte > 1) fail(`scale mode ${scaleByte}`);
  const numLayers = view.getUint16(8, true);
  const headDim = view.getUint16(10, true);
  const subDim = view.getUint16(12, true);
  const stages = view.getUint16(14, true);
  const entries = view.getUint32(16, true);
  const scaleBits = view.getUint8(20);
  if (scaleBits !== 8 && scaleBits !== 16) fail(`${scaleBits}-bit scales`);
  const size = stages * entries * subDim;
  if (entries > MAX_ENTRIES || bytes.length !== HEADER_BYTES + numLayers * 4 * 4 + numLayers * 2 * size * 4 + 4) fail(`${bytes.length} bytes do not hold ${numLayers} layers of ${stages}×${entries}×${subDim} codebooks`);
  const keys: Float32Array[] = [];
  const values: Float32Array[] = [];
  let at = HEADER_BYTES;
  const scaleRanges = new Float32Array(numLayers * 4);
  for (let i = 0; i < scaleRanges.length; i++, at += 4) scaleRanges[i] = view.getFloat32(at, true);
  for (let layer = 0; layer < numLayers; layer++) {
    for (const list of [keys, values]) {
      const book = new Float32Array(size);
      for (let i = 0; i < size; i++, at += 4) book[i] = view.getFloat32(at, true);
      if (!book.every(Number.isFinite)) fail(`layer ${layer} has non-finite entries`);
      list.push(book);
    }
  }
  const rvq: RvqCodebooks = { numLayers, headDim, subDim, stages, entries, scale: scaleByte === 0 ? 'std' : 'rms', scaleBits: scaleBits as 8 | 16, scaleRanges, keys, values };
  try {
    checkRvqCodebooks(rvq);
  } catch (error) {
    fail((error as Error).message);
  }
  return { codec: 'rvq', rvq };
}
