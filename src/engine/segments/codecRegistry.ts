// Segment codecs by name (the `codec` setting: float32 | int8 | rvq). This branch ships only the
// float32 stand-in; the codecs branch registers the others here.

import { FreqKvError } from '../errors';
import type { CodecName, SegmentCodec } from './codec';
import { Float32CodecStandIn } from './float32CodecStandIn';

export const CODEC_NAMES: readonly CodecName[] = ['float32', 'int8', 'rvq'];

/** A codec name that is unknown, or known but not built into this version. */
export class CodecUnavailableError extends FreqKvError {}

const factories: Partial<Record<CodecName, () => SegmentCodec>> = {
  float32: () => new Float32CodecStandIn(),
};

/** Codecs this build can make. */
export function availableCodecs(): CodecName[] {
  return CODEC_NAMES.filter((name) => factories[name] !== undefined);
}

export function createSegmentCodec(name: string): SegmentCodec {
  const factory = CODEC_NAMES.includes(name as CodecName) ? factories[name as CodecName] : undefined;
  if (!factory) {
    throw new CodecUnavailableError(`The segment codec ${JSON.stringify(name)} is not available in this build; choose one of ${availableCodecs().join(', ')}.`);
  }
  return factory();
}
