// The workspace index in the engine worker (real worker thread, embedded model, real files):
// answer first then background indexing with progress; a question pre-empts indexing and it
// resumes; a second question while one runs is refused without touching the first answer; the
// watcher's paths during indexing; Cancel during codebook calibration (prompt, nothing saved); Clear Cache of this
// workspace; dispose while indexing waits for the worker to stop.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineClient } from '../src/extension/engineClient';
import type { AskParams, IndexStatus, WorkspaceSpec } from '../src/protocol';
import { EMBEDDED_MODEL, tempDir } from './helpers';

const WORKER = path.resolve(__dirname, '..', 'dist', 'worker.js');

function workspace(files: number, repeat = 4): string {
  const root = tempDir('wk-ws');
  for (let i = 0; i < files; i++) fs.writeFileSync(path.join(root, `story${String(i).padStart(2, '0')}.txt`), `Story ${i}. Once upon a time there was a dog named Max${i}. He liked to run in the park.\n`.repeat(repeat));
  fs.writeFileSync(path.join(root, 'dragon.md'), 'The old dragon slept in a dark cave under the hill.\n');
  return root;
}

function spec(root: string, store: string, extra: Partial<WorkspaceSpec> = {}): WorkspaceSpec {
  return { roots: [{ dir: root }], storeDir: store, workspaceId: root, cache: { method: 'freqkv', capacity: 512 }, ...extra };
}

function askParams(s: WorkspaceSpec, question: string, extra: Partial<AskParams> = {}): AskParams {
  return { question, mode: 'segmented', workspace: s, maxNewTokens: 8, sampling: { temperature: 0 }, ...extra };
}

let client: EngineClient;
const statuses: IndexStatus[] = [];
beforeAll(async () => {
  client = new EngineClient(WORKER);
  client.onIndexStatus((s) => statuses.push(s));
  await client.loadModel({ modelDir: EMBEDDED_MODEL, threads: 1 });
});
afterAll(async () => {
  await client.dispose();
});

/** The next index status in `state` (of a workspace with `filesTotal` files, if given). */
function indexState(state: IndexStatus['state'], timeoutMs = 120_000, filesTotal?: number): Promise<IndexStatus> {
  const from = statuses.length;
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      const hit = statuses.slice(from).find((s) => s.state === state && (filesTotal === undefined || s.filesTotal === filesTotal));
      if (hit) {
        clearInterval(timer);
        resolve(hit);
      }
    }, 20);
    setTimeout(() => {
      clearInterval(timer);
      reject(new Error(`no '${state}' index status within ${timeoutMs} ms (got ${statuses.slice(from).map((s) => s.state).join(', ')})`));
    }, timeoutMs);
  });
}

