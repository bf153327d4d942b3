// Prefills one file on its own after the shared prefix and returns its rows as DCT coefficients
// (ARCHITECTURE.md, "Two ways to fill the cache", item 2). The prefix goes in first at slots
// 0 … P − 1; the file's tokens follow under FreqKV with sinks P + S, so a file longer than the
// cache is compressed while it is prefilled and the prefix rows are never touched. Rows
// [P, n) are the segment: keys are un-rotated by their slots (pre-RoPE, as FreqKV compresses
// them), then keys and values are transformed with the L-point DCT along the sequence.

import { compressAndForward, type StepCounters } from '../generate/step';
import { toFloat32 } from '../kv/compressor';
import { FreqKvCompressor, type FreqKvParameters } from '../kv/freqKvCompressor';
import { rotateRows, type RotarySpec } from '../kv/rotary';
import type { DecoderSession } from '../model/decoderSession';
import { forwardDct } from './spectrum';

export interface BuiltSegment {
  /** Tokens of the segment text. */
  tokens: number;
  /** L: rows (coefficients) per layer. */
  rows: number;
  /** Per layer, [heads, L, dim] DCT coefficients of the pre-RoPE keys. */
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
  if (P > 0) await session.forward(prefixIds, cache);
  for (let done = 0; done < fileIds.length; ) {
    signal?.throwIfAborted();
    const n = Math.min(settings.chunk, compressor.maxChunk(cache), fileIds.length - done);
    await compressAndForward(session, cache, compressor, fileIds.slice(done, done + n) as number[], counters);
    done += n;
  }
  const { numLayers, numKvHeads: heads, headDim: dim } = cache.shape;
  const total = cache.rows;
  const L = total - P;
  const positions = Float64Array.from({ length: L }, (_, j) => P + j);
  const keys: Float32Array[] = [];
  const values: Float32Array[] = [];
  for (let layer = 0; layer < numLayers; layer++) {
    for (const isKey of [true, false]) {
      const all = toFloat32(isKey ? cache.keys(layer) : cache.values(layer));
      const rows = new Float32Array(heads * L * dim);
      for (let h = 0; h < heads; h++) rows.set(all.subarray((h * total + P) * dim, (h * total + total) * dim), h * L * dim);
      if (isKey) rotateRows(rotary, rows, heads, L, positions, -1);
      (isKey ? keys : values).push(forwardDct(rows, heads, L, dim));
    }
  }
  return { tokens: fileIds.length, rows: L, keys, values, compressions: counters.compressions };
}
