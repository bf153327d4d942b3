// The engine worker and its client in plain node (no VS Code): the protocol round trip on the
// embedded model, cancel mid-decode, a second request while one runs, a bad model folder, and
// a worker that dies and is restarted on the next request.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineClient } from '../src/extension/engineClient';
import type { EngineEvent, GenerateParams } from '../src/protocol';
import { EMBEDDED_MODEL } from './helpers';

const ROOT = path.resolve(__dirname, '..');
const WORKER = path.join(ROOT, 'dist', 'worker.js');
const CRASH_ONCE_WORKER = path.join(ROOT, 'test', 'fixtures', 'crashOnceWorker.mjs');
const STORY: GenerateParams = { prompt: 'Once upon a time', maxNewTokens: 40, sampling: { temperature: 0 } };

let client: EngineClient;

beforeAll(() => {
  client = new EngineClient(WORKER);
});
afterAll(async () => {
  await client.dispose();
});

describe('engine worker through EngineClient', () => {
  it('a bad model folder is a typed error, and the worker keeps serving', async () => {
    await expect(client.loadModel({ modelDir: path.join(ROOT, 'no-such-model') })).rejects.toMatchObject({ name: 'ModelNotFoundError' });
    await expect(client.generate(STORY)).rejects.toMatchObject({ name: 'NoModelLoadedError' });
    expect((await client.getStats()).model).toBeNull();
  });

  it('loads the embedded model and streams a generation with statistics', async () => {
    const info = await client.loadModel({ modelDir: EMBEDDED_MODEL, threads: 1 });
    expect(info).toMatchObject({ contextLength: 512, vocabSize: 512 });
    const events: EngineEvent[] = [];
    const result = await client.generate(STORY, (event) => events.push(event));
    expect(result.reason).toBe('max-tokens');
    expect(result.stats.generatedTokens).toBe(40);
    expect(events[0]?.kind).toBe('prefill');
    expect(events.at(-1)).toMatchObject({ kind: 'done', reason: 'max-tokens', text: result.text });
    const streamed = events.map((event) => (event.kind === 'token' ? event.text : '')).join('');
    expect(streamed).toBe(result.text);
    expect(result.text.length).toBeGreaterThan(20);
    expect(result.stats.cacheBytes).toBeGreaterThan(0);
    expect((await client.getStats()).stats).toEqual(result.stats);
  });

  it('the async iterable gives the same events and the same text (greedy)', async () => {
    const first = await client.generate(STORY);
    let text = '';
    for await (const event of client.stream(STORY)) if (event.kind === 'token') text += event.text;
    expect(text).toBe(first.text);
  });

  it('compresses with a small freqkv cache and reports it', async () => {
    const result = await client.generate({ ...STORY, maxNewTokens: 120, cache: { method: 'freqkv', capacity: 64 } });
    expect(result.stats.compressions).toBeGreaterThan(0);
    expect(result.stats.effectiveRatio).toBeGreaterThan(1);
    expect(result.stats.cacheCapacity).toBe(64);
  });

  it('cancel mid-decode ends with reason cancelled, and the next request works', async () => {
    let cancelAsked: Promise<boolean> | undefined;
    const result = await client.generate({ ...STORY, maxNewTokens: 400, cache: { method: 'streaming', capacity: 64 } }, (event) => {
      if (event.kind === 'token' && event.stats.generatedTokens === 5) cancelAsked = client.cancel();
    });
    expect(await cancelAsked).toBe(true);
    expect(result.reason).toBe('cancelled');
    expect(result.stats.generatedTokens).toBeLessThan(400);
    expect((await client.generate(STORY)).reason).toBe('max-tokens');
    expect(await client.cancel()).toBe(false);
  });

  it('cancel during prefill ends with reason cancelled before any token, and the next request works', async () => {
    let cancelAsked: Promise<boolean> | undefined;
    let promptLength = 0;
    const longPrompt = 'Once upon a time there was a little cat. '.repeat(60);
    const result = await client.generate({ ...STORY, prompt: longPrompt, prefillChunkSize: 8, cache: { method: 'freqkv', capacity: 64 } }, (event) => {
      if (event.kind === 'prefill' && cancelAsked === undefined) {
        promptLength = event.tokensTotal;
        cancelAsked = client.cancel();
      }
    });
    expect(await cancelAsked).toBe(true);
    expect(result.reason).toBe('cancelled');
    expect(result.stats.generatedTokens).toBe(0);
    expect(result.stats.promptTokens).toBeLessThan(promptLength);
    expect((await client.generate(STORY)).reason).toBe('max-tokens');
  });

  it('a second request while one runs is refused with EngineBusyError; the first finishes', async () => {
    const first = client.generate(STORY);
    const second = client.generate(STORY);
    await expect(second).rejects.toMatchObject({ name: 'EngineBusyError' });
    expect((await first).reason).toBe('max-tokens');
  });

  it('a bad request (temperature < 0) is a typed error, not a crash', async () => {
    await expect(client.generate({ ...STORY, sampling: { temperature: -1 } })).rejects.toMatchObject({ name: 'RangeError' });
    await expect(client.generate({ ...STORY, cache: { method: 'freqkv', capacity: 3 } })).rejects.toMatchObject({ name: 'CacheOptionsError' });
    expect((await client.generate(STORY)).reason).toBe('max-tokens');
  });

  it('a worker that dies fails the request in flight and is restarted, with its model, on the next request', async () => {
    // The worker really exits (code 3) on receiving this request, while no onnxruntime run is
    // in flight: terminating it inside a run could abort the whole process, test runner included.
    const marker = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'freqkv-crash-')), 'crashed');
    process.env.FREQKV_CRASH_MARKER = marker;
    const crashing = new EngineClient(CRASH_ONCE_WORKER);
    try {
      await crashing.loadModel({ modelDir: EMBEDDED_MODEL, threads: 1 });
      await expect(crashing.generate({ ...STORY, prompt: 'crash the worker now' })).rejects.toMatchObject({ name: 'WorkerCrashedError' });
      expect(fs.existsSync(marker)).toBe(true);
      const result = await crashing.generate({ ...STORY, prompt: 'crash the worker now' });
      expect(result.reason).toBe('max-tokens');
      expect(crashing.restartCount).toBe(1);
    } finally {
      await crashing.dispose();
      delete process.env.FREQKV_CRASH_MARKER;
    }
  });
});
