// Download Model's build variants against the stand-in hub (test/hubServer.ts): a repo holding
// the original Hugging Face files of a tiny random Qwen2 model (buildSourceRepo: config.json,
// bf16 safetensors, the Qwen2.5 tokenizer as vocab.json + merges.txt) is downloaded with --variant build-int4 and
// converted by the project's builder; the folder loads, its graph outputs only the new cache
// rows, and it generates. Also: a rerun fetches and builds nothing, a sharded repo
// (model.safetensors.index.json), a wrong hash, a repo without safetensors, a failed build and a
// cancel during the conversion keep the downloaded files, and the `freqkv download` command.

import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/engine';
import { DownloadCancelledError, downloadModel, IntegrityError, UnsupportedRepoError, type DownloadModelOptions, type DownloadProgress, type DownloadResult } from '../src/engine/model/download';
import { MANIFEST, type Manifest } from '../src/engine/model/download/folderState';
import { toHfConfig } from '../src/engine/model/modelConfig';
import { inspectModelFolder } from '../src/engine/model/modelFolder';
import { buildInWorker } from '../src/extension/buildInWorker';
import { tempDir } from './helpers';
import { buildHubRepo, buildSourceRepo, startHubServer, tinyQwen2WithQwenVocab, type HubServer } from './hubServer';

const ROOT = path.resolve(__dirname, '..');
const REPO = 'Qwen/Tiny-Coder-Instruct';
const SHARDED = 'Qwen/Tiny-Coder-Sharded';
const MISMATCHED = 'Qwen/Tiny-Coder-Mismatched';
const ONNX_ONLY = 'onnx-community/Tiny-Test-Instruct';
const SOURCE_FILES = ['config.json', 'generation_config.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json', 'vocab.json', 'merges.txt', 'model.safetensors'];

const config = tinyQwen2WithQwenVocab;

let hub: HubServer;
let repoDir: string;

function options(dest: string, extra: Partial<DownloadModelOptions> = {}): DownloadModelOptions {
  return { repo: REPO, variant: 'build-int4', dest, endpoint: hub.endpoint, retries: 0, retryDelayMs: 10, idleTimeoutMs: 5000, ...extra };
}

function fetched(): string[] {
  return hub.requests.filter((r) => r.url.includes('/resolve/') || r.url.startsWith('/cdn/')).filter((r) => r.status !== 302).map((r) => r.url.split('/').pop() ?? '');
}

async function generates(dir: string, tokens: number): Promise<number> {
  const engine = await Engine.load({ modelDir: dir, threads: 1 });
  try {
    let generated = -1;
    for await (const event of engine.generate({ prompt: 'def add(a, b):', maxNewTokens: tokens, sampling: { temperature: 0 } })) {
      if (event.kind === 'done') generated = event.stats.generatedTokens;
    }
    return generated;
  } finally {
    await engine.dispose();
  }
}

beforeAll(async () => {
  repoDir = await buildSourceRepo();
  // A config.json that does not match the weights (the builder rejects the shapes).
  const mismatched = await buildSourceRepo({ hfConfig: toHfConfig({ ...config, intermediateSize: 96 }) });
  hub = await startHubServer({ [REPO]: repoDir, [SHARDED]: await buildSourceRepo({ shards: 3 }), [MISMATCHED]: mismatched, [ONNX_ONLY]: buildHubRepo() }, { lifetimeMs: 300_000 });
}, 120_000);
afterAll(async () => {
  await hub.close();
});
beforeEach(() => {
  for (const key of Object.keys(hub.behaviour)) delete hub.behaviour[key as keyof typeof hub.behaviour];
  hub.requests.length = 0;
});

