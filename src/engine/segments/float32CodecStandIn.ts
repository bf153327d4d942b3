// A minimal float32 segment codec: the coefficients as they are, little-endian. A stand-in
// until the codecs branch (float32, int8, residual VQ) is merged; see codec.ts for the interface.

import type { CodecName, SegmentBlock, SegmentCodec } from './codec';

export class Float32CodecStandIn implements SegmentCodec {
  readonly name: CodecName = 'float32';

  encode(block: SegmentBlock): Uint8Array {
    const header = new Uint32Array([block.rows, block.numKvHeads, block.headDim]);
    const out = new Uint8Array(12 + block.data.byteLength);
    out.set(new Uint8Array(header.buffer), 0);
    out.set(new Uint8Array(block.data.buffer, block.data.byteOffset, block.data.byteLength), 12);
    return out;
  }

  decode(bytes: Uint8Array, _kind: unknown, _layer: number, rows?: number): SegmentBlock {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const [all, heads, dim] = [view.getUint32(0, true), view.getUint32(4, true), view.getUint32(8, true)];
    if (bytes.length !== 12 + all * heads * dim * 4) throw new RangeError(`float32 segment block: ${bytes.length} bytes for ${all}×${heads}×${dim}`);
    const keep = Math.min(rows ?? all, all);
    const full = new Float32Array(bytes.slice(12).buffer);
    const data = new Float32Array(heads * keep * dim);
    for (let h = 0; h < heads; h++) data.set(full.subarray(h * all * dim, (h * all + keep) * dim), h * keep * dim);
    return { rows: keep, numKvHeads: heads, headDim: dim, data };
  }
}
