// The cache policies: exact trigger points and row counts from the spec's formulas, the cache
// bookkeeping of positions and RoPE, the factory's checks, and generation on real models.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvCache, type KvArray } from '../src/engine/kv/kvCache';
import { FreqKvCompressor } from '../src/engine/kv/freqKvCompressor';
import { StreamingCompressor } from '../src/engine/kv/streamingCompressor';
import { FullCompressor } from '../src/engine/kv/fullCompressor';
import { CacheOptionsError, createCompressor } from '../src/engine/kv/createCompressor';
import { toFloat32, type KvCompressor } from '../src/engine/kv/compressor';
import { rotarySpecOf, rotateRows } from '../src/engine/kv/rotary';
import { float32ToFloat16 } from '../src/engine/floatFormats';
import type { DecoderConfig } from '../src/engine/model/modelConfig';
import { Engine } from '../src/engine/engine';
import type { GenerationEvent } from '../src/engine/generate/generator';
import { ContextOverflowError } from '../src/engine/generate/errors';
import { tinyLlama, tinyQwen2 } from './testModels';
import { EMBEDDED_MODEL, buildTestModel, tempDir } from './helpers';
import { randomDecoderModel } from '../src/builder/randomWeights';

const HEADS = 2;
const config: DecoderConfig = { ...tinyLlama, numKvHeads: HEADS, ropeLayout: 'interleaved' };
const spec = rotarySpecOf(config);
const DIM = config.headDim;

/** A pre-RoPE key or value for (layer, head, token, channel); `slow` varies little along tokens. */
type Source = (layer: number, head: number, token: number, channel: number) => number;

/** Appends `count` rows made of `source` at slot positions rows…rows+count−1 (keys rotated), as the graph would. */
function appendRows(cache: KvCache, count: number, firstToken: number, keySource: Source, valueSource: Source): void {
  const n = cache.rows;
  const total = n + count;
  const keys: KvArray[] = [];
  const values: KvArray[] = [];
  for (let layer = 0; layer < cache.shape.numLayers; layer++) {
    const oldK = toFloat32(cache.keys(layer));
    const oldV = toFloat32(cache.values(layer));
    const k = new Float32Array(HEADS * total * DIM);
    const v = new Float32Array(HEADS * total * DIM);
    const fresh = new Float32Array(HEADS * count * DIM);
    for (let h = 0; h < HEADS; h++) {
      k.set(oldK.subarray(h * n * DIM, (h + 1) * n * DIM), h * total * DIM);
      v.set(oldV.subarray(h * n * DIM, (h + 1) * n * DIM), h * total * DIM);
      for (let r = 0; r < count; r++) {
        for (let d = 0; d < DIM; d++) {
          fresh[(h * count + r) * DIM + d] = keySource(layer, h, firstToken + r, d);
          v[(h * total + n + r) * DIM + d] = valueSource(layer, h, firstToken + r, d);
        }
      }
    }
    rotateRows(spec, fresh, HEADS, count, Array.from({ length: count }, (_, r) => n + r), 1);
    for (let h = 0; h < HEADS; h++) k.set(fresh.subarray(h * count * DIM, (h + 1) * count * DIM), (h * total + n) * DIM);
    if (cache.elementType === 'float16') {
      keys.push(float32ToFloat16(k, new Uint16Array(k.length)));
      values.push(float32ToFloat16(v, new Uint16Array(v.length)));
    } else {
      keys.push(k);
      values.push(v);
    }
  }
  cache.replaceRows(keys, values, total);
}

/** The pre-RoPE keys of a cache: row r un-rotated by its slot r. */
function preRopeKeys(cache: KvCache, layer: number): Float32Array {
  const k = toFloat32(cache.keys(layer)).slice();
  rotateRows(spec, k, HEADS, cache.rows, Array.from({ length: cache.rows }, (_, r) => r), -1);
  return k;
}

const at = (data: Float32Array, rows: number, h: number, r: number, d: number): number => data[(h * rows + r) * DIM + d]!;

