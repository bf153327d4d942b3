// The engine on the embedded model: golden texts, the committed model equals a fresh build,
// and the bad inputs a user can give a generation request.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/engine';
import type { GenerationEvent } from '../src/engine/generate/generator';
import { ContextOverflowError, EmptyPromptError, EngineBusyError, InvalidRequestError } from '../src/engine/generate/errors';
import { readLlama2cCheckpoint } from '../src/builder/llama2cCheckpoint';
import { writeModelFolder } from '../src/builder/modelFolderWriter';
import { randomDecoderModel } from '../src/builder/randomWeights';
import { readTokenizerFiles } from '../src/builder/tokenizerFiles';
import { EMBEDDED_MODEL, SHARED, STORIES_DIR, storiesTokenizer, tempDir } from './helpers';
import { tinyQwen2 } from './testModels';

const GREEDY = { temperature: 0 };
let engine: Engine;
const work = tempDir('engine');

beforeAll(async () => {
  engine = await Engine.load({ modelDir: EMBEDDED_MODEL, threads: 1 });
});
afterAll(async () => {
  await engine.dispose();
  fs.rmSync(work, { recursive: true, force: true });
});

async function collect(events: AsyncIterable<GenerationEvent>): Promise<{ streamed: string; done: Extract<GenerationEvent, { kind: 'done' }> }> {
  let streamed = '';
  for await (const event of events) {
    if (event.kind === 'token') streamed += event.text;
    if (event.kind === 'done') return { streamed, done: event };
  }
  throw new Error('generation ended without a done event');
}

describe('golden outputs of llama2.c run.c', () => {
  it('from BOS: run.c steps 256 = 256 generated tokens, text identical', async () => {
    const golden = fs.readFileSync(path.join(STORIES_DIR, 'golden-greedy-from-bos-256.txt'), 'utf8');
    const { streamed, done } = await collect(engine.generate({ maxNewTokens: 256, sampling: GREEDY }));
    // run.c ends its output with a newline of its own.
    expect(`${streamed}\n`).toBe(golden);
    expect(done.text).toBe(streamed);
    expect(done.reason).toBe('max-tokens');
    expect(done.stats.generatedTokens).toBe(256);
  });

  it('with a prompt: run.c steps 200 counts the prompt positions', async () => {
    const golden = fs.readFileSync(path.join(STORIES_DIR, 'golden-greedy-prompt-200.txt'), 'utf8');
    const prompt = 'Tom and his dog went to the park.';
    const promptIds = engine.encodePrompt({ prompt });
    expect(promptIds[0]).toBe(1); // BOS
    // run.c prints one token per position: the prompt after BOS, then generated ones.
    const generated = 200 - (promptIds.length - 1);
    const { streamed } = await collect(engine.generate({ prompt, maxNewTokens: generated, sampling: GREEDY, prefillChunkSize: 3 }));
    expect(`${prompt}${streamed}\n`).toBe(golden);
  });

  it('the same texts from a graph that outputs only new cache rows (the builder default)', async () => {
    const dir = path.join(work, 'new-rows');
    writeModelFolder(dir, readLlama2cCheckpoint(fs.readFileSync(path.join(STORIES_DIR, 'stories260K.bin'))), storiesTokenizer(), { weights: 'float32', kvCache: 'float32', externalData: 'never' });
    const newRows = await Engine.load({ modelDir: dir, threads: 1 });
    try {
      expect(newRows.session.folder.signature.kvOutputs).toBe('new');
      const fromBos = await collect(newRows.generate({ maxNewTokens: 256, sampling: GREEDY }));
      expect(`${fromBos.streamed}\n`).toBe(fs.readFileSync(path.join(STORIES_DIR, 'golden-greedy-from-bos-256.txt'), 'utf8'));
      const prompt = 'Tom and his dog went to the park.';
      const generated = 200 - (newRows.encodePrompt({ prompt }).length - 1);
      const withPrompt = await collect(newRows.generate({ prompt, maxNewTokens: generated, sampling: GREEDY, prefillChunkSize: 3 }));
      expect(`${prompt}${withPrompt.streamed}\n`).toBe(fs.readFileSync(path.join(STORIES_DIR, 'golden-greedy-prompt-200.txt'), 'utf8'));
    } finally {
      await newRows.dispose();
    }
  });
});

