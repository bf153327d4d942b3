// The reference policy: never compress. The generator stops (or refuses a prompt) when the
// cache is full.

import type { KvCompressor } from './compressor';

export class FullCompressor implements KvCompressor {
  readonly name = 'full';

  constructor(readonly capacity: number) {}

  makeRoom(): boolean {
    return false;
  }

  maxChunk(): number {
    return Infinity;
  }
}
