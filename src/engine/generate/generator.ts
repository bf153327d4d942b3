// The generation loop: chunked prefill of the prompt into the cache, then one token at a
// time until a stop token, a stop string, the token budget, a full cache, or cancellation.
// It yields events as it goes, so callers can stream text and live statistics.

import type { KvCache } from '../kv/kvCache';
import type { KvCompressor } from '../kv/compressor';
import { FullCompressor } from '../kv/fullCompressor';
import type { DecoderSession } from '../model/decoderSession';
import { compressAndForward } from './step';
import { Sampler, type SamplingOptions } from './sampler';
import { emptyStats, type GenerationStats } from './stats';
import { ContextOverflowError, InvalidRequestError } from './errors';

export type StopReason = 'eos' | 'stop-string' | 'max-tokens' | 'context-full' | 'cancelled';

export type GenerationEvent =
  | { kind: 'prefill'; tokensDone: number; tokensTotal: number; stats: GenerationStats }
  | { kind: 'token'; tokenId: number; text: string; stats: GenerationStats }
  | { kind: 'done'; reason: StopReason; text: string; tokenIds: number[]; stats: GenerationStats };

/** Turns token ids into text incrementally (see ModelTokenizer.createStreamDecoder). */
export interface StreamDecoder {
  push(id: number): string;
  flush(): string;
}

export interface GenerationLoopRequest {
  promptIds: number[];
  maxNewTokens: number;
  sampling: SamplingOptions;
  random: () => number;
  stopTokenIds: readonly number[];
  stopStrings?: readonly string[];
  signal?: AbortSignal;
  /** Tokens per prefill step: larger is faster, smaller reports progress more often. */
  prefillChunkSize?: number;
  /** A stream decoder that has already been fed the prompt ids. */
  decoder: StreamDecoder;
  /** The cache policy; default: full (no compression, stop when the cache is full). */
  compressor?: KvCompressor;
  /**
   * Tokens the rows already in `cache` stand for, when generation starts from a pre-filled
   * cache (an assembled workspace cache): counted in tokensSeen. Default: the cache's rows.
   */
  cachedTokens?: number;
}

export const DEFAULT_PREFILL_CHUNK = 128;

