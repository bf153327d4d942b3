// The KV cache's reused output buffers (KvCache.outputArrays) on the embedded model: onnxruntime
// writes `present` rows into the cache's own buffers, decoding settles on two buffers per layer
// and kind, and no array the cache handed out or was given is ever written again.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectModelFolder } from '../src/engine/model/modelFolder';
import { DecoderSession } from '../src/engine/model/decoderSession';
import type { KvArray, KvCache } from '../src/engine/kv/kvCache';
import { EMBEDDED_MODEL, randomStoryTokens } from './helpers';

let session: DecoderSession;
beforeAll(async () => {
  session = await DecoderSession.open(inspectModelFolder(EMBEDDED_MODEL), { threads: 1 });
});
afterAll(async () => {
  await session.release();
});

const tokens = randomStoryTokens(40, 3);

/** Prefills 20 tokens in chunks of 5, then feeds the other 20 one at a time; returns every logits row. */
async function run(cache: KvCache, onStep: (step: number) => void = () => {}): Promise<Float32Array[]> {
  const rows: Float32Array[] = [];
  for (let at = 0; at < 20; at += 5) rows.push((await session.forward(tokens.slice(at, at + 5), cache)).slice());
  for (let at = 20; at < 40; at++) {
    rows.push((await session.forward([tokens[at]!], cache)).slice());
    onStep(at);
  }
  return rows;
}

describe('KvCache output buffers', () => {
  it('decoding reuses two buffers per layer and kind; logits equal a run whose arrays are all handed out', async () => {
    const reused = session.createCache(512);
    const buffers = new Set<ArrayBufferLike>();
    const fast = await run(reused, (step) => {
      if (step >= 22) buffers.add(reused.pastArray(0, 0).buffer);
    });
    expect(buffers.size).toBe(2);
    // Calling keys()/values() every step hands every array out, so nothing is ever reused.
    const handedOut = session.createCache(512);
    const slow = await run(handedOut, () => {
      for (let layer = 0; layer < handedOut.shape.numLayers; layer++) {
        handedOut.keys(layer);
        handedOut.values(layer);
      }
    });
    expect(fast).toEqual(slow);
    expect(reused.rows).toBe(40);
    for (let layer = 0; layer < reused.shape.numLayers; layer++) {
      expect(reused.keys(layer)).toEqual(handedOut.keys(layer));
      expect(reused.keys(layer)).toHaveLength(40 * reused.shape.numKvHeads * reused.shape.headDim);
    }
  });

  it('arrays handed out by keys()/values() and arrays given to replaceRows are never overwritten', async () => {
    const cache = session.createCache(512);
    for (let at = 0; at < 10; at += 5) await session.forward(tokens.slice(at, at + 5), cache);
    const seen = cache.keys(1);
    const seenCopy = seen.slice();
    const layers = cache.shape.numLayers;
    const given: { keys: KvArray[]; values: KvArray[] } = {
      keys: Array.from({ length: layers }, (_, l) => cache.keys(l).slice()),
      values: Array.from({ length: layers }, (_, l) => cache.values(l).slice()),
    };
    const givenCopy = given.keys.map((k) => k.slice());
    cache.replaceRows(given.keys, given.values, 10);
    for (let at = 10; at < 20; at++) await session.forward([tokens[at]!], cache);
    expect(seen).toEqual(seenCopy);
    expect(given.keys).toEqual(givenCopy);
    expect(cache.rows).toBe(20);
  });
});
