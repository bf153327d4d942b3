// Download Model: fetches one ONNX variant of a model repo from a Hugging Face hub into a model
// folder the engine loads. Files go to `<dest>.partial/` (each one as `<file>.part` until its
// size and hash check out); when every file is there and the folder passes the check,
// `<dest>.partial` is renamed to `<dest>`, so `<dest>` is never half-written. A cancelled or
// failed run keeps `<dest>.partial` and the next run resumes it. `<dest>/freqkv-download.json`
// records what was downloaded, including which graph (`onnxFile`, which loading the folder then
// picks); a later run with the same listing does nothing.
//
// This module does not import the ONNX reader (so the extension host can use it without
// bundling protobufjs): by default the finished folder is only checked for a config.json the
// engine runs. index.ts wraps it to run the full inspectModelFolder check.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseHfConfig } from '../modelConfig';
import { FreqKvError } from '../../errors';
import { DiskFullError, UnsupportedRepoError } from './errors';
import { fetchFile, formatBytes, freeBytes, sizeOf } from './fetchFile';
import { install, lock, MANIFEST, PARTIAL_LISTING, readManifest, removeStrayFiles, sameDownload } from './folderState';
import { checkRepoId, chooseFiles, DEFAULT_ENDPOINT, DEFAULT_REPO, DEFAULT_REVISION, DEFAULT_VARIANT, fileUrl, variantBase, type RemoteFile } from './hub';
import { checkEndpoint, listRepo } from './listing';

export interface DownloadModelOptions {
  /** owner/name on the hub (default onnx-community/Qwen2.5-Coder-0.5B-Instruct). */
  repo?: string;
  revision?: string;
  /** ONNX variant: q4 (default), fp32, int8, quantized, q4f16, fp16. */
  variant?: string;
  /** The model folder to create (replaced if it exists and differs). */
  dest: string;
  /** The hub or a mirror of it (default https://huggingface.co). */
  endpoint?: string;
  signal?: AbortSignal;
  onProgress?: (progress: DownloadProgress) => void;
  /** Retries of a request that fails transiently without progress (default 3). */
  retries?: number;
  /** First backoff delay (default 1000 ms; doubles per retry). */
  retryDelayMs?: number;
  /** A request receiving nothing for this long is retried (default 60 s). */
  idleTimeoutMs?: number;
  /**
   * Checks the finished folder before it is put in place; throws a FreqKvError if the engine
   * cannot run it. Default: config.json describes a model the engine runs.
   */
  check?: (dir: string) => void;
}

export interface DownloadProgress {
  phase: 'listing' | 'downloading' | 'verifying' | 'installing';
  /** The file being fetched or checked. */
  file?: string;
  fileBytes: number;
  fileSize: number;
  /** Bytes on disk of all files (complete files, plus the current one so far). */
  bytesDone: number;
  bytesTotal: number;
  filesDone: number;
  filesTotal: number;
  /** Network bytes per second over the last few seconds (0 before any). */
  bytesPerSecond: number;
}

export interface DownloadResult {
  dir: string;
  repo: string;
  revision: string;
  variant: string;
  files: RemoteFile[];
  bytesTotal: number;
  /** Bytes received over the network in this run. */
  bytesFetched: number;
  /** Bytes kept from an earlier, interrupted run. */
  bytesResumed: number;
  /** True when `dest` already held this download and nothing was fetched. */
  alreadyPresent: boolean;
  /** The graph file inside `dir`. */
  onnxFile: string;
  seconds: number;
}

