// Download Model against a stand-in hub on 127.0.0.1 (test/hubServer.ts) serving a repo built
// by the project's builder in the onnx-community layout (fp32 model.onnx + model.onnx_data and
// int4 model_q4.onnx + model_q4.onnx_data): a full download that loads and generates, resume
// after a dropped connection and after a cancel, a server that ignores Range, a wrong hash, a
// missing repo, an unreachable endpoint, and the `freqkv download` command.

import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/engine';
import {
  downloadModel,
  DiskFullError,
  DownloadCancelledError,
  IntegrityError,
  NetworkError,
  RepoNotFoundError,
  UnsupportedRepoError,
  type DownloadModelOptions,
  type DownloadProgress,
} from '../src/engine/model/download';
import { tempDir } from './helpers';
import { buildHubRepo, startHubServer, type HubServer } from './hubServer';

const ROOT = path.resolve(__dirname, '..');
const REPO = 'onnx-community/Tiny-Test-Instruct';
const DATA = 'onnx/model_q4.onnx_data';
const Q4_FILES = ['config.json', 'generation_config.json', 'onnx/model_q4.onnx', DATA, 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json'];

let hub: HubServer;
let repoDir: string;

function options(dest: string, extra: Partial<DownloadModelOptions> = {}): DownloadModelOptions {
  return { repo: REPO, dest, endpoint: hub.endpoint, retries: 0, retryDelayMs: 10, idleTimeoutMs: 5000, ...extra };
}

function filesUnder(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).map((p) => p.split(path.sep).join('/')).filter((p) => fs.statSync(path.join(dir, p)).isFile()).sort();
}

function expectSameFiles(dest: string): void {
  const files = filesUnder(dest).filter((p) => p !== 'freqkv-download.json');
  expect(files).toEqual(Q4_FILES);
  for (const file of files) expect(fs.readFileSync(path.join(dest, file)).equals(fs.readFileSync(path.join(repoDir, file))), file).toBe(true);
  expect(fs.existsSync(`${dest}.partial`)).toBe(false);
}

function fileRequests(file: string): { range: string | undefined; status: number }[] {
  return hub.requests.filter((r) => r.url.endsWith(`/${file}`) && r.status !== 302);
}

beforeAll(async () => {
  repoDir = buildHubRepo();
  hub = await startHubServer({ [REPO]: repoDir }, { lifetimeMs: 300_000 });
});
afterAll(async () => {
  await hub.close();
});
beforeEach(() => {
  for (const key of Object.keys(hub.behaviour)) delete hub.behaviour[key as keyof typeof hub.behaviour];
  hub.requests.length = 0;
});

