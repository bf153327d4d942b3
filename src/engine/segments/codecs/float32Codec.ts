// The lossless codec: the block's floats as little-endian float32, row by row (for each row,
// every head's head_dim values), after the common 24-byte header (blockFormat.ts). The
// reference for the lossy codecs; 4 bytes per element.

import type { SegmentBlock, SegmentCodec, SegmentKind } from '../codec';
import { BLOCK_HEADER_BYTES, checkBlock, checkLength, emptyBlock, readBlockHeader, writeBlockHeader } from './blockFormat';

const VERSION = 1;

export class Float32Codec implements SegmentCodec {
  readonly name = 'float32';

  encode(block: SegmentBlock, kind: SegmentKind, layer: number): Uint8Array {
    checkBlock(block, layer, this.name);
    const { rows, numKvHeads: heads, headDim: dim, data } = block;
    const out = new Uint8Array(BLOCK_HEADER_BYTES + rows * heads * dim * 4);
    writeBlockHeader(out, { codec: this.name, version: VERSION, kind, flags: 0, param: 0, layer, numKvHeads: heads, headDim: dim, rows, tag: 0 });
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    let at = BLOCK_HEADER_BYTES;
    for (let r = 0; r < rows; r++) {
      for (let h = 0; h < heads; h++) {
        const base = (h * rows + r) * dim;
        for (let d = 0; d < dim; d++, at += 4) view.setFloat32(at, data[base + d]!, true);
      }
    }
    return out;
  }

  decode(bytes: Uint8Array, kind: SegmentKind, layer: number, rows?: number): SegmentBlock {
    const header = readBlockHeader(bytes, this.name, VERSION, kind, layer, rows);
    const { numKvHeads: heads, headDim: dim, decodeRows } = header;
    checkLength(bytes, BLOCK_HEADER_BYTES + header.rows * heads * dim * 4, header);
    const block = emptyBlock(header, decodeRows);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let at = BLOCK_HEADER_BYTES;
    for (let r = 0; r < decodeRows; r++) {
      for (let h = 0; h < heads; h++) {
        const base = (h * decodeRows + r) * dim;
        for (let d = 0; d < dim; d++, at += 4) block.data[base + d] = view.getFloat32(at, true);
      }
    }
    return block;
  }
}