/** Feeds `total` tokens in chunks of at most maxChunk (decode: 1), recording when compressions happen and the rows after. */
function drive(compressor: KvCompressor, cache: KvCache, total: number, chunk: number, source: Source = (l, h, t, d) => l + h + d + 0.001 * t): { triggers: number[]; rowsAfter: number[] } {
  const triggers: number[] = [];
  const rowsAfter: number[] = [];
  for (let fed = 0; fed < total; ) {
    const n = Math.min(chunk, compressor.maxChunk(cache), total - fed);
    if (compressor.makeRoom(cache, n)) {
      triggers.push(fed);
      rowsAfter.push(cache.rows);
    }
    expect(cache.rows + n).toBeLessThanOrEqual(compressor.capacity);
    appendRows(cache, n, fed, source, source);
    expect(cache.rows).toBeLessThanOrEqual(compressor.capacity);
    fed += n;
  }
  return { triggers, rowsAfter };
}

/**
 * The spec's schedule, token by token or in chunks: chunks of at most step tokens that fill
 * the cache exactly to N; compress when n + chunk > N to S + floor(γ(n − S)).
 */
function expectedFreqKv(N: number, S: number, gamma: number, total: number, chunk: number): { triggers: number[]; rowsAfter: number[] } {
  const step = N - S - Math.floor(gamma * (N - S));
  const triggers: number[] = [];
  const rowsAfter: number[] = [];
  let n = 0;
  for (let fed = 0; fed < total; ) {
    const c = Math.min(chunk, n < N ? Math.min(step, N - n) : step, total - fed);
    if (n + c > N) {
      expect(n).toBe(N);
      n = S + Math.floor(gamma * (n - S));
      triggers.push(fed);
      rowsAfter.push(n);
    }
    n += c;
    fed += c;
  }
  return { triggers, rowsAfter };
}

const newCache = (capacity: number, type: 'float32' | 'float16' = 'float32'): KvCache => new KvCache({ numLayers: 2, numKvHeads: HEADS, headDim: DIM }, type, capacity);

describe('FreqKvCompressor', () => {
  it.each([
    [16, 4, 0.5],
    [16, 0, 0.5],
    [20, 4, 0.25],
    [20, 2, 0.75],
    [11, 1, 0.3],
    [6, 4, 0.5],
    [64, 4, 0.9],
  ])('N=%i S=%i γ=%f: triggers and row counts follow the spec, token by token and in chunks', (N, S, gamma) => {
    for (const chunk of [1, 3, 1000]) {
      const compressor = new FreqKvCompressor({ capacity: N, sinks: S, retain: gamma }, spec);
      expect(compressor.keptRows).toBe(Math.floor(gamma * (N - S)));
      expect(compressor.step).toBe(N - S - Math.floor(gamma * (N - S)));
      const got = drive(compressor, newCache(N), 5 * N, chunk);
      expect(got).toEqual(expectedFreqKv(N, S, gamma, 5 * N, chunk));
      expect(got.triggers.length).toBeGreaterThan(1);
    }
  });

  it('token by token, the first compression comes when the (N+1)-th token arrives, leaving S + floor(γ(N − S)) rows', () => {
    const compressor = new FreqKvCompressor({ capacity: 16, sinks: 4, retain: 0.5 }, spec);
    const got = drive(compressor, newCache(16), 40, 1);
    // 16 rows → 4 + 6 = 10; +6 tokens → 16 → 10 again, every 6 tokens.
    expect(got.triggers).toEqual([16, 22, 28, 34]);
    expect(got.rowsAfter).toEqual([10, 10, 10, 10]);
  });

  it.each(['float32', 'float16'] as const)('%s: sinks are untouched; constant pre-RoPE keys and values stay constant at the new slots', (type) => {
    const N = 24;
    const S = 3;
    const compressor = new FreqKvCompressor({ capacity: N, sinks: S, retain: 0.5 }, spec);
    const cache = newCache(N, type);
    const sinkValue: Source = (l, h, t, d) => 5 + l - h + d * 0.25 + t;
    const constant: Source = (l, h, _t, d) => 0.5 * l - h + 0.125 * d - 1;
    appendRows(cache, S, 0, sinkValue, sinkValue);
    appendRows(cache, N - S, S, constant, constant);
    const before = cache.keys(1).slice();
    expect(compressor.makeRoom(cache, 1)).toBe(true);
    expect(cache.rows).toBe(S + Math.floor(0.5 * (N - S)));
    const tol = type === 'float16' ? 1e-2 : 1e-5;
    for (let layer = 0; layer < 2; layer++) {
      const k = preRopeKeys(cache, layer);
      const v = toFloat32(cache.values(layer));
      for (let h = 0; h < HEADS; h++) {
        for (let r = 0; r < cache.rows; r++) {
          for (let d = 0; d < DIM; d++) {
            const want = r < S ? sinkValue(layer, h, r, d) : constant(layer, h, r, d);
            expect(Math.abs(at(k, cache.rows, h, r, d) - want)).toBeLessThan(tol * Math.max(1, Math.abs(want)));
            expect(Math.abs(at(v, cache.rows, h, r, d) - want)).toBeLessThan(tol * Math.max(1, Math.abs(want)));
          }
        }
      }
    }
    // The sink rows keep their exact stored bits.
    const after = cache.keys(1);
    for (let h = 0; h < HEADS; h++) for (let i = 0; i < S * DIM; i++) expect(after[h * cache.rows * DIM + i]).toBe(before[h * N * DIM + i]);
    if (type === 'float16') expect(after).toBeInstanceOf(Uint16Array);
  });

  it('a slowly varying pre-RoPE key is resampled onto the compressed rows', () => {
    const N = 68;
    const S = 4;
    const compressor = new FreqKvCompressor({ capacity: N, sinks: S, retain: 0.5 }, spec);
    const cache = newCache(N);
    const L = N - S;
    const slow: Source = (_l, h, t, d) => Math.cos((Math.PI * (2 * (t - S) + 1)) / (2 * L)) * (1 + d) + h;
    appendRows(cache, N, 0, slow, slow);
    compressor.makeRoom(cache, 1);
    const L2 = L / 2;
    const k = preRopeKeys(cache, 0);
    for (let m = 0; m < L2; m++) {
      // Compressed row m stands for original row S + (m + 0.5)·L/L' − 0.5.
      const t = S + ((m + 0.5) * L) / L2 - 0.5;
      for (let d = 0; d < DIM; d++) expect(at(k, cache.rows, 1, S + m, d)).toBeCloseTo(slow(0, 1, t, d), 1);
    }
  });
});