describe('downloadModel from a stand-in hub', () => {
  it('downloads the q4 variant with progress; the folder loads with the Engine and generates; a second run fetches nothing', async () => {
    const dest = path.join(tempDir('dl'), 'models', 'tiny');
    const progress: DownloadProgress[] = [];
    const result = await downloadModel(options(dest, { onProgress: (p) => progress.push(p) }));
    expectSameFiles(dest);
    expect(result.alreadyPresent).toBe(false);
    expect(result.bytesTotal).toBe(Q4_FILES.reduce((sum, f) => sum + fs.statSync(path.join(repoDir, f)).size, 0));
    expect(result.bytesFetched).toBe(result.bytesTotal);
    expect(result.onnxFile).toBe(path.join(dest, 'onnx', 'model_q4.onnx'));
    // LFS files came through the hub's redirect; the fp32 variant and the README were not fetched.
    expect(hub.requests.filter((r) => r.status === 302).map((r) => r.url.split('/').pop()).sort()).toEqual(['model_q4.onnx', 'model_q4.onnx_data']);
    expect(hub.requests.some((r) => /model\.onnx|README/.test(r.url))).toBe(false);
    expect(progress[0]?.phase).toBe('listing');
    expect(progress.map((p) => p.phase)).toContain('verifying');
    expect(progress.at(-1)).toMatchObject({ phase: 'installing', bytesDone: result.bytesTotal, filesDone: Q4_FILES.length });

    const engine = await Engine.load({ modelDir: dest, threads: 1 });
    try {
      let generated = -1;
      for await (const event of engine.generate({ maxNewTokens: 5, sampling: { temperature: 0 } })) {
        if (event.kind === 'done') generated = event.stats.generatedTokens;
      }
      expect(generated).toBe(5);
    } finally {
      await engine.dispose();
    }

    hub.requests.length = 0;
    const again = await downloadModel(options(dest));
    expect(again.alreadyPresent).toBe(true);
    expect(hub.requests.map((r) => r.url)).toEqual([`/api/models/${REPO}/tree/main?recursive=true`]);
  });

  it('--variant fp32 takes model.onnx with its external data', async () => {
    const dest = path.join(tempDir('dl'), 'fp32');
    await downloadModel(options(dest, { variant: 'fp32' }));
    expect(filesUnder(path.join(dest, 'onnx'))).toEqual(['model.onnx', 'model.onnx_data']);
  });

  it('resumes with a Range request after the server drops the connection mid-file', async () => {
    const dest = path.join(tempDir('dl'), 'tiny');
    const size = fs.statSync(path.join(repoDir, DATA)).size;
    const cut = 30_000;
    hub.behaviour.dropAfter = { path: DATA, bytes: cut, times: 1 };
    const first = downloadModel(options(dest));
    await expect(first).rejects.toBeInstanceOf(NetworkError);
    await expect(first).rejects.toThrow(/run the download again to resume/);
    expect(fs.statSync(path.join(`${dest}.partial`, `${DATA}.part`)).size).toBe(cut);
    expect(fs.existsSync(dest)).toBe(false);

    hub.requests.length = 0;
    const second = await downloadModel(options(dest));
    expect(fileRequests('model_q4.onnx_data')).toEqual([{ url: expect.any(String), range: `bytes=${cut}-`, status: 206 }]);
    expect(second.bytesResumed).toBeGreaterThanOrEqual(cut);
    expect(second.bytesFetched).toBe(size - cut);
    expectSameFiles(dest);
  });

  it('with retries, one run recovers from a dropped connection by itself', async () => {
    const dest = path.join(tempDir('dl'), 'tiny');
    hub.behaviour.dropAfter = { path: DATA, bytes: 10_000, times: 2 };
    await downloadModel(options(dest, { retries: 2 }));
    expect(fileRequests('model_q4.onnx_data').map((r) => r.range)).toEqual([undefined, 'bytes=10000-', 'bytes=20000-']);
    expectSameFiles(dest);
  });

  it('a stalled reply (no data for idleTimeoutMs) and a 503 are retried, resuming with Range', async () => {
    const dest = path.join(tempDir('dl'), 'tiny');
    hub.behaviour.stallAfter = { path: DATA, bytes: 15_000, times: 1 };
    hub.behaviour.failWith = { path: 'tokenizer.json', status: 503, times: 1 };
    const started = performance.now();
    await downloadModel(options(dest, { retries: 1, idleTimeoutMs: 300 }));
    expect(performance.now() - started).toBeLessThan(5000);
    expect(fileRequests('tokenizer.json').map((r) => r.status)).toEqual([503, 200]);
    expect(fileRequests('model_q4.onnx_data').map((r) => [r.range, r.status])).toEqual([
      [undefined, 200],
      ['bytes=15000-', 206],
    ]);
    expectSameFiles(dest);
  });

  it('a server that ignores Range (answers 200) still ends with the right file', async () => {
    const dest = path.join(tempDir('dl'), 'tiny');
    hub.behaviour.dropAfter = { path: DATA, bytes: 20_000, times: 1 };
    await expect(downloadModel(options(dest))).rejects.toBeInstanceOf(NetworkError);
    hub.behaviour.ignoreRange = true;
    hub.requests.length = 0;
    const second = await downloadModel(options(dest));
    expect(fileRequests('model_q4.onnx_data')).toEqual([{ url: expect.any(String), range: 'bytes=20000-', status: 200 }]);
    // The files before it were complete; the data file came again from its start.
    expect(second.bytesFetched).toBe(fs.statSync(path.join(repoDir, DATA)).size);
    expectSameFiles(dest);
  });

  it('a wrong sha256 is a named error, the bad file is deleted and no folder is put in place', async () => {
    const dest = path.join(tempDir('dl'), 'tiny');
    hub.behaviour.wrongSha256 = { path: DATA, sha256: 'ab'.repeat(32) };
    const run = downloadModel(options(dest));
    await expect(run).rejects.toBeInstanceOf(IntegrityError);
    await expect(run).rejects.toThrow(/onnx\/model_q4\.onnx_data arrived damaged \(sha256 [0-9a-f]{64} instead of (ab){32}\); the bad file was deleted\. Run the download again/);
    expect(fs.existsSync(dest)).toBe(false);
    expect(fs.existsSync(path.join(`${dest}.partial`, DATA))).toBe(false);
    expect(fs.existsSync(path.join(`${dest}.partial`, `${DATA}.part`))).toBe(false);
    // The files that were right are kept; a run against a correct listing completes.
    delete hub.behaviour.wrongSha256;
    await downloadModel(options(dest));
    expectSameFiles(dest);
  });

  it('a file that changed in the repo between two runs is fetched again, not taken from the first run', async () => {
    const dest = path.join(tempDir('dl'), 'tiny');
    hub.behaviour.dropAfter = { path: DATA, bytes: 20_000, times: 1 };
    await expect(downloadModel(options(dest))).rejects.toBeInstanceOf(NetworkError);
    expect(fs.existsSync(path.join(`${dest}.partial`, 'onnx', 'model_q4.onnx'))).toBe(true);
    // The listing now gives model_q4.onnx another hash: the complete copy from the first run is dropped.
    hub.behaviour.wrongSha256 = { path: 'onnx/model_q4.onnx', sha256: 'cd'.repeat(32) };
    hub.requests.length = 0;
    await expect(downloadModel(options(dest))).rejects.toThrow(/onnx\/model_q4\.onnx arrived damaged/);
    expect(fileRequests('model_q4.onnx')).toHaveLength(1);
    expect(fileRequests('config.json')).toEqual([]);
    delete hub.behaviour.wrongSha256;
    await downloadModel(options(dest));
    expectSameFiles(dest);
  });

  it('cancel mid-file keeps what arrived; the next run resumes it', async () => {
    const dest = path.join(tempDir('dl'), 'tiny');
    hub.behaviour.chunkBytes = 1024;
    hub.behaviour.chunkDelayMs = 20;
    const controller = new AbortController();
    const run = downloadModel(
      options(dest, {
        signal: controller.signal,
        onProgress: (p) => {
          if (p.file === DATA && p.fileBytes >= 8192) controller.abort();
        },
      }),
    );
    await expect(run).rejects.toBeInstanceOf(DownloadCancelledError);
    await expect(run).rejects.toThrow(/cancelled during onnx\/model_q4\.onnx_data; what was downloaded is kept/);
    const kept = fs.statSync(path.join(`${dest}.partial`, `${DATA}.part`)).size;
    expect(kept).toBeGreaterThanOrEqual(8192);
    expect(kept).toBeLessThan(fs.statSync(path.join(repoDir, DATA)).size);
    expect(fs.existsSync(dest)).toBe(false);

    delete hub.behaviour.chunkDelayMs;
    hub.requests.length = 0;
    await downloadModel(options(dest));
    expect(fileRequests('model_q4.onnx_data')).toEqual([{ url: expect.any(String), range: `bytes=${kept}-`, status: 206 }]);
    // Files completed before the cancel are not fetched again.
    expect(fileRequests('config.json')).toEqual([]);
    expectSameFiles(dest);
  });

  it('a full disk is DiskFullError: before starting when the listing is larger than the free space, and on ENOSPC', async () => {
    const dest = path.join(tempDir('dl'), 'tiny');
    hub.behaviour.listedSize = { path: DATA, size: 1e15 };
    await expect(downloadModel(options(dest))).rejects.toThrow(/^Not enough disk space for onnx-community\/Tiny-Test-Instruct \(q4\): 1000\.00 TB still to download, [\d.]+ [kMGT]?B free on the disk holding .*Free some space/);
    delete hub.behaviour.listedSize;
    expect(fs.existsSync(dest)).toBe(false);
  });

  it.skipIf(!fs.existsSync('/dev/full'))('ENOSPC while writing (the part file is /dev/full) is DiskFullError; with space again, the download completes', async () => {
    const dest = path.join(tempDir('dl'), 'tiny');
    fs.mkdirSync(path.join(`${dest}.partial`, 'onnx'), { recursive: true });
    const part = path.join(`${dest}.partial`, `${DATA}.part`);
    fs.symlinkSync('/dev/full', part);
    const run = downloadModel(options(dest));
    await expect(run).rejects.toBeInstanceOf(DiskFullError);
    await expect(run).rejects.toThrow(/^The disk is full while writing onnx\/model_q4\.onnx_data \([\d.]+ kB of this file still to come, [\d.]+ [kMGT]?B free\)\. Free some space, then run the download again/);
    expect(fs.existsSync(dest)).toBe(false);
    fs.rmSync(part);
    await downloadModel(options(dest));
    expectSameFiles(dest);
  });

  it('a missing repo or revision is RepoNotFoundError', async () => {
    const dest = path.join(tempDir('dl'), 'none');
    await expect(downloadModel(options(dest, { repo: 'onnx-community/No-Such-Model' }))).rejects.toThrow(RepoNotFoundError);
    await expect(downloadModel(options(dest, { repo: 'onnx-community/No-Such-Model' }))).rejects.toThrow(/has no model onnx-community\/No-Such-Model at revision main \(HTTP 404\)/);
    await expect(downloadModel(options(dest, { revision: 'v9' }))).rejects.toThrow(RepoNotFoundError);
    expect(fs.existsSync(dest)).toBe(false);
  });

  it('a variant the repo lacks, or a repo without ONNX files, is UnsupportedRepoError', async () => {
    const dest = path.join(tempDir('dl'), 'none');
    await expect(downloadModel(options(dest, { variant: 'fp16' }))).rejects.toThrow(/has no onnx\/model_fp16\.onnx \(variant 'fp16'\); it has the variants fp32, q4/);
    await expect(downloadModel(options(dest, { variant: 'int3' }))).rejects.toThrow(UnsupportedRepoError);
    await expect(downloadModel(options(dest, { repo: 'not a repo' }))).rejects.toThrow(/is not a Hugging Face model id/);

    const noOnnx = path.join(tempDir('hub'), 'plain');
    fs.mkdirSync(noOnnx);
    for (const f of ['config.json', 'tokenizer.json']) fs.copyFileSync(path.join(repoDir, f), path.join(noOnnx, f));
    const other = await startHubServer({ 'someone/pytorch-only': noOnnx }, { lifetimeMs: 30_000 });
    try {
      await expect(downloadModel({ ...options(dest), repo: 'someone/pytorch-only', endpoint: other.endpoint })).rejects.toThrow(/has no ONNX decoder/);
    } finally {
      await other.close();
    }
  });

  it('an endpoint nobody listens on is NetworkError that says the machine may be offline and names the endpoint', async () => {
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    const started = performance.now();
    const run = downloadModel(options(path.join(tempDir('dl'), 'none'), { endpoint, retries: 2, retryDelayMs: 20 }));
    await expect(run).rejects.toBeInstanceOf(NetworkError);
    await expect(run).rejects.toThrow(new RegExp(`Could not reach ${endpoint} \\(ECONNREFUSED\\)\\. The machine may be offline`));
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});

describe('freqkv download', () => {
  it('downloads into --out, prints progress to stderr and one JSON line with --json; errors exit 2', async () => {
    const out = path.join(tempDir('cli'), 'model');
    const ok = await freqkv(['download', '--repo', REPO, '--out', out, '--endpoint', hub.endpoint, '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    const result = JSON.parse(ok.stdout) as Record<string, unknown>;
    expect(result).toMatchObject({ dir: out, repo: REPO, variant: 'q4', alreadyPresent: false });
    expect(ok.stderr).toMatch(/model_q4\.onnx_data/);
    expectSameFiles(out);

    const missing = await freqkv(['download', '--repo', 'onnx-community/No-Such-Model', '--out', out, '--endpoint', hub.endpoint]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/freqkv: .*has no model onnx-community\/No-Such-Model/);
    const badVariant = await freqkv(['download', '--variant', 'q3', '--out', out, '--endpoint', hub.endpoint]);
    expect(badVariant.code).toBe(2);
    expect(badVariant.stderr).toMatch(/Unknown ONNX variant 'q3'/);
  });
});

function freqkv(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // Asynchronous: the stand-in hub runs in this process and must keep answering.
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'bin', 'freqkv.js'), ...args], { cwd: ROOT, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
