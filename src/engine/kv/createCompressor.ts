// Builds a compressor from user options, checking them against the model (docs/kv-compression.md
// §1). Problems are named errors that say what to do; a capacity past the trained context is
// allowed and returned as a warning for the caller to show.

import { FreqKvError } from '../errors';
import type { DecoderConfig } from '../model/modelConfig';
import type { CacheMethod, KvCompressor } from './compressor';
import { FreqKvCompressor } from './freqKvCompressor';
import { FullCompressor } from './fullCompressor';
import { rotarySpecOf } from './rotary';
import { StreamingCompressor } from './streamingCompressor';

/** Cache options are malformed or inconsistent (capacity < sinks + 2, γ outside (0, 1), …). */
export class CacheOptionsError extends FreqKvError {}

export const CACHE_METHODS: readonly CacheMethod[] = ['full', 'freqkv', 'streaming'];
export const DEFAULT_SINKS = 4;
export const DEFAULT_RETAIN = 0.5;

export interface CacheOptions {
  method: CacheMethod;
  /** N; defaults to the model's trained context. */
  capacity?: number;
  /** S; default 4. */
  sinks?: number;
  /** γ; default 0.5. */
  retain?: number;
  /**
   * R (freqkv only): recent rows never compressed. 0 is the paper's method; the default,
   * N / 2 (when it fits), is what the fidelity benchmark supports (README, "FreqKV fidelity").
   */
  recent?: number;
}

export interface CompressorChoice {
  compressor: KvCompressor;
  /** Things the user should know that are not errors. */
  warnings: string[];
}

export function createCompressor(options: CacheOptions, config: DecoderConfig): CompressorChoice {
  const { method } = options;
  if (!CACHE_METHODS.includes(method)) {
    throw new CacheOptionsError(`Unknown cache method ${JSON.stringify(method)}; choose one of ${CACHE_METHODS.join(', ')}.`);
  }
  const trained = config.maxPositionEmbeddings;
  const capacity = options.capacity ?? trained;
  const sinks = options.sinks ?? DEFAULT_SINKS;
  const retain = options.retain ?? DEFAULT_RETAIN;
  if (!Number.isInteger(capacity) || capacity < 1) throw new CacheOptionsError(`The cache capacity must be a whole number of at least 1 (got ${capacity}).`);
  const warnings: string[] = [];
  if (capacity > trained) {
    warnings.push(`The cache capacity ${capacity} is larger than the model's trained context (${trained}): positions will pass what the model was trained on.`);
  }
  if (method === 'full') return { compressor: new FullCompressor(capacity), warnings };
  if (!Number.isInteger(sinks) || sinks < 0) throw new CacheOptionsError(`The number of sinks must be a whole number of at least 0 (got ${sinks}).`);
  if (capacity < sinks + 2) {
    throw new CacheOptionsError(`The cache capacity ${capacity} is too small for ${sinks} sinks: it must be at least sinks + 2 = ${sinks + 2}.`);
  }
  const rotary = rotarySpecOf(config);
  if (method === 'streaming') return { compressor: new StreamingCompressor(capacity, sinks, rotary), warnings };
  if (!(retain > 0 && retain < 1)) throw new CacheOptionsError(`The retention ratio must be in (0, 1) (got ${retain}).`);
  const recent = options.recent ?? defaultRecentWindow(capacity, sinks);
  if (!Number.isInteger(recent) || recent < 0) throw new CacheOptionsError(`The recent window must be a whole number of at least 0 (got ${recent}).`);
  if (capacity < sinks + recent + 2) {
    throw new CacheOptionsError(`The cache capacity ${capacity} is too small for ${sinks} sinks and a recent window of ${recent}: it must be at least ${sinks + recent + 2}.`);
  }
  return { compressor: new FreqKvCompressor({ capacity, sinks, retain, recent }, rotary), warnings };
}

/** The default recent window: half the cache, shrunk so that at least two rows stay compressible. */
export function defaultRecentWindow(capacity: number, sinks: number): number {
  return Math.max(0, Math.min(Math.floor(capacity / 2), capacity - sinks - 2));
}
