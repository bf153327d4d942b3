// The public surface of the segment codecs: a factory by name, RVQ calibration, the codec
// state's (de)serialization and the errors. The segment store uses only this file:
//   const rvq = await calibrateRvq(session, texts, { seed });       // texts: token ids, each ≤ context
//   fs.writeFileSync(statePath, serializeCodecState({ codec: 'rvq', rvq }));
//   const codec = createSegmentCodec('rvq', parseCodecState(fs.readFileSync(statePath)));
//   bytes = codec.encode(sequenceDct(preRopeRows), 'key', layer);  … codec.decode(bytes, 'key', layer, rows)
// Every failure is a SegmentCodecError (UnknownCodecError, CodecStateError, CorruptSegmentBlockError).
// An RVQ block records its codebooks' checksum (RvqCodec.fingerprint): include it in the store's
// settings key so that recalibrating invalidates old segments.

import type { CodecName, SegmentCodec } from '../codec';
import type { CodecState } from './codecState';
import { CodecStateError, UnknownCodecError } from './errors';
import { Float32Codec } from './float32Codec';
import { Int8Codec, type Int8CodecOptions } from './int8Codec';
import { RvqCodec } from './rvqCodec';

export const CODEC_NAMES: readonly CodecName[] = ['float32', 'int8', 'rvq'];

/** Whether a codec needs calibration state (codebooks) to be constructed. */
export function codecNeedsState(name: CodecName): boolean {
  return name === 'rvq';
}

/**
 * The codec called `name`. 'rvq' needs its calibrated state (calibrateRvq, or parseCodecState
 * of saved bytes); the others take none. Throws UnknownCodecError or CodecStateError.
 */
export function createSegmentCodec(name: string, state?: CodecState, options: { int8?: Int8CodecOptions } = {}): SegmentCodec {
  switch (name) {
    case 'float32':
      return new Float32Codec();
    case 'int8':
      return new Int8Codec(options.int8);
    case 'rvq':
      if (!state || state.codec !== 'rvq') throw new CodecStateError('The rvq codec needs calibrated codebooks and none were given; calibrate them (calibrateRvq) or load the saved codec state.');
      return new RvqCodec(state.rvq);
    default:
      throw new UnknownCodecError(`There is no segment codec called "${name}"; choose one of ${CODEC_NAMES.join(', ')}.`);
  }
}

export type { CodecName, SegmentBlock, SegmentCodec, SegmentKind } from '../codec';
export { calibrateRvq, collectSegmentCoefficients, fitRvqCodebooks, RVQ_DEFAULTS, sampleCalibrationTexts, truncateRvqStages, type CalibrationBlocks, type RvqCalibrationOptions } from '../rvqCalibration';
export { parseCodecState, serializeCodecState, type CodecState, type RvqCodebooks, type RvqParameters } from './codecState';
export { CodecStateError, CorruptSegmentBlockError, SegmentCodecError, UnknownCodecError } from './errors';
export { Float32Codec } from './float32Codec';
export { Int8Codec, INT8_DEFAULTS, type Int8CodecOptions } from './int8Codec';
export { RvqCodec } from './rvqCodec';
export { inverseSequenceDct, sequenceDct } from './sequenceDct';
