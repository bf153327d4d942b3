// Codecs for stored workspace segments. A segment holds, for every layer, the pre-RoPE keys
// and values of one file as DCT coefficients along the sequence: a float32 array laid out
// [numKvHeads, rows, headDim] (the KvCache layout), where row r is DCT coefficient r.
// A codec turns one such block into bytes and back; the segment file stores the bytes.
// Codecs may need calibration data (e.g. residual VQ codebooks), which travels with the
// segments in a CodecState.

export type SegmentKind = 'key' | 'value';

export interface SegmentBlock {
  /** Rows (DCT coefficients) in the block. */
  rows: number;
  numKvHeads: number;
  headDim: number;
  /** [numKvHeads, rows, headDim] row-major. */
  data: Float32Array;
}

export type CodecName = 'float32' | 'int8' | 'rvq';

export interface SegmentCodec {
  readonly name: CodecName;
  /**
   * Encodes one layer's keys or values. The bytes must carry everything decode needs besides
   * the codec's own calibration state (rows, scales, …).
   */
  encode(block: SegmentBlock, kind: SegmentKind, layer: number): Uint8Array;
  /**
   * Decodes the first `rows` rows (default all) of an encoded block. Asking for fewer rows is
   * how a segment is truncated to a lower resolution, so a codec should make that cheap.
   */
  decode(bytes: Uint8Array, kind: SegmentKind, layer: number, rows?: number): SegmentBlock;
}