describe('FreqKvCompressor with a recent window R', () => {
  it('token by token: compresses rows [S, N − R) to floor(γ(N − S − R)) rows and keeps the last R rows, re-rotated to their new slots', () => {
    const N = 20;
    const S = 2;
    const R = 6;
    const compressor = new FreqKvCompressor({ capacity: N, sinks: S, retain: 0.5, recent: R }, spec);
    expect(compressor.keptRows).toBe(Math.floor(0.5 * (N - S - R)));
    expect(compressor.step).toBe(N - S - R - Math.floor(0.5 * (N - S - R)));
    const got = drive(compressor, newCache(N), 60, 1);
    // 20 rows → 2 + 6 + 6 = 14; +6 tokens → 20 again.
    expect(got.triggers).toEqual([20, 26, 32, 38, 44, 50, 56]);
    expect(new Set(got.rowsAfter)).toEqual(new Set([14]));
    const cache = newCache(N);
    const id: Source = (l, h, t, d) => 1000 * l + 100 * h + t + d / 16;
    appendRows(cache, N, 0, id, id);
    compressor.makeRoom(cache, 1);
    expect(cache.rows).toBe(14);
    for (let layer = 0; layer < 2; layer++) {
      const k = preRopeKeys(cache, layer);
      const v = toFloat32(cache.values(layer));
      for (let i = 0; i < R; i++) {
        const token = N - R + i;
        for (let h = 0; h < HEADS; h++) {
          for (let d = 0; d < DIM; d++) {
            expect(at(k, cache.rows, h, 8 + i, d)).toBeCloseTo(id(layer, h, token, d), 2);
            expect(at(v, cache.rows, h, 8 + i, d)).toBe(Math.fround(id(layer, h, token, d)));
          }
        }
      }
    }
  });

  it('R = 0 is the paper\'s method; a window that leaves fewer than 2 compressible rows is refused', () => {
    const a = drive(new FreqKvCompressor({ capacity: 16, sinks: 4, retain: 0.5, recent: 0 }, spec), newCache(16), 40, 1);
    const b = drive(new FreqKvCompressor({ capacity: 16, sinks: 4, retain: 0.5 }, spec), newCache(16), 40, 1);
    expect(a).toEqual(b);
    expect(() => createCompressor({ method: 'freqkv', capacity: 16, sinks: 4, recent: 11 }, tinyQwen2)).toThrow(CacheOptionsError);
    expect(createCompressor({ method: 'freqkv', capacity: 16, sinks: 4, recent: 10 }, tinyQwen2).compressor.capacity).toBe(16);
  });
});