export async function* runGeneration(session: DecoderSession, cache: KvCache, request: GenerationLoopRequest): AsyncGenerator<GenerationEvent> {
  const { promptIds, maxNewTokens, signal } = request;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) {
    throw new InvalidRequestError(`max new tokens must be a whole number of at least 1 (got ${maxNewTokens}).`);
  }
  if (promptIds.length === 0) throw new InvalidRequestError('the prompt has no tokens.');
  const compressor = request.compressor ?? new FullCompressor(cache.capacity);
  const full = compressor.name === 'full';
  if (full && cache.rows + promptIds.length > cache.capacity) {
    const already = cache.rows > 0 ? ` after the ${cache.rows} rows already cached` : '';
    throw new ContextOverflowError(
      `The prompt has ${promptIds.length} tokens${already} but the cache holds at most ${cache.capacity} (the model's context). Shorten the prompt, or use a compressed cache (--cache freqkv or --cache streaming).`,
    );
  }
  const requestedChunk = request.prefillChunkSize ?? DEFAULT_PREFILL_CHUNK;
  if (!Number.isInteger(requestedChunk) || requestedChunk < 1) {
    throw new InvalidRequestError(`the prefill chunk size must be a whole number of at least 1 (got ${requestedChunk}).`);
  }
  const sampler = new Sampler(request.sampling, request.random, session.vocabSize);
  const vocab = session.vocabSize;
  const stats = emptyStats(cache.capacity);
  const cachedTokens = request.cachedTokens ?? cache.rows;
  const started = performance.now();
  const snapshot = (): GenerationStats => {
    stats.cacheRows = cache.rows;
    stats.cacheBytes = cache.bytes;
    stats.tokensSeen = cachedTokens + stats.promptTokens + stats.generatedTokens;
    stats.effectiveRatio = cache.rows > 0 ? stats.tokensSeen / cache.rows : 1;
    return { ...stats };
  };
  /** Makes room for `tokens`, runs them at the next slots and returns the last one's logits (or none). */
  const forward = (tokens: number[], logits: 'last' | 'none' = 'last'): Promise<Float32Array> => compressAndForward(session, cache, compressor, tokens, stats, { logits });
  const context: number[] = [...promptIds];
  const generated: number[] = [];
  let text = '';

  // ---- prefill -------------------------------------------------------------------------
  let logits: Float32Array = new Float32Array(0);
  for (let done = 0; done < promptIds.length; ) {
    if (signal?.aborted) {
      yield { kind: 'done', reason: 'cancelled', text, tokenIds: generated, stats: snapshot() };
      return;
    }
    const chunkSize = Math.min(requestedChunk, compressor.maxChunk(cache));
    const chunk = promptIds.slice(done, done + chunkSize);
    const t0 = performance.now();
    // Only the last token of the last chunk has logits anyone reads.
    logits = await forward(chunk, done + chunk.length >= promptIds.length ? 'last' : 'none');
    stats.prefillMs += performance.now() - t0;
    done += chunk.length;
    stats.promptTokens = done;
    stats.prefillTokensPerSecond = (done / stats.prefillMs) * 1000;
    yield { kind: 'prefill', tokensDone: done, tokensTotal: promptIds.length, stats: snapshot() };
  }
  let lastLogits = logits.subarray(logits.length - vocab);

  // ---- decode --------------------------------------------------------------------------
  let decodeSteps = 0;
  for (;;) {
    if (signal?.aborted) {
      text += request.decoder.flush();
      yield { kind: 'done', reason: 'cancelled', text, tokenIds: generated, stats: snapshot() };
      return;
    }
    const tokenId = sampler.sample(lastLogits, context);
    if (stats.generatedTokens === 0) stats.timeToFirstTokenMs = performance.now() - started;
    if (request.stopTokenIds.includes(tokenId)) {
      text += request.decoder.flush();
      yield { kind: 'done', reason: 'eos', text, tokenIds: generated, stats: snapshot() };
      return;
    }
    generated.push(tokenId);
    context.push(tokenId);
    stats.generatedTokens = generated.length;
    const piece = request.decoder.push(tokenId);
    const stop = findStopString(text, piece, request.stopStrings);
    if (stop !== undefined) {
      const visible = stop.slice(text.length);
      text = stop;
      yield { kind: 'token', tokenId, text: visible, stats: snapshot() };
      yield { kind: 'done', reason: 'stop-string', text, tokenIds: generated, stats: snapshot() };
      return;
    }
    text += piece;
    yield { kind: 'token', tokenId, text: piece, stats: snapshot() };
    if (generated.length >= maxNewTokens || (full && cache.rows >= cache.capacity)) {
      const tail = request.decoder.flush();
      text += tail;
      if (tail) yield { kind: 'token', tokenId, text: tail, stats: snapshot() };
      const reason: StopReason = generated.length >= maxNewTokens ? 'max-tokens' : 'context-full';
      yield { kind: 'done', reason, text, tokenIds: generated, stats: snapshot() };
      return;
    }
    const t0 = performance.now();
    logits = await forward([tokenId]);
    lastLogits = logits.subarray(logits.length - vocab);
    stats.decodeMs += performance.now() - t0;
    decodeSteps++;
    stats.decodeTokensPerSecond = (decodeSteps / stats.decodeMs) * 1000;
  }
}

/**
 * If appending `piece` to `text` completes a stop string, returns the text up to (not
 * including) the earliest stop string; otherwise undefined.
 */
function findStopString(text: string, piece: string, stopStrings: readonly string[] | undefined): string | undefined {
  if (!stopStrings || stopStrings.length === 0 || piece === '') return undefined;
  const combined = text + piece;
  let cut = -1;
  for (const stop of stopStrings) {
    if (stop === '') continue;
    // Only matches that end inside the new piece are new.
    const from = Math.max(0, text.length - stop.length + 1);
    const at = combined.indexOf(stop, from);
    if (at >= 0 && (cut < 0 || at < cut)) cut = at;
  }
  return cut >= 0 ? combined.slice(0, cut) : undefined;
}
