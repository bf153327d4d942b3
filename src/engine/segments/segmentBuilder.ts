// Prefills one file on its own after the shared prefix and returns its rows as DCT coefficients
// (docs/architecture.md, "Two ways to fill the cache", item 2). The prefix goes in first at slots
// 0 … P − 1; the file's tokens follow under FreqKV with sinks P + S, so a file longer than the
// cache is compressed while it is prefilled and the prefix rows are never touched. Rows
// [P, n) are the segment: keys are un-rotated by their slots (pre-RoPE, as FreqKV compresses
// them), then keys and values are transformed with the L-point DCT along the sequence, and the
// first K = storedCoefficientRows(L) coefficients are kept (docs/kv-compression.md, "Segment
// transforms and store size").

import { compressAndForward, type StepCounters } from '../generate/step';
import { toFloat32 } from '../kv/compressor';
import { FreqKvCompressor, type FreqKvParameters } from '../kv/freqKvCompressor';
import { rotateRows, type RotarySpec } from '../kv/rotary';
import type { DecoderSession } from '../model/decoderSession';
import { forwardDct } from './spectrum';

/**
 * How many of a segment's DCT coefficients the store keeps: all of them up to `minRows` rows,
 * and at least `fraction` of them beyond. The store's format version covers these numbers
 * (segmentFile.ts): changing them must bump SEGMENT_FORMAT_VERSION so old segments are rebuilt.
 */
export const STORED_COEFFICIENTS: StoredCoefficients = { fraction: 0.5, minRows: 1024 };

export interface StoredCoefficients {
  /** The share of a long segment's coefficients kept (0 < fraction ≤ 1). */
  fraction: number;
  /** Segments of up to this many rows keep all their coefficients. */
  minRows: number;
}

/** K: the coefficients a segment of L rows keeps, min(L, max(minRows, ⌈fraction · L⌉)). */
export function storedCoefficientRows(L: number, policy: StoredCoefficients = STORED_COEFFICIENTS): number {
  if (!(policy.fraction > 0 && policy.fraction <= 1) || !(policy.minRows >= 1)) throw new RangeError(`storedCoefficientRows: need 0 < fraction <= 1 and minRows >= 1 (got ${policy.fraction}, ${policy.minRows})`);
  return Math.min(L, Math.max(policy.minRows, Math.ceil(policy.fraction * L)));
}

export interface BuiltSegment {
  /** Tokens of the segment text. */
  tokens: number;
  /** K: coefficient rows kept per layer (the most rows the segment is rebuilt at). */
  rows: number;
  /** L: rows the file's prefill left in the cache, which the coefficients are of. */
  sourceRows: number;
  /** Per layer, [heads, K, dim]: the first K DCT coefficients of the pre-RoPE keys. */
  keys: Float32Array[];
  values: Float32Array[];
  compressions: number;
}

export interface SegmentPrefillSettings {
  /** N of the cache the file is prefilled in (the model's context by default). */
  capacity: number;
  /** Sinks after the prefix, γ and the recent window for files longer than the cache. */
  sinks: number;
  retain: number;
  recent: number;
  /** Tokens per forward pass at most. */
  chunk: number;
  /** How many coefficients the segment keeps (default STORED_COEFFICIENTS). */
  stored?: StoredCoefficients;
}

/** The FreqKV compressor a file is prefilled under: the prefix counts as extra sinks. */
export function segmentCompressor(settings: SegmentPrefillSettings, prefixRows: number, rotary: RotarySpec): FreqKvCompressor {
  const parameters: FreqKvParameters = { capacity: settings.capacity, sinks: prefixRows + settings.sinks, retain: settings.retain, recent: settings.recent };
  return new FreqKvCompressor(parameters, rotary);
}

/** `signal` stops the prefill between chunks (an AbortError-like throw of signal.reason). */
export async function buildSegment(session: DecoderSession, rotary: RotarySpec, prefixIds: readonly number[], fileIds: readonly number[], settings: SegmentPrefillSettings, signal?: AbortSignal): Promise<BuiltSegment> {
  if (fileIds.length === 0) throw new RangeError('buildSegment: the file has no tokens');
  const P = prefixIds.length;
  const compressor = segmentCompressor(settings, P, rotary);
  const cache = session.createCache(settings.capacity);
  const counters: StepCounters = { compressions: 0, compressMs: 0, maxPosition: -1 };
  if (P > 0) await session.forward(prefixIds, cache, { logits: 'none' });
  for (let done = 0; done < fileIds.length; ) {
    signal?.throwIfAborted();
    const n = Math.min(settings.chunk, compressor.maxChunk(cache), fileIds.length - done);
    await compressAndForward(session, cache, compressor, fileIds.slice(done, done + n) as number[], counters, { logits: 'none' });
    done += n;
  }
  const { numLayers, numKvHeads: heads, headDim: dim } = cache.shape;
  const total = cache.rows;
  const L = total - P;
  const K = storedCoefficientRows(L, settings.stored);
  const positions = Float64Array.from({ length: L }, (_, j) => P + j);
  const keys: Float32Array[] = [];
  const values: Float32Array[] = [];
  for (let layer = 0; layer < numLayers; layer++) {
    for (const isKey of [true, false]) {
      const all = toFloat32(isKey ? cache.keys(layer) : cache.values(layer));
      const rows = new Float32Array(heads * L * dim);
      for (let h = 0; h < heads; h++) rows.set(all.subarray((h * total + P) * dim, (h * total + total) * dim), h * L * dim);
      if (isKey) rotateRows(rotary, rows, heads, L, positions, -1);
      const coefficients = forwardDct(rows, heads, L, dim);
      const kept = K === L ? coefficients : new Float32Array(heads * K * dim);
      if (K < L) for (let h = 0; h < heads; h++) kept.set(coefficients.subarray(h * L * dim, (h * L + K) * dim), h * K * dim);
      (isKey ? keys : values).push(kept);
    }
  }
  return { tokens: fileIds.length, rows: K, sourceRows: L, keys, values, compressions: counters.compressions };
}
