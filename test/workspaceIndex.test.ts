// The workspace index on the real embedded model with real files in temp folders: a warm
// question reads nothing; edits, additions and deletions (and a watcher's paths) read only what
// changed; every file not in the cache is listed with its reason, warm or cold; answer-first prefills only the relevant files; the token limit applies after
// relevance; the manifest survives a restart and a bad one is rebuilt (reusing stored
// segments); files that change or vanish while indexing; the store deleted under a running
// index; a full disk (ENOSPC through the injected write function); 200,000 files.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/engine';
import { askWorkspace, openWorkspaceIndex, rankFiles, nextFileForAnswer, PROBE_TOKENS, type IndexSettings, type AskWorkspaceOptions } from '../src/engine/index/askWorkspace';
import { DirectorySource, type IndexSource } from '../src/engine/index/directorySource';
import { INDEX_FORMAT, type IndexedFile } from '../src/engine/index/workspaceIndex';
import type { SourceEntry, SourceFile } from '../src/engine/workspace/types';
import { EMBEDDED_MODEL, tempDir } from './helpers';

let engine: Engine;
beforeAll(async () => {
  engine = await Engine.load({ modelDir: EMBEDDED_MODEL, threads: 1 });
});
afterAll(async () => {
  await engine.dispose();
});

const ASK: AskWorkspaceOptions = { maxNewTokens: 4, sampling: { temperature: 0 } };

function workspace(files: Record<string, string>): string {
  const dir = tempDir('ws');
  for (const [p, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), text);
  }
  return dir;
}

const FILES = {
  'cat.txt': 'Once upon a time there was a little cat named Tom. Tom liked to play with a red ball. '.repeat(3),
  'dog.txt': 'The dog ran to the park. He saw a big tree and a bird. '.repeat(3),
  'notes/sun.md': 'The sun was warm. Lily and her mom went to the beach to swim.',
};

function settings(storeDir: string | undefined, extra: Partial<IndexSettings> = {}): IndexSettings {
  return { codec: 'int8', capacity: 512, storeDir, workspaceId: 'ws', ...extra };
}

async function open(root: string, storeDir: string | undefined, extra: Partial<IndexSettings> = {}) {
  return (await openWorkspaceIndex(engine, settings(storeDir, extra), new DirectorySource([{ dir: root }]))).index;
}

function bump(file: string, text: string): void {
  fs.writeFileSync(file, text);
  const later = new Date(Date.now() + 5000);
  fs.utimesSync(file, later, later);
}

