// One forward pass under a cache policy: let the compressor make room for the tokens, then run
// them at the next slots. Shared by generation (runGeneration) and teacher-forced scoring
// (scoreTokens) so both treat the cache exactly the same way.

import type { KvCompressor } from '../kv/compressor';
import type { KvCache } from '../kv/kvCache';
import type { DecoderSession, LogitsWanted } from '../model/decoderSession';

export interface StepCounters {
  compressions: number;
  compressMs: number;
  maxPosition: number;
}

/**
 * Makes room for `tokens` (at most compressor.maxChunk(cache) of them), runs them and returns
 * their logits as DecoderSession.forward does ([n, vocab] by default; see `logits` there).
 */
export async function compressAndForward(
  session: DecoderSession,
  cache: KvCache,
  compressor: KvCompressor,
  tokens: number[],
  counters: StepCounters,
  options: { logits?: LogitsWanted } = {},
): Promise<Float32Array> {
  const c0 = performance.now();
  // The transform's matrix products go to onnxruntime when the compressor can use it.
  const compressed = compressor.makeRoomWith ? await compressor.makeRoomWith(cache, tokens.length, session.multiply) : compressor.makeRoom(cache, tokens.length);
  if (compressed) counters.compressions++;
  counters.compressMs += performance.now() - c0;
  counters.maxPosition = Math.max(counters.maxPosition, cache.rows + tokens.length - 1);
  return session.forward(tokens, cache, options);
}
