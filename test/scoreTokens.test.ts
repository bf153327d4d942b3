// Teacher-forced scoring (scoreTokens) against a forward pass and the log-softmax computed here.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectModelFolder } from '../src/engine/model/modelFolder';
import { DecoderSession } from '../src/engine/model/decoderSession';
import { FullCompressor } from '../src/engine/kv/fullCompressor';
import { createCompressor } from '../src/engine/kv/createCompressor';
import { scoreTokens } from '../src/engine/eval/scoreTokens';
import { EMBEDDED_MODEL, randomStoryTokens } from './helpers';

let session: DecoderSession;
const TOKENS = randomStoryTokens(300);

beforeAll(async () => {
  session = await DecoderSession.open(inspectModelFolder(EMBEDDED_MODEL), { threads: 1 });
});
afterAll(async () => {
  await session.release();
});

describe('scoreTokens', () => {
  it('with the full cache, equals log-softmax of one forward pass over the whole sequence, in any chunk size', async () => {
    const cache = session.createCache(TOKENS.length);
    const logits = await session.forward(TOKENS.slice(0, -1), cache);
    const V = session.vocabSize;
    for (const chunkSize of [1, 7, 128]) {
      const got = await scoreTokens(session, new FullCompressor(TOKENS.length), TOKENS, { chunkSize });
      expect(got.logProbs).toHaveLength(TOKENS.length - 1);
      for (let i = 0; i < TOKENS.length - 1; i++) {
        // Independent log-softmax.
        const row = Array.from(logits.subarray(i * V, (i + 1) * V));
        const lse = Math.log(row.reduce((s, x) => s + Math.exp(x), 0));
        expect(got.logProbs[i]).toBeCloseTo(row[TOKENS[i + 1]!]! - lse, 4);
        expect(got.cacheRows[i]).toBe(i + 1);
      }
      expect(got.compressions).toBe(0);
    }
  });

  it('respects the compressor: freqkv in chunks equals freqkv token by token; rows never exceed N', async () => {
    const make = () => createCompressor({ method: 'freqkv', capacity: 64, sinks: 4, retain: 0.5 }, session.folder.config).compressor;
    const chunked = await scoreTokens(session, make(), TOKENS, { chunkSize: 128 });
    const single = await scoreTokens(session, make(), TOKENS, { chunkSize: 1 });
    for (let i = 0; i < chunked.logProbs.length; i++) expect(chunked.logProbs[i]).toBeCloseTo(single.logProbs[i]!, 3);
    expect(chunked.compressions).toBe(single.compressions);
    expect(Math.max(...chunked.cacheRows)).toBe(64);
    expect(chunked.maxPosition).toBe(63);
    const streaming = createCompressor({ method: 'streaming', capacity: 32, sinks: 4 }, session.folder.config).compressor;
    const s = await scoreTokens(session, streaming, TOKENS, { chunkSize: 1 });
    expect(Math.max(...s.cacheRows)).toBe(32);
    expect(s.cacheRows.at(-1)).toBe(32);
  });
});
