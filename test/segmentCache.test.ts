// The segmented workspace cache on the real embedded model, with real files in temp folders:
// a one-file workspace at full resolution gives the sequential cache's logits; edits, additions
// and deletions re-prefill only what changed; corrupt segments are rebuilt; a model change
// does not reuse segments; an unwritable store answers without persisting; many small files
// stream through with progress and without holding their segments in memory.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomDecoderModel } from '../src/builder/randomWeights';
import { Engine } from '../src/engine/engine';
import { WorkspaceSegmentCache, type SegmentCacheSettings, type WorkspaceFileEntry } from '../src/engine/segments/workspaceSegmentCache';
import { buildTestModel, EMBEDDED_MODEL, maxAbsDiff, tempDir } from './helpers';

let engine: Engine;
beforeAll(async () => {
  engine = await Engine.load({ modelDir: EMBEDDED_MODEL, threads: 1 });
});
afterAll(async () => {
  await engine.dispose();
});

const STORY = 'Once upon a time there was a little cat named Tom. Tom liked to play with a red ball in the garden. ';

function settings(storeDir: string | undefined, extra: Partial<SegmentCacheSettings> = {}): SegmentCacheSettings {
  return { codec: 'float32', capacity: 512, sinks: 4, retain: 0.5, recent: 256, storeDir, workspaceId: 'ws', ...extra };
}

function open(storeDir: string | undefined, extra: Partial<SegmentCacheSettings> = {}, on: Engine = engine): WorkspaceSegmentCache {
  return new WorkspaceSegmentCache(on.session, on.tokenizer, on.folder, settings(storeDir, extra));
}

function segmentFiles(store: string): string[] {
  const dir = path.join(store, 'v1', 'segments');
  return fs.readdirSync(dir).filter((f) => f.endsWith('.seg')).map((f) => path.join(dir, f));
}

const files: WorkspaceFileEntry[] = [
  { path: 'cat.txt', text: STORY.repeat(2) },
  { path: 'dog.txt', text: 'The dog ran to the park. He saw a big tree and a bird. '.repeat(2) },
  { path: 'notes/sun.md', text: 'The sun was warm. Lily and her mom went to the beach to swim.' },
];