describe('workspace index', () => {
  it('answers first from the relevant files, then reads nothing on a warm question, and survives a restart', async () => {
    const root = workspace(FILES);
    const store = tempDir('store');
    const index = await open(root, store);
    const cold = await askWorkspace(engine, index, 'Which ball did Tom like?', ASK);
    expect(cold.refresh).toMatchObject({ files: 3, read: 3, changed: 3 });
    // Only the files that match the question were prefilled; the other one waits for the background.
    expect(cold.indexedForAnswer.files).toBe(1);
    expect(cold.assembled.files.map((f) => f.path)).toEqual(['cat.txt']);
    expect(cold.counts).toMatchObject({ filesTotal: 3, filesIndexed: 1 });
    expect(cold.timeToFirstTokenMs).toBeGreaterThan(0);
    const warm = await askWorkspace(engine, index, 'Which ball did Tom like?', ASK);
    expect(warm.refresh).toMatchObject({ files: 3, read: 0, changed: 0 });
    expect(warm.indexedForAnswer.files).toBe(0);
    expect(warm.text).toBe(cold.text);

    const background = await index.indexPending();
    expect(background).toMatchObject({ filesIndexed: 2, complete: true, stopped: false });
    // A new process: the manifest and the search index come back; nothing is read or prefilled.
    const again = await open(root, store);
    expect(again.warnings).toEqual([]);
    expect(again.counts()).toMatchObject({ filesTotal: 3, filesIndexed: 3 });
    const restarted = await askWorkspace(engine, again, 'Which ball did Tom like?', ASK);
    expect(restarted.refresh).toMatchObject({ read: 0 });
    expect(restarted.indexedForAnswer.files).toBe(0);
    expect(restarted.assembled.files).toHaveLength(3);
  });

  it('reads only the edited, added and deleted files; a watcher’s paths alone are enough', async () => {
    const root = workspace(FILES);
    const index = await open(root, tempDir('store'));
    await index.refresh();
    await index.indexPending();
    bump(path.join(root, 'dog.txt'), 'The dog slept under the big tree all day long.');
    fs.writeFileSync(path.join(root, 'bird.txt'), 'A bird sang a song.');
    fs.rmSync(path.join(root, 'notes/sun.md'));
    const report = await index.refresh();
    expect(report).toMatchObject({ files: 3, read: 2, changed: 2, removed: 1 });
    expect(index.pending().map((f) => f.path)).toEqual(['bird.txt', 'dog.txt']);
    bump(path.join(root, 'cat.txt'), 'Tom the cat was sleepy.');
    const delta = await index.refresh({ paths: ['cat.txt'] });
    expect(delta).toMatchObject({ read: 1, changed: 1 });
    expect(index.score('sleepy').get('cat.txt')).toBeGreaterThan(0);
    expect(index.score('ball').get('cat.txt')).toBeUndefined();
  });

  it('every file not in the cache is listed with why, also on a warm question whose refresh saw only a watcher’s paths', async () => {
    const root = workspace({ ...FILES, '.gitignore': 'secret.log\n', 'secret.log': 'Tom hid the ball.', 'empty.txt': '' });
    fs.writeFileSync(path.join(root, 'image.bin'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0x0d]));
    const onDisk = ['.gitignore', 'cat.txt', 'dog.txt', 'empty.txt', 'image.bin', 'notes/sun.md', 'secret.log'];
    const store = tempDir('store');
    // Every file of the workspace is in the cache or listed once with a reason.
    const accounted = (r: Awaited<ReturnType<typeof askWorkspace>>): string[] =>
      [...r.assembled.files.map((f) => f.path), ...r.assembled.dropped.map((d) => d.path), ...r.notIndexed.map((f) => f.path), ...r.overTokenLimit.map((f) => f.path), ...r.skipped.map((f) => f.path)].sort();
    const leftOut = [
      { path: 'empty.txt', reason: 'empty' },
      { path: 'image.bin', reason: 'binary' },
      { path: 'secret.log', reason: 'gitignore' },
    ];
    const index = await open(root, store);
    const cold = await askWorkspace(engine, index, 'Which ball did Tom like?', ASK);
    expect(cold.assembled.files.map((f) => f.path)).toEqual(['cat.txt']);
    expect(cold.skipped).toEqual(leftOut);
    // Not indexed yet: the files no word of the question matches too.
    expect(cold.notIndexed.map((f) => f.path).sort()).toEqual(['.gitignore', 'dog.txt', 'notes/sun.md']);
    expect(accounted(cold)).toEqual(onDisk);
    // A full refresh reads nothing unchanged: neither the indexed files nor the binary and empty ones.
    expect(await index.refresh()).toMatchObject({ read: 0, skipped: leftOut });

    // Warm, the refresh limited to the watcher's one changed path: the same complete list, one file read.
    bump(path.join(root, 'cat.txt'), 'Once upon a time there was a little cat named Tom. Tom liked to play with a blue ball.');
    const warm = await askWorkspace(engine, index, 'Which ball did Tom like?', { ...ASK, refresh: { paths: ['cat.txt'] } });
    expect(warm.refresh).toMatchObject({ read: 1, changed: 1 });
    expect(warm.skipped).toEqual(leftOut);
    expect(accounted(warm)).toEqual(onDisk);

    // A watched file that turns binary is listed as such; one left out that becomes text is read and listed no more.
    bump(path.join(root, 'dog.txt'), 'The dog\u0000 ran.');
    bump(path.join(root, 'empty.txt'), 'The ball was red.');
    const changed = await askWorkspace(engine, index, 'Which ball did Tom like?', { ...ASK, refresh: { paths: ['dog.txt', 'empty.txt'] } });
    expect(changed.skipped).toEqual([{ path: 'dog.txt', reason: 'binary' }, leftOut[1], leftOut[2]]);
    expect(accounted(changed)).toEqual(onDisk);

    // A new process: the left-out files come back from the manifest, for a refresh of no paths at all.
    const again = await open(root, store);
    const restarted = await askWorkspace(engine, again, 'Which ball did Tom like?', { ...ASK, refresh: { paths: [] } });
    expect(restarted.refresh).toMatchObject({ read: 0 });
    expect(restarted.skipped).toEqual(changed.skipped);
    expect(accounted(restarted)).toEqual(onDisk);
  });

  it('rows rebuilt for one answer are kept for the next, which assembles exactly the cache a fresh index would', async () => {
    const root = workspace({ ...FILES, 'long.txt': 'Tom and Lily went to the park to play with the ball. '.repeat(40) });
    const store = tempDir('store');
    const index = await open(root, store);
    await index.refresh();
    await index.indexPending();
    const assembleFor = async (at: typeof index, question: string) => {
      const scores = at.score(question);
      const { kept } = rankFiles(at.files.values(), scores, undefined);
      return at.assemble(question, scores, kept.map((f) => f.path), { reserveRows: 4 });
    };
    const first = await assembleFor(index, 'Which ball did Tom like?');
    expect(index.segments.rebuiltRowsBytes).toBeGreaterThan(0);
    // Another question: other slots (the order changes), the same rows per file, so rebuilt rows are reused and rotated anew.
    const second = await assembleFor(index, 'Where did the dog run?');
    expect(second.files.map((f) => f.path)).not.toEqual(first.files.map((f) => f.path));
    const fresh = await open(root, store, { rebuiltRowsCacheBytes: 0 });
    await fresh.refresh();
    const reference = await assembleFor(fresh, 'Where did the dog run?');
    expect(fresh.segments.rebuiltRowsBytes).toBe(0);
    expect(second.files).toEqual(reference.files);
    for (let layer = 0; layer < reference.cache.shape.numLayers; layer++) {
      expect(second.cache.keys(layer)).toEqual(reference.cache.keys(layer));
      expect(second.cache.values(layer)).toEqual(reference.cache.values(layer));
    }
    // A cache smaller than one assembly keeps its first files for the next assembly (it does not evict what it will need first).
    const small = await open(root, store, { rebuiltRowsCacheBytes: Math.floor(index.segments.rebuiltRowsBytes / 2) });
    await small.refresh();
    await assembleFor(small, 'Where did the dog run?');
    expect(small.segments.rebuiltRowsBytes).toBeGreaterThan(0);
    expect(small.segments.rebuiltRowsBytes).toBeLessThanOrEqual(Math.floor(index.segments.rebuiltRowsBytes / 2));
    const again = await assembleFor(small, 'Where did the dog run?');
    expect(small.segments.rebuiltRowsHits).toBeGreaterThan(0);
    expect(again.cache.keys(0)).toEqual(reference.cache.keys(0));
    // Clearing the index frees them.
    index.clear();
    expect(index.segments.rebuiltRowsBytes).toBe(0);
  });

  it('the token limit cuts the least relevant files, not the first in path order', () => {
    const files: IndexedFile[] = ['a.txt', 'b.txt', 'z.txt'].map((p) => ({ path: p, size: 1, mtimeMs: 1, contentHash: p, tokens: 100 }));
    const { kept, over } = rankFiles(files, new Map([['z.txt', 3], ['b.txt', 1]]), 250);
    expect(kept.map((f) => f.path)).toEqual(['z.txt', 'b.txt']);
    expect(over.map((f) => f.path)).toEqual(['a.txt']);
  });

  it('the first-answer plan keeps to the budget at the measured speed, and probes with a small file when none is measured', () => {
    const ranked = [
      { path: 'big.ts', tokens: 9000, score: 5, indexed: false },
      { path: 'mid.ts', tokens: 1500, score: 4, indexed: false },
      { path: 'done.ts', tokens: 10, score: 3, indexed: true },
      { path: 'other.ts', tokens: 10, score: 0, indexed: false },
    ];
    // 150 tokens/s for 60 s: 9000 tokens fit, exactly.
    expect(nextFileForAnswer(ranked, 150, 60_000, 60_000)?.path).toBe('big.ts');
    expect(nextFileForAnswer(ranked, 150, 60_000, 59_000)?.path).toBe('mid.ts');
    expect(nextFileForAnswer(ranked, 150, 60_000, 5_000)).toBeUndefined();
    // The answer set is what 60 s could prefill: with big.ts in it, mid.ts is over.
    expect(nextFileForAnswer([{ ...ranked[0]!, indexed: true }, ...ranked.slice(1)], 150, 60_000, 60_000)).toBeUndefined();
    // Files that match nothing are not prefilled for a question that matches something.
    expect(nextFileForAnswer(ranked.map((f) => ({ ...f, indexed: f.score > 0 })), 150, 60_000, 60_000)).toBeUndefined();
    expect(nextFileForAnswer(ranked.map((f) => ({ ...f, score: 0 })), 150, 60_000, 60_000)?.path).toBe('big.ts');
    expect(nextFileForAnswer(ranked, undefined, 60_000, 60_000)?.path).toBe('mid.ts');
    expect(PROBE_TOKENS).toBeLessThan(9000);
  });

  it('a corrupt manifest, or one of an older format, is rebuilt with a warning and the stored segments are reused', async () => {
    const root = workspace(FILES);
    const store = tempDir('store');
    const index = await open(root, store);
    await index.refresh();
    await index.indexPending();
    const manifest = path.join(index.dir!, 'manifest.json');
    fs.writeFileSync(manifest, '{"format": 2, "files": [[');
    const fromCorrupt = await open(root, store);
    expect(fromCorrupt.warnings.join('\n')).toMatch(/could not be used/);
    await fromCorrupt.refresh();
    expect(fromCorrupt.pending()).toEqual([]);
    expect(fromCorrupt.save()).toBe(true);
    const old = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { format: number };
    fs.writeFileSync(manifest, JSON.stringify({ ...old, format: INDEX_FORMAT - 1 }));
    const fromOld = await open(root, store);
    expect(fromOld.warnings.join('\n')).toMatch(/format 1, not 2/);
    await fromOld.refresh();
    expect(fromOld.pending()).toEqual([]);
    expect(fromOld.save()).toBe(true);
    fs.writeFileSync(path.join(index.dir!, 'search.json'), 'not json');
    const noSearch = await open(root, store);
    expect(noSearch.warnings.join('\n')).toMatch(/search index could not be used/);
    expect((await noSearch.refresh()).read).toBe(3);
    expect(noSearch.score('Tom').get('cat.txt')).toBeGreaterThan(0);
  });

  it('files that change or vanish while indexing are indexed as they are, or forgotten', async () => {
    const root = workspace(FILES);
    const index = await open(root, tempDir('store'));
    await index.refresh();
    fs.rmSync(path.join(root, 'dog.txt'));
    fs.writeFileSync(path.join(root, 'cat.txt'), 'Tom the cat had changed his mind.');
    const run = await index.indexPending();
    expect(run).toMatchObject({ filesIndexed: 2, vanished: 1, complete: true });
    expect([...index.files.keys()].sort()).toEqual(['cat.txt', 'notes/sun.md']);
    expect(index.score('mind').get('cat.txt')).toBeGreaterThan(0);
    const answer = await askWorkspace(engine, index, 'What did Tom change?', ASK);
    expect(answer.assembled.files.map((f) => f.path).sort()).toEqual(['cat.txt', 'notes/sun.md']);
  });

  it('the store deleted under a running index: segments are rebuilt when read, and the index is saved again', async () => {
    const root = workspace(FILES);
    const store = tempDir('store');
    const index = await open(root, store);
    await index.refresh();
    await index.indexPending();
    fs.rmSync(store, { recursive: true, force: true });
    const answer = await askWorkspace(engine, index, 'Where did the cat Tom play?', ASK);
    expect(answer.assembled.files).toHaveLength(3);
    expect(answer.warnings.join('\n')).toMatch(/missing when the cache was assembled; it was rebuilt/);
    fs.appendFileSync(path.join(root, 'dog.txt'), 'More about the dog.');
    await index.refresh();
    await index.indexPending();
    expect(fs.existsSync(path.join(index.dir!, 'manifest.json'))).toBe(true);
  });

  it('a full disk while indexing: the index stays usable, answers, and the last saved manifest is intact', async () => {
    const root = workspace(FILES);
    const store = tempDir('store');
    let full = false;
    const writeFile = (file: string, bytes: Uint8Array): void => {
      if (full) throw Object.assign(new Error(`ENOSPC: no space left on device, write '${file}'`), { code: 'ENOSPC' });
      fs.writeFileSync(file, bytes);
    };
    const index = await open(root, store, { writeFile });
    await index.refresh();
    await index.indexFile('cat.txt');
    expect(index.save()).toBe(true);
    const saved = fs.readFileSync(path.join(index.dir!, 'manifest.json'), 'utf8');
    full = true;
    const run = await index.indexPending();
    // The first failed write stops background indexing (segments would pile up in memory).
    expect(run.stopped).toBe(true);
    const answer = await askWorkspace(engine, index, 'Where did the dog run?', ASK);
    expect(answer.reason).toBe('max-tokens');
    expect(answer.warnings.join('\n') + index.segments.store.warnings.join('\n')).toMatch(/ENOSPC/);
    expect(fs.readFileSync(path.join(index.dir!, 'manifest.json'), 'utf8')).toBe(saved);
    const reopened = await open(root, store);
    expect(reopened.counts()).toMatchObject({ filesTotal: 3, filesIndexed: 1 });
    expect(fs.readdirSync(path.join(store, 'v1', 'segments')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('200,000 files: listed up to the cap with a warning, no argument-spread crash', async () => {
    const total = 200_001;
    const text = new TextEncoder().encode('x');
    const source: IndexSource = {
      async *list(): AsyncGenerator<SourceEntry> {
        for (let i = 0; i < total; i++) {
          const p = `f/${String(i).padStart(6, '0')}.txt`;
          yield { kind: 'file', path: p, size: 1, mtimeMs: 1, read: async () => text } satisfies SourceFile;
        }
      },
      stat: async () => undefined,
      checkFile: () => undefined,
    };
    const { index } = await openWorkspaceIndex(engine, settings(undefined, { maxFiles: 200_000 }), source);
    const report = await index.refresh();
    expect(report).toMatchObject({ files: 200_000, capped: 1 });
    expect(index.warnings.join('\n')).toMatch(/more than 200000 files/);
    const { kept } = rankFiles(index.files.values(), index.score('x'), 0);
    expect(kept).toHaveLength(200_000);
  }, 120_000);
});