describe('downloadModel with a build variant', () => {
  it('fetches the safetensors repo, builds an int4 folder whose graph outputs new cache rows, generates; a rerun fetches and builds nothing', async () => {
    const dest = path.join(tempDir('dlb'), 'models', 'tiny-build-int4');
    const progress: DownloadProgress[] = [];
    const result = await downloadModel(options(dest, { onProgress: (p) => progress.push(p) }));
    expect(result.alreadyPresent).toBe(false);
    expect(result.files.map((f) => f.path)).toEqual(SOURCE_FILES);
    expect(fetched().sort()).toEqual([...SOURCE_FILES].sort());
    expect(result.bytesFetched).toBe(SOURCE_FILES.reduce((sum, f) => sum + fs.statSync(path.join(repoDir, f)).size, 0));
    const phases = progress.map((p) => p.phase);
    expect(phases.filter((p) => p === 'converting')).toHaveLength(2);
    expect(phases.indexOf('converting')).toBeGreaterThan(phases.lastIndexOf('verifying'));
    expect(phases.at(-1)).toBe('installing');

    // The built folder, not the downloaded one: no safetensors left anywhere.
    expect(fs.existsSync(path.join(dest, 'model.safetensors'))).toBe(false);
    expect(fs.existsSync(`${dest}.partial`)).toBe(false);
    expect(fs.existsSync(`${dest}.build`)).toBe(false);
    expect(result.onnxFile).toBe(path.join(dest, 'onnx', 'model.onnx'));
    const folder = inspectModelFolder(dest);
    expect(folder.signature.kvOutputs).toBe('new');
    expect(folder.config.vocabSize).toBe(config.vocabSize);
    const manifest = JSON.parse(fs.readFileSync(path.join(dest, MANIFEST), 'utf8')) as Manifest & { repo: string };
    expect(manifest).toMatchObject({ repo: REPO, revision: 'main', variant: 'build-int4', onnxFile: 'onnx/model.onnx' });
    expect(manifest.build?.options).toEqual({ weights: 'int4', kvCache: 'float32', externalData: 'auto' });
    expect(manifest.files?.find((f) => f.path === 'model.safetensors')?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(manifest.build?.files.map((f) => f.path)).toContain('onnx/model.onnx');
    // The tokenizer was assembled from vocab.json + merges.txt; the chat template came along.
    expect(fs.existsSync(path.join(dest, 'tokenizer.json'))).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(dest, 'tokenizer_config.json'), 'utf8')).chat_template).toMatch(/im_start/);

    expect(await generates(dest, 4)).toBe(4);

    hub.requests.length = 0;
    const mtime = fs.statSync(path.join(dest, 'onnx', 'model.onnx')).mtimeMs;
    const again = await downloadModel(options(dest));
    expect(again.alreadyPresent).toBe(true);
    expect(again.build?.options.weights).toBe('int4');
    expect(hub.requests.map((r) => r.url)).toEqual([`/api/models/${REPO}/tree/main?recursive=true`]);
    expect(fs.statSync(path.join(dest, 'onnx', 'model.onnx')).mtimeMs).toBe(mtime);

    // build-int8 has the same source files, but another build: it converts again.
    const int8 = await downloadModel(options(dest, { variant: 'build-int8' }));
    expect(int8.alreadyPresent).toBe(false);
    expect(int8.build?.options.weights).toBe('int8');
  }, 120_000);

  it('a sharded repo: the index and every shard are fetched and converted', async () => {
    const dest = path.join(tempDir('dlb'), 'sharded');
    const result = await downloadModel(options(dest, { repo: SHARDED }));
    expect(result.files.map((f) => f.path).filter((p) => p.startsWith('model'))).toEqual([
      'model.safetensors.index.json',
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
    ]);
    expect(inspectModelFolder(dest).signature.kvOutputs).toBe('new');
  }, 60_000);

  it('a wrong sha256 for model.safetensors is the IntegrityError; nothing is built or installed', async () => {
    const dest = path.join(tempDir('dlb'), 'tiny');
    hub.behaviour.wrongSha256 = { path: 'model.safetensors', sha256: 'ab'.repeat(32) };
    const run = downloadModel(options(dest));
    await expect(run).rejects.toBeInstanceOf(IntegrityError);
    await expect(run).rejects.toThrow(/model\.safetensors arrived damaged \(sha256 [0-9a-f]{64} instead of (ab){32}\); the bad file was deleted/);
    expect(fs.existsSync(dest)).toBe(false);
    expect(fs.existsSync(`${dest}.build`)).toBe(false);
    expect(fs.existsSync(path.join(`${dest}.partial`, 'model.safetensors'))).toBe(false);
    expect(fs.existsSync(path.join(`${dest}.partial`, 'config.json'))).toBe(true);
  });

  it('a repo without safetensors (an ONNX export) is UnsupportedRepoError that names the way out', async () => {
    const dest = path.join(tempDir('dlb'), 'none');
    const run = downloadModel(options(dest, { repo: ONNX_ONLY }));
    await expect(run).rejects.toBeInstanceOf(UnsupportedRepoError);
    await expect(run).rejects.toThrow(/has no safetensors weights \(neither model\.safetensors nor model\.safetensors\.index\.json\).*Qwen\/Qwen2\.5-Coder-0\.5B-Instruct\. It has ONNX variants \(fp32, q4\): pass one of them with --variant/);
    expect(fetched()).toEqual([]);
    expect(fs.existsSync(dest)).toBe(false);
  });

  it('a build that fails keeps the downloaded files; the rerun converts again without downloading', async () => {
    const dest = path.join(tempDir('dlb'), 'mismatched');
    const message = /Tiny-Coder-Mismatched \(build-int4\) downloaded, but converting it failed: .*has shape \[160,64\], expected \[96,64\].*The downloaded files are kept in .*mismatched\.partial/;
    await expect(downloadModel(options(dest, { repo: MISMATCHED }))).rejects.toThrow(message);
    expect(fs.existsSync(path.join(`${dest}.partial`, 'model.safetensors'))).toBe(true);
    expect(fs.existsSync(`${dest}.build`)).toBe(false);
    expect(fs.existsSync(dest)).toBe(false);
    hub.requests.length = 0;
    await expect(downloadModel(options(dest, { repo: MISMATCHED }))).rejects.toThrow(message);
    expect(fetched()).toEqual([]);
  });

  it('a cancel when the conversion starts keeps the download; the next run builds without fetching', async () => {
    const dest = path.join(tempDir('dlb'), 'cancel');
    const controller = new AbortController();
    const run = downloadModel(options(dest, { signal: controller.signal, onProgress: (p) => p.phase === 'converting' && controller.abort() }));
    await expect(run).rejects.toBeInstanceOf(DownloadCancelledError);
    await expect(run).rejects.toThrow(/cancelled while converting the model; the downloaded files are kept in .*cancel\.partial/);
    expect(fs.existsSync(path.join(`${dest}.partial`, 'model.safetensors'))).toBe(true);
    expect(fs.existsSync(dest)).toBe(false);
    hub.requests.length = 0;
    const result = await downloadModel(options(dest));
    expect(fetched()).toEqual([]);
    expect(result.bytesResumed).toBe(result.bytesTotal);
    expect(inspectModelFolder(dest).signature.kvOutputs).toBe('new');
  }, 60_000);
});

