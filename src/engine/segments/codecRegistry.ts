// Segment codecs by name (the `codec` setting: float32 | int8 | rvq), as the segment store and
// the CLI see them: a thin layer over codecs/index.ts (the codecs themselves, their errors and
// RVQ calibration). RVQ needs its calibrated codebooks (a CodecState; see codecStateStore.ts).

export { CODEC_NAMES, codecNeedsState, createSegmentCodec, RvqCodec, SegmentCodecError, UnknownCodecError, CodecStateError, type CodecState } from './codecs/index';
