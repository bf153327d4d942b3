// A small seeded pseudo-random generator, so that sampling, random test models and benchmarks
// repeat exactly for a given seed. Not for cryptography.

/**
 * mulberry32: 32 bits of state, one multiply-xorshift round per number. Returns a function
 * giving uniform numbers in [0, 1) with 32 bits of resolution. Any integer seed works; seeds
 * are taken modulo 2^32.
 */
export function createRng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