describe('StreamingCompressor', () => {
  it('keeps the sinks and the most recent rows so the incoming rows fit, keys re-rotated to their new slots', () => {
    const N = 12;
    const S = 2;
    const compressor = new StreamingCompressor(N, S, spec);
    const cache = newCache(N);
    const id: Source = (l, h, t, d) => 1000 * l + 100 * h + t + d / 16;
    appendRows(cache, N, 0, id, id);
    expect(compressor.makeRoom(cache, 3)).toBe(true);
    expect(cache.rows).toBe(N - 3);
    const kept = [0, 1, 5, 6, 7, 8, 9, 10, 11];
    for (let layer = 0; layer < 2; layer++) {
      const k = preRopeKeys(cache, layer);
      const v = toFloat32(cache.values(layer));
      kept.forEach((token, r) => {
        for (let h = 0; h < HEADS; h++) {
          for (let d = 0; d < DIM; d++) {
            expect(at(k, cache.rows, h, r, d)).toBeCloseTo(id(layer, h, token, d), 2);
            expect(at(v, cache.rows, h, r, d)).toBe(Math.fround(id(layer, h, token, d)));
          }
        }
      });
    }
  });

  it('token by token, the cache stays full at N rows and never exceeds it', () => {
    const compressor = new StreamingCompressor(10, 4, spec);
    const got = drive(compressor, newCache(10), 50, 1);
    expect(got.triggers).toEqual(Array.from({ length: 40 }, (_, i) => 10 + i));
    expect(new Set(got.rowsAfter)).toEqual(new Set([9]));
    const chunked = drive(new StreamingCompressor(10, 4, spec), newCache(10), 50, 100);
    expect(chunked.triggers.length).toBeGreaterThan(5);
  });
});

describe('createCompressor', () => {
  it('builds each method with the defaults', () => {
    const full = createCompressor({ method: 'full' }, tinyQwen2);
    expect(full.compressor).toBeInstanceOf(FullCompressor);
    expect(full.compressor.capacity).toBe(tinyQwen2.maxPositionEmbeddings);
    expect(full.warnings).toEqual([]);
    const freqkv = createCompressor({ method: 'freqkv', capacity: 64 }, tinyQwen2).compressor as FreqKvCompressor;
    expect([freqkv.capacity, freqkv.sinks, freqkv.retain]).toEqual([64, 4, 0.5]);
    expect(createCompressor({ method: 'streaming', capacity: 6, sinks: 4 }, tinyQwen2).compressor).toBeInstanceOf(StreamingCompressor);
  });

  it('rejects a capacity below sinks + 2 and a retention outside (0, 1); warns past the trained context', () => {
    expect(() => createCompressor({ method: 'freqkv', capacity: 5, sinks: 4 }, tinyQwen2)).toThrow(CacheOptionsError);
    expect(() => createCompressor({ method: 'streaming', capacity: 5, sinks: 4 }, tinyQwen2)).toThrow(/at least sinks \+ 2 = 6/);
    for (const retain of [0, 1, -0.5, 1.5, NaN]) expect(() => createCompressor({ method: 'freqkv', capacity: 64, retain }, tinyQwen2)).toThrow(/\(0, 1\)/);
    expect(() => createCompressor({ method: 'freqkv', capacity: 0 }, tinyQwen2)).toThrow(CacheOptionsError);
    expect(() => createCompressor({ method: 'lru' as 'full' }, tinyQwen2)).toThrow(CacheOptionsError);
    const { warnings } = createCompressor({ method: 'freqkv', capacity: 1000 }, tinyQwen2);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/larger than the model's trained context \(128\)/);
  });
});

