// The bytes of one stored segment file:
//
//   "FKVSEG01" | u32 LE header length | header (JSON, UTF-8) | encoded blocks | SHA-256 of all before
//
// The header names what the segment is (model, settings, path, content hash: a segment is only
// used when all match) and its shape; the blocks are layer 0 keys, layer 0 values, layer 1 keys, …
// each as the codec encoded it: the first `rows` DCT coefficients of a segment of `sourceRows`
// rows (segmentBuilder.ts, storedCoefficientRows: long files keep fewer coefficients than rows).
// Version 2 added sourceRows; a version 1 file is refused and rebuilt. Reading checks the magic,
// the lengths and the checksum, so a truncated or bit-flipped file is refused
// (SegmentCorruptError) and the caller rebuilds it.

import { createHash } from 'node:crypto';
import { FreqKvError } from '../errors';
import type { CodecName } from './codec';

export const SEGMENT_MAGIC = 'FKVSEG01';
export const SEGMENT_FORMAT_VERSION = 2;
const CHECKSUM_BYTES = 32;

/** A segment file that is truncated, altered or not a segment at all; it is rebuilt. */
export class SegmentCorruptError extends FreqKvError {}

export interface SegmentHeader {
  version: number;
  /** Model identity (modelIdentity.ts). */
  model: string;
  /** Settings identity: codec, prefix, prefill cache settings. */
  settings: string;
  path: string;
  /** SHA-256 (hex) of the segment text. */
  contentHash: string;
  /** Tokens of the segment text. */
  tokens: number;
  /** K: rows (DCT coefficients) stored, the most rows the segment is rebuilt at. */
  rows: number;
  /** L: rows of the segment the coefficients are of (K ≤ L; the rebuild's scale is sqrt(L'/L)). */
  sourceRows: number;
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  codec: CodecName;
  /** Byte length of each block: layer 0 key, layer 0 value, layer 1 key, … */
  blockBytes: number[];
}

export function encodeSegmentFile(header: SegmentHeader, blocks: readonly Uint8Array[]): Uint8Array {
  const json = Buffer.from(JSON.stringify({ ...header, blockBytes: blocks.map((b) => b.length) }), 'utf8');
  const body = 8 + 4 + json.length + blocks.reduce((n, b) => n + b.length, 0);
  const out = new Uint8Array(body + CHECKSUM_BYTES);
  out.set(Buffer.from(SEGMENT_MAGIC, 'latin1'), 0);
  new DataView(out.buffer).setUint32(8, json.length, true);
  out.set(json, 12);
  let at = 12 + json.length;
  for (const b of blocks) {
    out.set(b, at);
    at += b.length;
  }
  out.set(createHash('sha256').update(out.subarray(0, body)).digest(), body);
  return out;
}

export interface SegmentFileContents {
  header: SegmentHeader;
  /** Views into the file's bytes. */
  blocks: Uint8Array[];
}

export function decodeSegmentFile(bytes: Uint8Array, where = 'segment file'): SegmentFileContents {
  const fail = (why: string): never => {
    throw new SegmentCorruptError(`${where} ${why}; it will be rebuilt.`);
  };
  if (bytes.length < 12 + CHECKSUM_BYTES) fail(`is truncated (${bytes.length} bytes)`);
  if (Buffer.from(bytes.subarray(0, 8)).toString('latin1') !== SEGMENT_MAGIC) fail('does not start with the segment magic');
  const body = bytes.length - CHECKSUM_BYTES;
  const digest = createHash('sha256').update(bytes.subarray(0, body)).digest();
  if (!digest.equals(bytes.subarray(body))) fail('fails its checksum (truncated or altered)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(8, true);
  if (12 + headerLength > body) fail('has a header longer than the file');
  let header: SegmentHeader;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(12, 12 + headerLength)).toString('utf8')) as SegmentHeader;
  } catch {
    return fail('has a header that is not JSON');
  }
  if (header.version !== SEGMENT_FORMAT_VERSION) fail(`has format version ${header.version}, not ${SEGMENT_FORMAT_VERSION}`);
  if (!Number.isInteger(header.rows) || header.rows < 0 || !Number.isInteger(header.sourceRows) || header.sourceRows < header.rows) fail('has a header without its rows and source rows');
  if (!Array.isArray(header.blockBytes) || header.blockBytes.length !== 2 * header.numLayers) fail('has a header with the wrong number of blocks');
  const blocks: Uint8Array[] = [];
  let at = 12 + headerLength;
  for (const n of header.blockBytes) {
    if (!Number.isInteger(n) || n < 0 || at + n > body) fail('has blocks longer than the file');
    blocks.push(bytes.subarray(at, at + n));
    at += n;
  }
  if (at !== body) fail('has bytes after its last block');
  return { header, blocks };
}