describe('the embedded model', () => {
  it('equals a fresh build from ../shared/models/stories260K', () => {
    const model = readLlama2cCheckpoint(fs.readFileSync(path.join(STORIES_DIR, 'stories260K.bin')));
    const fresh = path.join(work, 'fresh');
    writeModelFolder(fresh, model, storiesTokenizer(), { weights: 'float32', kvCache: 'float32', externalData: 'never', kvOutputs: 'present' });
    const files = (dir: string): string[] => fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();
    const committed = files(EMBEDDED_MODEL).filter((f) => f !== 'LICENSE' && f !== 'README.md');
    expect(files(fresh)).toEqual(committed);
    for (const file of committed) {
      expect(fs.readFileSync(path.join(fresh, file)).equals(fs.readFileSync(path.join(EMBEDDED_MODEL, file))), file).toBe(true);
    }
  });
});

describe('requests', () => {
  it('sampling with a seed repeats; another seed differs', async () => {
    const run = async (seed: number): Promise<string> =>
      (await collect(engine.generate({ prompt: 'Lily', maxNewTokens: 40, sampling: { temperature: 1, topP: 0.95 }, seed }))).streamed;
    const a = await run(1);
    expect(await run(1)).toBe(a);
    expect(await run(2)).not.toBe(a);
  });

  it('an empty prompt starts from BOS on a model that has one', async () => {
    const { streamed } = await collect(engine.generate({ prompt: '', maxNewTokens: 5, sampling: GREEDY }));
    expect(streamed).toBe('Once upon a time,');
  });

  it('an empty prompt on a model without BOS is a clear error', async () => {
    const dir = path.join(work, 'nobos');
    writeModelFolder(dir, randomDecoderModel({ ...tinyQwen2, bosTokenId: undefined, vocabSize: 151665 / 5 | 0 }, 1), readTokenizerFiles(path.join(SHARED, 'formats', 'qwen2.5-coder-instruct')), {
      weights: 'float32',
      kvCache: 'float32',
    });
    const noBos = await Engine.load({ modelDir: dir });
    try {
      await expect(collect(noBos.generate({ prompt: '', maxNewTokens: 5, sampling: GREEDY }))).rejects.toThrow(EmptyPromptError);
    } finally {
      await noBos.dispose();
    }
  });

  it('a tokenizer with more tokens than the model is a clear error, not an onnxruntime failure', async () => {
    const dir = path.join(work, 'small-vocab');
    writeModelFolder(dir, randomDecoderModel(tinyQwen2, 1), storiesTokenizer(), { weights: 'float32', kvCache: 'float32' });
    const mismatched = await Engine.load({ modelDir: dir });
    try {
      const run = collect(mismatched.generate({ prompt: 'Once upon a time, a cat', maxNewTokens: 5, sampling: GREEDY }));
      await expect(run).rejects.toThrow(InvalidRequestError);
      await expect(collect(mismatched.generate({ prompt: 'Once upon a time, a cat', maxNewTokens: 5, sampling: GREEDY }))).rejects.toThrow(/only 97 tokens .* tokenizer.json \(512 tokens\) does not belong to this model/);
      // Ids inside the model's range still run.
      await expect(collect(mismatched.generate({ promptIds: [1, 20, 30], maxNewTokens: 2, sampling: GREEDY }))).resolves.toBeDefined();
    } finally {
      await mismatched.dispose();
    }
  });

  it('max new tokens 0 is refused', async () => {
    await expect(collect(engine.generate({ prompt: 'Hi', maxNewTokens: 0, sampling: GREEDY }))).rejects.toThrow(InvalidRequestError);
  });

  it('a prompt longer than the context is a clear error that names both lengths', async () => {
    const long = 'Once upon a time there was a dog. '.repeat(100);
    const run = collect(engine.generate({ prompt: long, maxNewTokens: 5, sampling: GREEDY }));
    await expect(run).rejects.toThrow(ContextOverflowError);
    await expect(collect(engine.generate({ prompt: long, maxNewTokens: 5, sampling: GREEDY }))).rejects.toThrow(/at most 512/);
  });

  it('generation stops when the cache is full', async () => {
    const { done } = await collect(engine.generate({ maxNewTokens: 1000, sampling: GREEDY, capacity: 40 }));
    expect(done.reason).toBe('context-full');
    expect(done.stats.cacheRows).toBe(40);
  });

  it('stop strings end the text before the stop string', async () => {
    const { done } = await collect(engine.generate({ maxNewTokens: 100, sampling: GREEDY, stopStrings: ['Lily'] }));
    expect(done.reason).toBe('stop-string');
    expect(done.text).toBe('Once upon a time, there was a little girl named ');
  });

  it('cancellation during prefill and during decode; the engine works afterwards', async () => {
    const duringPrefill = new AbortController();
    let prefillEvents = 0;
    let result: Extract<GenerationEvent, { kind: 'done' }> | undefined;
    for await (const event of engine.generate({ prompt: 'Tom and his dog went to the park. '.repeat(20), maxNewTokens: 50, sampling: GREEDY, prefillChunkSize: 16, signal: duringPrefill.signal })) {
      if (event.kind === 'prefill' && ++prefillEvents === 2) duringPrefill.abort();
      if (event.kind === 'done') result = event;
    }
    expect(result?.reason).toBe('cancelled');
    expect(result?.stats.generatedTokens).toBe(0);

    const duringDecode = new AbortController();
    let tokens = 0;
    for await (const event of engine.generate({ maxNewTokens: 200, sampling: GREEDY, signal: duringDecode.signal })) {
      if (event.kind === 'token' && ++tokens === 10) duringDecode.abort();
      if (event.kind === 'done') result = event;
    }
    expect(result?.reason).toBe('cancelled');
    expect(result?.stats.generatedTokens).toBe(10);

    const { streamed } = await collect(engine.generate({ maxNewTokens: 5, sampling: GREEDY }));
    expect(streamed).toBe('Once upon a time,');
  });

  it('a second request while one runs is refused clearly', async () => {
    const first = engine.generate({ maxNewTokens: 20, sampling: GREEDY });
    await first.next();
    await expect(collect(engine.generate({ maxNewTokens: 5, sampling: GREEDY }))).rejects.toThrow(EngineBusyError);
    await first.return(undefined);
    const { streamed } = await collect(engine.generate({ maxNewTokens: 5, sampling: GREEDY }));
    expect(streamed).toBe('Once upon a time,');
  });

  it('statistics describe the cache', async () => {
    const { done } = await collect(engine.generate({ maxNewTokens: 30, sampling: GREEDY }));
    const s = done.stats;
    const config = engine.folder.config;
    expect(s.promptTokens).toBe(1);
    expect(s.generatedTokens).toBe(30);
    expect(s.tokensSeen).toBe(31);
    // The last sampled token is never fed back, so the cache holds one row less than seen.
    expect(s.cacheRows).toBe(30);
    expect(s.cacheBytes).toBe(30 * config.numLayers * 2 * config.numKvHeads * config.headDim * 4);
    expect(s.cacheCapacity).toBe(512);
    expect(s.decodeTokensPerSecond).toBeGreaterThan(0);
    expect(s.prefillTokensPerSecond).toBeGreaterThan(0);
    expect(s.timeToFirstTokenMs).toBeGreaterThan(0);
  });
});