describe('generation with a compressor (embedded model, trained context 512)', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await Engine.load({ modelDir: EMBEDDED_MODEL, threads: 1 });
  });
  afterAll(async () => {
    await engine.dispose();
  });

  async function run(request: Parameters<Engine['generate']>[0]): Promise<{ done: Extract<GenerationEvent, { kind: 'done' }>; maxRows: number }> {
    let maxRows = 0;
    for await (const event of engine.generate(request)) {
      maxRows = Math.max(maxRows, event.stats.cacheRows);
      if (event.kind === 'done') return { done: event, maxRows };
    }
    throw new Error('no done event');
  }

  it('freqkv and streaming without compression equal the full cache token for token', async () => {
    const request = { prompt: 'Once upon a time', maxNewTokens: 300, sampling: { temperature: 0 } };
    const full = await run(request);
    for (const method of ['freqkv', 'streaming'] as const) {
      const other = await run({ ...request, cache: { method, capacity: 512 } });
      expect(other.done.stats.compressions).toBe(0);
      expect(other.done.tokenIds).toEqual(full.done.tokenIds);
      expect(other.done.text).toBe(full.done.text);
    }
  });

  it.each([
    ['freqkv', 256],
    ['streaming', 256],
  ] as const)('%s (N=%i) generates 3000 tokens after a prompt longer than N; rows ≤ N, positions ≤ N − 1', async (method, N) => {
    const promptIds = [1, ...Array.from({ length: 600 }, (_, i) => 3 + ((i * 37) % 500))];
    const { done, maxRows } = await run({ promptIds, maxNewTokens: 3000, sampling: { temperature: 1 }, seed: 3, cache: { method, capacity: N } });
    expect(done.reason).toBe('max-tokens');
    expect(done.stats.generatedTokens).toBe(3000);
    expect(done.stats.tokensSeen).toBe(3601);
    expect(maxRows).toBeLessThanOrEqual(N);
    expect(done.stats.maxPosition).toBe(N - 1);
    expect(done.stats.compressions).toBeGreaterThan(0);
    expect(done.stats.effectiveRatio).toBeCloseTo(3601 / done.stats.cacheRows, 10);
  });

  it('freqkv compresses exactly when the spec says; a chunked prefill equals token by token', async () => {
    const N = 64;
    const promptIds = [1, ...Array.from({ length: 199 }, (_, i) => 3 + ((i * 11) % 400))];
    const request = { promptIds, maxNewTokens: 100, sampling: { temperature: 0 }, cache: { method: 'freqkv' as const, capacity: N, sinks: 4, retain: 0.5, recent: 0 } };
    const chunked = (await run(request)).done;
    // Token by token: 200 prompt tokens and 99 decoded ones are fed (the last one is not);
    // compress whenever the cache is full and one more arrives.
    let n = 0;
    let compressions = 0;
    for (let fed = 0; fed < 299; fed++) {
      if (n + 1 > N) {
        n = 4 + Math.floor(0.5 * (n - 4));
        compressions++;
      }
      n += 1;
    }
    expect(chunked.stats.compressions).toBe(compressions);
    expect(chunked.stats.cacheRows).toBe(n);
    const single = (await run({ ...request, prefillChunkSize: 1 })).done;
    expect(single.stats.compressions).toBe(compressions);
    expect(single.tokenIds).toEqual(chunked.tokenIds);
  });

  it('full still refuses a prompt longer than the cache and stops when it is full', async () => {
    const promptIds = Array.from({ length: 100 }, () => 5);
    await expect(run({ promptIds, maxNewTokens: 10, sampling: { temperature: 0 }, cache: { method: 'full', capacity: 64 } })).rejects.toThrow(ContextOverflowError);
    const { done } = await run({ promptIds: promptIds.slice(0, 60), maxNewTokens: 50, sampling: { temperature: 0 }, cache: { method: 'full', capacity: 64 } });
    expect(done.reason).toBe('context-full');
    expect(done.stats.maxPosition).toBe(63);
  });
});

describe('float16 KV caches (random Qwen2-shaped model)', () => {
  it('freqkv and streaming run past the context; without compression they equal full', async () => {
    const { dir } = buildTestModel(randomDecoderModel(tinyQwen2, 5), { kvCache: 'float16' }, tempDir('f16'));
    const f16 = await Engine.load({ modelDir: dir, threads: 1 });
    try {
      expect(f16.folder.signature.kvElementType).toBe('float16');
      const collect = async (request: Parameters<Engine['generate']>[0]): Promise<Extract<GenerationEvent, { kind: 'done' }>> => {
        for await (const event of f16.generate(request)) if (event.kind === 'done') return event;
        throw new Error('no done event');
      };
      const base = { promptIds: [1, 5, 9, 13], maxNewTokens: 100, sampling: { temperature: 0 } };
      const full = await collect(base);
      for (const method of ['freqkv', 'streaming'] as const) {
        const same = await collect({ ...base, cache: { method, capacity: 128 } });
        expect(same.stats.compressions).toBe(0);
        expect(same.tokenIds).toEqual(full.tokenIds);
        const long = await collect({ ...base, maxNewTokens: 400, cache: { method, capacity: 32, sinks: 2 } });
        expect(long.stats.generatedTokens).toBe(400);
        expect(long.stats.maxPosition).toBe(31);
        expect(long.stats.compressions).toBeGreaterThan(0);
      }
    } finally {
      await f16.dispose();
    }
  });
});