describe('workspace index in the engine worker', () => {
  it('answers first from the dragon file, lists what is not indexed, then indexes the rest in the background', async () => {
    const root = workspace(6);
    const s = spec(root, tempDir('wk-store'));
    const done = indexState('done');
    const result = await client.ask(askParams(s, 'Where did the dragon sleep?', { firstAnswerSeconds: 60 }));
    expect(result.reason).toBe('max-tokens');
    expect(result.segments!.files.map((f) => f.path)).toContain('dragon.md');
    expect(result.segments!.filesTotal).toBe(7);
    const final = await done;
    expect(final).toMatchObject({ state: 'done', filesDone: 7, filesTotal: 7, percent: 100 });
    // Warm: nothing read, nothing prefilled; every file in the cache.
    const warm = await client.ask(askParams(s, 'Where did the dragon sleep?'));
    expect(warm.segments).toMatchObject({ built: 0, filesIndexed: 7 });
    expect(warm.segments!.files).toHaveLength(7);
  }, 180_000);

  it('a question pre-empts background indexing, which then resumes to the end', async () => {
    const root = workspace(30, 12);
    const s = spec(root, tempDir('wk-store'));
    const indexing = indexState('indexing', 120_000, 31);
    expect(await client.startIndexing(s)).toBe(true);
    await indexing;
    const paused = indexState('paused', 120_000, 31);
    const done = indexState('done', 300_000, 31);
    const result = await client.ask(askParams(s, 'Where did the dragon sleep?', { firstAnswerSeconds: 0 }));
    expect(result.reason).toBe('max-tokens');
    // The question stopped the indexing first; it was not finished by then.
    const pausedStatus = await paused;
    expect(pausedStatus.filesDone).toBeLessThan(pausedStatus.filesTotal);
    // A watcher's paths while indexing are taken up by the next refresh, and fail nothing.
    fs.appendFileSync(path.join(root, 'dragon.md'), 'The dragon woke up.\n');
    expect((await client.workspaceChanged(['dragon.md']), true)).toBe(true);
    expect(await done).toMatchObject({ filesDone: 31, filesTotal: 31 });
    const after = await client.ask(askParams(s, 'When did the dragon wake up?'));
    expect(after.segments!.filesIndexed).toBe(31);
  }, 400_000);

  it('a second question while one is answered is refused, and the first answer streams untouched', async () => {
    const root = workspace(3);
    const s = spec(root, tempDir('wk-store'));
    await client.ask(askParams(s, 'Where did the dragon sleep?'));
    await client.stopIndexing();
    const alone = await client.ask(askParams(s, 'Where did the dragon sleep?', { maxNewTokens: 60 }));
    await client.stopIndexing();
    let streamed = '';
    const first = client.ask(askParams(s, 'Where did the dragon sleep?', { maxNewTokens: 60 }), (e) => {
      if (e.kind === 'token') streamed += e.text;
    });
    const second = client.ask(askParams(s, 'Who is Max?'));
    await expect(second).rejects.toMatchObject({ name: 'EngineBusyError' });
    const answer = await first;
    expect(answer.text).toBe(alone.text);
    expect(streamed).toBe(alone.text);
  }, 180_000);

  it('Cancel during codebook calibration stops it promptly, saves nothing, and the next question calibrates the same codebooks', async () => {
    const root = workspace(2);
    const stateFiles = (store: string): string[] => {
      const dir = path.join(store, 'v1', 'codecs');
      return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
    };
    // The uncancelled time: a question on an empty store calibrates first (most of its time).
    const reference = tempDir('wk-store');
    let t0 = performance.now();
    expect((await client.ask(askParams(spec(root, reference, { codec: 'rvq' }), 'Where did the dragon sleep?'))).reason).toBe('max-tokens');
    const uncancelledMs = performance.now() - t0;
    await client.stopIndexing();
    expect(stateFiles(reference)).toHaveLength(1);

    // Cancel half-way through calibrating on another store: past the sampling, in the k-means fitting.
    const store = tempDir('wk-store');
    const s = spec(root, store, { codec: 'rvq' });
    const asked = client.ask(askParams(s, 'Where did the dragon sleep?'));
    await new Promise((resolve) => setTimeout(resolve, uncancelledMs / 2));
    t0 = performance.now();
    expect(await client.cancel()).toBe(true);
    const result = await asked;
    const cancelMs = performance.now() - t0;
    expect(result.reason).toBe('cancelled');
    expect(cancelMs).toBeLessThan(uncancelledMs / 5);
    expect((await client.getStats()).busy).toBe(false);
    // No codebooks, whole or partial, and no temp file.
    expect(stateFiles(store)).toEqual([]);

    // The next question calibrates again, to the same codebooks (seeded), and answers.
    const again = await client.ask(askParams(s, 'Where did the dragon sleep?'));
    expect(again.reason).toBe('max-tokens');
    expect(again.segments!.files.map((f) => f.path)).toContain('dragon.md');
    await client.stopIndexing();
    expect(stateFiles(store)).toEqual(stateFiles(reference));
    const [name] = stateFiles(store);
    expect(fs.readFileSync(path.join(store, 'v1', 'codecs', name!))).toEqual(fs.readFileSync(path.join(reference, 'v1', 'codecs', name!)));
  }, 300_000);

  it("Clear Cache removes this workspace's index and segments and says how many", async () => {
    const root = workspace(3);
    const store = tempDir('wk-store');
    const s = spec(root, store);
    await client.ask(askParams(s, 'Where did the dragon sleep?'));
    await client.stopIndexing();
    const cleared = await client.clearCache({ storeDir: store, workspaceId: root, roots: s.roots, cache: s.cache });
    expect(cleared.failures).toEqual([]);
    expect(cleared.removedSegments).toBeGreaterThan(0);
    expect(fs.readdirSync(path.join(store, 'v1', 'segments')).filter((f) => f.endsWith('.seg'))).toEqual([]);
    const again = await client.ask(askParams(s, 'Where did the dragon sleep?'));
    expect(again.segments!.built).toBeGreaterThan(0);
    await client.stopIndexing();
  }, 180_000);

  it('dispose while indexing waits for the worker to stop', async () => {
    const other = new EngineClient(WORKER);
    await other.loadModel({ modelDir: EMBEDDED_MODEL, threads: 1 });
    const seen: IndexStatus[] = [];
    other.onIndexStatus((st) => seen.push(st));
    await other.startIndexing(spec(workspace(20, 12), tempDir('wk-store')));
    while (!seen.some((st) => st.state === 'indexing')) await new Promise((resolve) => setTimeout(resolve, 20));
    await other.dispose();
    expect(seen.at(-1)?.state).toBe('paused');
    expect(await other.cancel()).toBe(false);
  }, 180_000);
});
