// The header every encoded segment block starts with, shared by all codecs, and the checks
// decode runs before touching the payload. Little-endian, 24 bytes:
//
//   0  magic   u32  'FKVB'
//   4  codec   u8   1 float32, 2 int8, 3 rvq
//   5  version u8   the codec's payload format version
//   6  kind    u8   0 key, 1 value
//   7  flags   u8   codec-specific
//   8  layer   u16
//  10  heads   u16  numKvHeads
//  12  dim     u16  headDim
//  14  param   u16  codec-specific
//  16  rows    u32  DCT coefficient rows in the block
//  20  tag     u32  codec-specific (rvq: the checksum of the codebooks it was encoded with)
//
// The payload follows, laid out row by row so that the first r rows are a prefix.

import type { CodecName, SegmentBlock, SegmentKind } from '../codec';
import { CorruptSegmentBlockError } from './errors';

export const BLOCK_HEADER_BYTES = 24;
const MAGIC = 0x42564b46; // 'FKVB' read as a little-endian u32
const CODEC_IDS: Record<CodecName, number> = { float32: 1, int8: 2, rvq: 3 };
/** Sanity bounds: far above any model this project runs, low enough to reject garbage before allocating. */
const MAX_HEADS = 1024;
const MAX_DIM = 1024;
const MAX_ROWS = 1 << 24;

export interface BlockHeader {
  codec: CodecName;
  version: number;
  kind: SegmentKind;
  flags: number;
  layer: number;
  numKvHeads: number;
  headDim: number;
  /** Codec-specific (int8: key rows per scale group). */
  param: number;
  rows: number;
  tag: number;
}

export function writeBlockHeader(out: Uint8Array, header: BlockHeader): void {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint32(0, MAGIC, true);
  view.setUint8(4, CODEC_IDS[header.codec]);
  view.setUint8(5, header.version);
  view.setUint8(6, header.kind === 'key' ? 0 : 1);
  view.setUint8(7, header.flags);
  view.setUint16(8, header.layer, true);
  view.setUint16(10, header.numKvHeads, true);
  view.setUint16(12, header.headDim, true);
  view.setUint16(14, header.param, true);
  view.setUint32(16, header.rows, true);
  view.setUint32(20, header.tag >>> 0, true);
}

/** Checks a block before encoding: shape fields are whole, in range, and match the data length. */
export function checkBlock(block: SegmentBlock, layer: number, codec: CodecName): void {
  const { rows, numKvHeads, headDim, data } = block;
  const ok =
    Number.isInteger(rows) && rows >= 0 && rows <= MAX_ROWS &&
    Number.isInteger(numKvHeads) && numKvHeads >= 1 && numKvHeads <= MAX_HEADS &&
    Number.isInteger(headDim) && headDim >= 1 && headDim <= MAX_DIM &&
    Number.isInteger(layer) && layer >= 0 && layer <= 0xffff &&
    data.length === rows * numKvHeads * headDim;
  if (!ok) {
    throw new RangeError(`${codec} codec: a block of ${data.length} floats does not match ${numKvHeads} heads × ${rows} rows × ${headDim} dims at layer ${layer}`);
  }
}

/**
 * Reads and checks the header of encoded bytes written by `codec` for (`kind`, `layer`), and
 * resolves how many rows to decode. Throws CorruptSegmentBlockError on anything unexpected.
 */
export function readBlockHeader(bytes: Uint8Array, codec: CodecName, version: number, kind: SegmentKind, layer: number, rows?: number): BlockHeader & { decodeRows: number } {
  const fail = (what: string): never => {
    throw new CorruptSegmentBlockError(`A ${codec} segment block (${kind}s of layer ${layer}) is corrupt: ${what}. Delete the segment so that it is rebuilt.`);
  };
  if (!(bytes instanceof Uint8Array) || bytes.length < BLOCK_HEADER_BYTES) fail(`${bytes?.length ?? 0} bytes are fewer than the ${BLOCK_HEADER_BYTES}-byte header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) fail('it does not start with the block magic');
  const codecId = view.getUint8(4);
  if (codecId !== CODEC_IDS[codec]) {
    const other = Object.entries(CODEC_IDS).find(([, id]) => id === codecId)?.[0];
    fail(other ? `it was written by the ${other} codec` : `unknown codec id ${codecId}`);
  }
  const header: BlockHeader = {
    codec,
    version: view.getUint8(5),
    kind: view.getUint8(6) === 0 ? 'key' : 'value',
    flags: view.getUint8(7),
    layer: view.getUint16(8, true),
    numKvHeads: view.getUint16(10, true),
    headDim: view.getUint16(12, true),
    param: view.getUint16(14, true),
    rows: view.getUint32(16, true),
    tag: view.getUint32(20, true),
  };
  if (header.version !== version) fail(`format version ${header.version}, this build reads ${version}`);
  if (view.getUint8(6) > 1) fail(`kind byte ${view.getUint8(6)}`);
  if (header.kind !== kind) fail(`it holds ${header.kind}s`);
  if (header.layer !== layer) fail(`it holds layer ${header.layer}`);
  if (header.numKvHeads < 1 || header.numKvHeads > MAX_HEADS || header.headDim < 1 || header.headDim > MAX_DIM || header.rows > MAX_ROWS) {
    fail(`implausible shape ${header.numKvHeads} heads × ${header.rows} rows × ${header.headDim} dims`);
  }
  const decodeRows = rows ?? header.rows;
  if (!Number.isInteger(decodeRows) || decodeRows < 0 || decodeRows > header.rows) {
    throw new RangeError(`${codec} codec: cannot decode ${decodeRows} rows of a block that holds ${header.rows}`);
  }
  return { ...header, decodeRows };
}

/** Throws CorruptSegmentBlockError unless the bytes are exactly `expected` long. */
export function checkLength(bytes: Uint8Array, expected: number, header: BlockHeader): void {
  if (bytes.length !== expected) {
    throw new CorruptSegmentBlockError(
      `A ${header.codec} segment block (${header.kind}s of layer ${header.layer}, ${header.rows} rows) is corrupt: ${bytes.length} bytes where ${expected} were expected. Delete the segment so that it is rebuilt.`,
    );
  }
}

/** A SegmentBlock of zeros with the header's shape and `rows` rows. */
export function emptyBlock(header: BlockHeader, rows: number): SegmentBlock {
  return { rows, numKvHeads: header.numKvHeads, headDim: header.headDim, data: new Float32Array(header.numKvHeads * rows * header.headDim) };
}