export async function downloadModel(options: DownloadModelOptions): Promise<DownloadResult> {
  const repo = options.repo ?? DEFAULT_REPO;
  const revision = options.revision ?? DEFAULT_REVISION;
  const variant = options.variant ?? DEFAULT_VARIANT;
  const endpoint = (options.endpoint ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
  checkRepoId(repo);
  variantBase(variant);
  checkEndpoint(endpoint);
  const dest = path.resolve(options.dest);
  const partial = `${dest}.partial`;
  const started = performance.now();
  const settings = { retries: options.retries ?? 3, retryDelayMs: options.retryDelayMs ?? 1000, idleTimeoutMs: options.idleTimeoutMs ?? 60_000 };

  const rate = new RateMeter();
  const report = (p: Omit<DownloadProgress, 'bytesPerSecond'>, force = false): void => {
    if (options.onProgress && (force || rate.due())) options.onProgress({ ...p, bytesPerSecond: rate.perSecond() });
  };
  report({ phase: 'listing', fileBytes: 0, fileSize: 0, bytesDone: 0, bytesTotal: 0, filesDone: 0, filesTotal: 0 }, true);

  const entries = await listRepo(endpoint, repo, revision, options.signal, settings);
  const files = chooseFiles(entries, repo, variant);
  const bytesTotal = files.reduce((sum, f) => sum + f.size, 0);
  const onnxFile = files.find((f) => f.path.endsWith('.onnx'))?.path ?? '';
  const result = { dir: dest, repo, revision, variant, files, bytesTotal, onnxFile: path.join(dest, onnxFile) };

  if (sameDownload(readManifest(dest), files) && files.every((f) => sizeOf(path.join(dest, f.path)) === f.size)) {
    return { ...result, bytesFetched: 0, bytesResumed: 0, alreadyPresent: true, seconds: (performance.now() - started) / 1000 };
  }

  fs.mkdirSync(partial, { recursive: true });
  const releaseLock = lock(partial);
  try {
    // Files of another listing (an older revision, another variant) are not part of this one.
    removeStrayFiles(partial, files);
    fs.writeFileSync(path.join(partial, PARTIAL_LISTING), JSON.stringify({ repo, revision, variant, files }));
    const onDisk = (f: RemoteFile): number => (sizeOf(path.join(partial, f.path)) === f.size ? f.size : Math.min(f.size, sizeOf(path.join(partial, `${f.path}.part`))));
    const remaining = files.reduce((sum, f) => sum + f.size - onDisk(f), 0);
    const free = freeBytes(partial);
    // Installing is a rename, so the space needed is what is still to come.
    if (free !== undefined && remaining > free) {
      throw new DiskFullError(`Not enough disk space for ${repo} (${variant}): ${formatBytes(remaining)} still to download, ${formatBytes(free)} free on the disk holding ${partial}. Free some space (or choose a smaller variant), then run the download again.`);
    }

    let bytesDone = 0;
    let bytesFetched = 0;
    let bytesResumed = 0;
    for (const [index, file] of files.entries()) {
      const target = path.join(partial, file.path);
      if (sizeOf(target) === file.size && fs.existsSync(target)) {
        // Checked and renamed in an earlier run.
        bytesDone += file.size;
        bytesResumed += file.size;
        continue;
      }
      const base = { file: file.path, fileSize: file.size, bytesTotal, filesDone: index, filesTotal: files.length };
      let first = true;
      const outcome = await fetchFile(fileUrl(endpoint, repo, revision, file.path), target, file, {
        endpoint,
        signal: options.signal,
        ...settings,
        onBytes: (fileBytes, fetchedHere) => {
          rate.add(bytesFetched + fetchedHere);
          // Every file's first report goes out, so a listener sees each file start.
          report({ phase: 'downloading', ...base, fileBytes, bytesDone: bytesDone + fileBytes }, first);
          first = false;
        },
        onVerify: () => report({ phase: 'verifying', ...base, fileBytes: file.size, bytesDone: bytesDone + file.size }, true),
      });
      bytesFetched += outcome.fetched;
      bytesResumed += outcome.resumedFrom;
      bytesDone += file.size;
    }
    report({ phase: 'installing', fileBytes: 0, fileSize: 0, bytesDone, bytesTotal, filesDone: files.length, filesTotal: files.length }, true);

    fs.writeFileSync(path.join(partial, MANIFEST), `${JSON.stringify({ repo, revision, variant, endpoint, onnxFile, files, downloadedAt: new Date().toISOString() }, null, 2)}\n`);
    try {
      (options.check ?? checkConfig)(partial);
    } catch (error) {
      if (!(error instanceof FreqKvError) && !(error instanceof SyntaxError)) throw error;
      throw new UnsupportedRepoError(`${repo} (${variant}) downloaded, but the folder is not a model the engine can run: ${error.message} The files are kept in ${partial}.`);
    }
    fs.rmSync(path.join(partial, PARTIAL_LISTING), { force: true });
    releaseLock();
    install(partial, dest);
    return { ...result, bytesFetched, bytesResumed, alreadyPresent: false, seconds: (performance.now() - started) / 1000 };
  } finally {
    releaseLock();
  }
}

function checkConfig(dir: string): void {
  const file = path.join(dir, 'config.json');
  parseHfConfig(JSON.parse(fs.readFileSync(file, 'utf8')) as unknown, file);
}

/** Network bytes per second over a sliding window of about five seconds; paces progress reports. */
class RateMeter {
  private samples: { t: number; bytes: number }[] = [];
  private lastReport = 0;

  add(fetchedTotal: number): void {
    const t = performance.now();
    this.samples.push({ t, bytes: fetchedTotal });
    while (this.samples.length > 2 && t - (this.samples[0] as { t: number }).t > 5000) this.samples.shift();
  }

  perSecond(): number {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || !last || last.t - first.t < 200) return 0;
    return ((last.bytes - first.bytes) * 1000) / (last.t - first.t);
  }

  /** At most ten reports a second. */
  due(): boolean {
    const t = performance.now();
    if (t - this.lastReport < 100) return false;
    this.lastReport = t;
    return true;
  }
}