describe('buildInWorker (the extension\'s builder, dist/build-worker.js)', () => {
  const workerPath = path.join(ROOT, 'dist', 'build-worker.js');
  const buildOptions = { weights: 'int4', kvCache: 'float32', externalData: 'auto' } as const;

  it('converts in a worker thread; a builder error comes back with its name and message', async () => {
    const out = path.join(tempDir('bw'), 'model');
    await buildInWorker(workerPath)(repoDir, out, buildOptions);
    expect(inspectModelFolder(out).signature.kvOutputs).toBe('new');
    const empty = tempDir('bw-empty');
    await expect(buildInWorker(workerPath)(empty, path.join(empty, 'model'), buildOptions)).rejects.toThrow(/^ModelFolderError: .*neither tokenizer\.json nor vocab\.json \+ merges\.txt/);
  }, 60_000);

  it('an abort terminates the worker at once', async () => {
    const out = path.join(tempDir('bw'), 'model');
    const controller = new AbortController();
    const run = buildInWorker(workerPath)(repoDir, out, buildOptions, controller.signal);
    controller.abort();
    await expect(run).rejects.toThrow(/The conversion was cancelled/);
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe('freqkv download --variant build-int4', () => {
  it('downloads and builds into --out and reports the build in its JSON line', async () => {
    const out = path.join(tempDir('cli'), 'model');
    const run = await freqkv(['download', '--variant', 'build-int4', '--repo', REPO, '--out', out, '--endpoint', hub.endpoint, '--json']);
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as Omit<DownloadResult, 'files'>;
    expect(result).toMatchObject({ dir: out, repo: REPO, variant: 'build-int4', alreadyPresent: false, onnxFile: path.join(out, 'onnx', 'model.onnx') });
    expect(result.build?.options.weights).toBe('int4');
    expect(run.stderr).toMatch(/converting the weights with the builder/);
    expect(run.stderr).toMatch(/built with int4 weights in [\d.]+ s \(the downloaded weights were deleted\)/);
    expect(inspectModelFolder(out).signature.kvOutputs).toBe('new');
  }, 60_000);
});

function freqkv(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // Asynchronous: the stand-in hub runs in this process and must keep answering.
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'bin', 'freqkv.js'), ...args], { cwd: ROOT, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}
