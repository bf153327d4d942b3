// The errors segment codecs throw. All extend SegmentCodecError, so the segment store can catch
// one class and rebuild the segment (or recalibrate) instead of crashing.

import { FreqKvError } from '../../errors';

/** Any codec failure: unknown name, missing or corrupt codebooks, corrupt encoded bytes. */
export class SegmentCodecError extends FreqKvError {}

/** A codec name that no codec has. */
export class UnknownCodecError extends SegmentCodecError {}

/** Codec calibration state (codebooks) that is missing, corrupt or made for another model. */
export class CodecStateError extends SegmentCodecError {}

/** Encoded bytes that are truncated, bit-flipped or were written by another codec or state. */
export class CorruptSegmentBlockError extends SegmentCodecError {}
