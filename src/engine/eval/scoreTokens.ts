// Teacher-forced scoring: feeds a fixed token sequence through a DecoderSession and a KvCache
// under any KvCompressor, exactly as generation does (compressor.maxChunk sizes each forward
// pass, compressor.makeRoom runs right before it; see generate/step.ts), and reports for every
// predicted position the log-probability of the token that actually follows.

import type { KvCompressor } from '../kv/compressor';
import type { KvCache } from '../kv/kvCache';
import type { DecoderSession } from '../model/decoderSession';
import { compressAndForward, type StepCounters } from '../generate/step';

export interface ScoreOptions {
  /** Tokens per forward pass at most (also bounded by compressor.maxChunk); default 128. */
  chunkSize?: number;
  /**
   * Called with the logits row that predicts token `position + 1` (a view valid only during the
   * call), for KL divergence or top-1 agreement.
   */
  onLogits?: (position: number, logits: Float32Array) => void;
  /** Called after each forward pass with the tokens done so far. */
  onProgress?: (done: number, total: number) => void;
  /** A pre-filled cache to score after (e.g. an assembled workspace cache); default: an empty one. */
  startCache?: KvCache;
}

export interface TokenScores {
  /** logProbs[i] = log p(tokens[i + 1] | tokens[0..i]); length tokens.length − 1. */
  logProbs: Float64Array;
  /** Cache rows in use right after the pass that predicted position i (what it attended to at most). */
  cacheRows: Int32Array;
  bytesPerRow: number;
  compressions: number;
  compressMs: number;
  maxPosition: number;
  elapsedMs: number;
}

/** log-softmax of `logits` at `index`, computed in float64. */
export function logProbOf(logits: ArrayLike<number>, index: number): number {
  return logits[index]! - logSumExp(logits);
}

/** log Σ exp(logits), shifted by the maximum so that nothing overflows. */
export function logSumExp(logits: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  return max + Math.log(sum);
}

export async function scoreTokens(session: DecoderSession, compressor: KvCompressor, tokens: readonly number[], options: ScoreOptions = {}): Promise<TokenScores> {
  const chunkSize = options.chunkSize ?? 128;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new RangeError(`scoreTokens: chunk size must be a whole number of at least 1 (got ${chunkSize})`);
  if (tokens.length < 2) throw new RangeError(`scoreTokens: needs at least 2 tokens (got ${tokens.length})`);
  const cache = options.startCache ?? session.createCache(compressor.capacity);
  if (compressor.name === 'full' && cache.rows + tokens.length > compressor.capacity) {
    throw new RangeError(`scoreTokens: ${tokens.length} tokens do not fit a full cache of ${compressor.capacity} rows`);
  }
  const started = performance.now();
  const vocab = session.vocabSize;
  const counters: StepCounters = { compressions: 0, compressMs: 0, maxPosition: -1 };
  const predicted = tokens.length - 1;
  const logProbs = new Float64Array(predicted);
  const cacheRows = new Int32Array(predicted);
  // The last token predicts nothing, so it is never fed.
  for (let done = 0; done < predicted; ) {
    const n = Math.min(chunkSize, compressor.maxChunk(cache), predicted - done);
    const chunk = tokens.slice(done, done + n) as number[];
    const logits = await compressAndForward(session, cache, compressor, chunk, counters);
    for (let i = 0; i < n; i++) {
      const row = logits.subarray(i * vocab, (i + 1) * vocab);
      const position = done + i;
      logProbs[position] = logProbOf(row, tokens[position + 1]!);
      cacheRows[position] = cache.rows - n + i + 1;
      options.onLogits?.(position, row);
    }
    done += n;
    options.onProgress?.(done, predicted);
  }
  return { logProbs, cacheRows, bytesPerRow: cache.bytesPerRow, ...counters, elapsedMs: performance.now() - started };
}