describe('WorkspaceSegmentCache', () => {
  it('a one-file workspace at full resolution gives the logits of the sequential cache', async () => {
    const segments = open(tempDir('seg-store'));
    await segments.update([files[0]!]);
    const assembled = await segments.assemble('Where did Tom play?', { reserveRows: 0 });
    expect(assembled.files).toEqual([expect.objectContaining({ path: 'cat.txt', rows: segments.files[0]!.rows, firstSlot: 1 })]);
    const segmented = await engine.session.forward(assembled.questionIds, assembled.cache);
    const ids = segments.sequentialIds(['cat.txt'], 'Where did Tom play?');
    const sequentialCache = engine.session.createCache(512);
    const sequential = await engine.session.forward(ids, sequentialCache);
    const vocab = engine.session.vocabSize;
    const q = assembled.questionIds.length;
    expect(assembled.cache.rows).toBe(sequentialCache.rows);
    expect(maxAbsDiff(segmented, sequential.subarray((ids.length - q) * vocab))).toBeLessThan(1e-3);
  });

  it('a follow-up puts the earlier turns in the question suffix, reuses the stored segments, and keeps the earlier question\'s files relevant', async () => {
    const store = tempDir('seg-store');
    const segments = open(store);
    await segments.update(files);
    const history = [{ question: 'Where did the dog run?', answer: 'The dog ran to the park.' }];
    const followUp = await segments.assemble('What did he see there?', { history });
    // The prompt after the files: the earlier question and answer, then this question.
    const suffix = engine.tokenizer.decode(followUp.questionIds);
    expect(suffix).toContain('Question: Where did the dog run?\nAnswer: The dog ran to the park.\nQuestion: What did he see there?\nAnswer:');
    // "he" and "there" name nothing; the earlier question makes dog.txt the most relevant file (it goes last, nearest the question).
    expect(followUp.files.at(-1)!.path).toBe('dog.txt');
    expect(followUp.files.find((f) => f.path === 'dog.txt')!.score).toBeGreaterThan(0);
    // Nothing is prefilled again for the follow-up: the segments are the same files.
    const again = await open(store).update(files);
    expect([again.built, again.reused]).toEqual([0, files.length]);
  });

  it('a file longer than the cache is compressed with FreqKV while it is prefilled', async () => {
    const segments = open(tempDir('seg-store'), { capacity: 128, recent: 32 });
    const report = await segments.update([{ path: 'long.txt', text: STORY.repeat(30) }]);
    const [file] = segments.files;
    expect(file!.tokens).toBeGreaterThan(1000);
    expect(file!.rows).toBeLessThanOrEqual(127);
    expect(report.tokensPrefilled).toBe(file!.tokens);
    const assembled = await segments.assemble('What did Tom like?');
    expect(assembled.cache.rows).toBeLessThanOrEqual(128);
    expect(assembled.tokensRepresented).toBe(1 + file!.tokens);
  });

  it('re-prefills only new and changed files and collects the segments of deleted ones', async () => {
    const store = tempDir('seg-store');
    const first = await open(store).update(files);
    expect([first.built, first.reused, first.removed]).toEqual([3, 0, 0]);
    expect(segmentFiles(store)).toHaveLength(3);
    // A new process (a new cache object) on the same store reuses everything.
    const again = await open(store).update(files);
    expect([again.built, again.reused, again.tokensPrefilled]).toEqual([0, 3, 0]);
    const edited = [{ ...files[0]!, text: `${files[0]!.text}The end.` }, files[1]!, files[2]!];
    const afterEdit = await open(store).update(edited);
    expect([afterEdit.built, afterEdit.reused, afterEdit.removed]).toEqual([1, 2, 1]);
    const afterDelete = await open(store).update(edited.slice(0, 2));
    expect([afterDelete.built, afterDelete.reused, afterDelete.removed]).toEqual([0, 2, 1]);
    expect(segmentFiles(store)).toHaveLength(2);
  });

  it('truncated and bit-flipped segment files are rebuilt, at update and at assembly', async () => {
    const store = tempDir('seg-store');
    await open(store).update(files);
    const [a, b, c] = segmentFiles(store);
    fs.truncateSync(a!, Math.floor(fs.statSync(a!).size / 2));
    const bytes = fs.readFileSync(b!);
    const middle = bytes.length >> 1;
    bytes[middle] = bytes[middle]! ^ 0x01;
    fs.writeFileSync(b!, bytes);
    const segments = open(store);
    const report = await segments.update(files);
    expect([report.built, report.rebuiltCorrupt, report.reused]).toEqual([2, 2, 1]);
    // Corrupted after the update: the assembly rebuilds it and says so.
    fs.writeFileSync(c!, 'garbage');
    const assembled = await segments.assemble('Where is the sun?');
    expect(assembled.files).toHaveLength(3);
    expect(assembled.warnings.join('\n')).toMatch(/rebuilt/);
    const reread = await open(store).update(files);
    expect([reread.built, reread.reused]).toEqual([0, 3]);
  });

  it('a model change does not use the old segments', async () => {
    const store = tempDir('seg-store');
    await open(store).update(files);
    const { dir } = buildTestModel(randomDecoderModel(engine.folder.config, 11));
    const other = await Engine.load({ modelDir: dir, threads: 1 });
    try {
      const report = await open(store, {}, other).update(files);
      expect([report.built, report.reused]).toEqual([3, 0]);
    } finally {
      await other.dispose();
    }
    // Nor does a change of settings (another capacity) use them.
    expect((await open(store, { capacity: 256, recent: 128 }).update(files)).reused).toBe(0);
    // The first model's segments are still there.
    expect((await open(store).update(files)).reused).toBe(3);
  });

  it('an unwritable store answers without persisting, and says so', async () => {
    const parent = path.join(tempDir('seg-ro'), 'a-file');
    fs.writeFileSync(parent, 'not a folder');
    const stores = [path.join(parent, 'store')];
    // chmod does not stop root; when not root, a read-only folder is tested too.
    if (process.getuid?.() !== 0) {
      const readOnly = tempDir('seg-ro-chmod');
      fs.chmodSync(readOnly, 0o500);
      stores.push(readOnly);
    }
    for (const store of stores) {
      const segments = open(store);
      const report = await segments.update(files);
      expect(report.persisted, store).toBe(false);
      expect(report.warnings.join('\n')).toMatch(/cannot be written .*without persisting/);
      const assembled = await segments.assemble('Where did Tom play?');
      expect(assembled.files).toHaveLength(3);
      expect(assembled.warnings.join('\n')).toMatch(/without persisting/);
      const tokens: number[] = [];
      for await (const event of engine.generate({ promptIds: assembled.questionIds, startCache: assembled.cache, maxNewTokens: 4, sampling: { temperature: 0, topP: 1, topK: 0, repetitionPenalty: 1 }, cache: { method: 'freqkv', capacity: 512 } })) {
        if (event.kind === 'done') tokens.push(...event.tokenIds);
      }
      expect(tokens).toHaveLength(4);
    }
  });

  it('shares a small budget: every file has rows or is named as dropped', async () => {
    const many = Array.from({ length: 30 }, (_, i) => ({ path: `f${i}.txt`, text: i === 7 ? 'The magic dragon slept in a cave.' : `File ${i}. ${STORY}` }));
    const segments = open(tempDir('seg-store'));
    await segments.update(many);
    const stored = segments.files.reduce((n, f) => n + f.rows, 0);
    const small = await segments.assemble('Where did the dragon sleep?', { budget: 128, reserveRows: 8, minRows: 4 });
    expect(small.files.length + small.dropped.length).toBe(30);
    expect(small.dropped.length).toBeGreaterThan(0);
    expect(small.dropped[0]!.reason).toMatch(/minimum of 4 rows/);
    expect(small.cache.rows).toBeLessThanOrEqual(128);
    expect(small.files.every((f) => f.rows >= 4)).toBe(true);
    // The file that matches the question sits last, next to the question.
    expect(small.files[small.files.length - 1]!.path).toBe('f7.txt');
    // With room for every minimum: nothing dropped, the match at full resolution, the rest shortened.
    const larger = await segments.assemble('Where did the dragon sleep?', { budget: 400, reserveRows: 8 });
    expect(stored).toBeGreaterThan(400);
    expect(larger.dropped).toEqual([]);
    const last = larger.files[larger.files.length - 1]!;
    expect(last.path).toBe('f7.txt');
    expect(last.rows).toBe(last.storedRows);
    expect(larger.files.some((f) => f.rows < f.storedRows)).toBe(true);
    expect(larger.cache.rows).toBeLessThanOrEqual(400);
  });

  it('many small files stream through with progress, without holding their segments in memory', async () => {
    const count = 400;
    const small = Array.from({ length: count }, (_, i) => ({ path: `dir${i % 10}/file${i}.txt`, text: `Tom had ${i} apples.` }));
    const store = tempDir('seg-store');
    const segments = open(store);
    const progress: number[] = [];
    global.gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    const report = await segments.update(small, (p) => progress.push(p.filesDone));
    const heapAfter = process.memoryUsage().heapUsed;
    expect(report.built).toBe(count);
    expect(progress).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    const files = segmentFiles(store);
    expect(files).toHaveLength(count);
    const segmentBytes = files.reduce((n, f) => n + fs.statSync(f).size, 0);
    // Holding every segment would take at least their size on disk.
    expect(heapAfter - heapBefore).toBeLessThan(segmentBytes / 2);
  });
});
