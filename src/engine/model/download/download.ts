// Download Model: fetches one ONNX variant of a model repo from a Hugging Face hub into a model
// folder the engine loads. Files go to `<dest>.partial/` (each one as `<file>.part` until its
// size and hash check out); when every file is there and the folder passes inspectModelFolder,
// `<dest>.partial` is renamed to `<dest>`, so `<dest>` is never half-written. A cancelled or
// failed run keeps `<dest>.partial` and the next run resumes it. `<dest>/freqkv-download.json`
// records what was downloaded; a later run with the same listing does nothing.
//
// This module does not import the ONNX reader (so the extension host can use it without
// bundling protobufjs): by default the finished folder is only checked for a config.json the
// engine runs. index.ts wraps it to run the full inspectModelFolder check.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseHfConfig } from '../modelConfig';
import { FreqKvError } from '../../errors';
import { DiskFullError, DownloadCancelledError, DownloadInProgressError, HubResponseError, NetworkError, RepoNotFoundError, UnsupportedRepoError } from './errors';
import { fetchFile, formatBytes, freeBytes, sizeOf, sleep } from './fetchFile';
import { checkRepoId, chooseFiles, DEFAULT_ENDPOINT, DEFAULT_REPO, DEFAULT_REVISION, DEFAULT_VARIANT, fileUrl, nextPageUrl, parseListing, treeUrl, variantBase, type HubEntry, type RemoteFile } from './hub';


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

const MANIFEST = 'freqkv-download.json';
const LOCK = '.freqkv-download.lock';
/** The listing a partial folder was downloaded against, to drop files that changed since. */
const PARTIAL_LISTING = '.freqkv-partial.json';

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

    fs.writeFileSync(path.join(partial, MANIFEST), `${JSON.stringify({ repo, revision, variant, endpoint, files, downloadedAt: new Date().toISOString() }, null, 2)}\n`);
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

async function listRepo(endpoint: string, repo: string, revision: string, signal: AbortSignal | undefined, settings: { retries: number; retryDelayMs: number; idleTimeoutMs: number }): Promise<HubEntry[]> {
  const entries: HubEntry[] = [];
  let url: string | undefined = treeUrl(endpoint, repo, revision);
  for (let page = 0; url && page < 100; page++) {
    const response = await getWithRetries(url, endpoint, signal, settings);
    if (response.status === 404 || response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      throw new RepoNotFoundError(`${endpoint} has no model ${repo} at revision ${revision} (HTTP ${response.status}). Check the name and the revision; private and gated repositories are not supported.`);
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new HubResponseError(`${url} answered ${response.status} ${response.statusText}; expected the repository's file list. Try again later.`);
    }
    let json: unknown;
    try {
      json = await response.json();
    } catch (error) {
      throw new HubResponseError(`${url} did not return JSON (${(error as Error).message}); is ${endpoint} a Hugging Face hub?`);
    }
    entries.push(...parseListing(json, url));
    url = nextPageUrl(response.headers.get('link'));
    if (url && !/^https?:/.test(url)) url = new URL(url, endpoint).toString();
  }
  return entries;
}

/** GET with bounded retries on network errors, stalls, 429 and 5xx; other replies are returned. */
async function getWithRetries(url: string, endpoint: string, signal: AbortSignal | undefined, settings: { retries: number; retryDelayMs: number; idleTimeoutMs: number }): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    if (signal?.aborted) throw new DownloadCancelledError('The download was cancelled while listing the repository; nothing was downloaded yet.');
    const timeout = AbortSignal.timeout(settings.idleTimeoutMs);
    let problem: string;
    try {
      const response = await fetch(url, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout, headers: { Accept: 'application/json' } });
      if (response.status !== 429 && response.status < 500) return response;
      await response.body?.cancel();
      problem = `HTTP ${response.status} ${response.statusText}`;
    } catch (error) {
      if (signal?.aborted) continue;
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      problem = timeout.aborted ? `no answer within ${Math.round(settings.idleTimeoutMs / 1000)} s` : (cause?.code ?? cause?.message ?? (error as Error).message);
    }
    if (attempt >= settings.retries) {
      throw new NetworkError(`Could not reach ${endpoint} (${problem}). The machine may be offline, or the endpoint may be wrong (a mirror can be set with --endpoint or freqkv.huggingFaceEndpoint).`);
    }
    await sleep(Math.min(30_000, settings.retryDelayMs * 2 ** attempt), signal).catch(() => undefined);
  }
}

function checkEndpoint(endpoint: string): void {
  let parsed: URL;
  try {
    parsed = new URL(endpoint);
  } catch {
    throw new UnsupportedRepoError(`'${endpoint}' is not a URL; the endpoint is a hub address such as ${DEFAULT_ENDPOINT}.`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new UnsupportedRepoError(`The endpoint ${endpoint} is not http(s); use a hub address such as ${DEFAULT_ENDPOINT}.`);
}

interface Manifest {
  files?: RemoteFile[];
}

function key(f: RemoteFile): string {
  return `${f.path}\t${f.size}\t${f.sha256 ?? ''}\t${f.gitOid ?? ''}`;
}

function readManifest(dir: string): Manifest | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, MANIFEST), 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
}

/** The folder holds exactly these files (by path, size and hash), each present at its size. */
function sameDownload(manifest: Manifest | undefined, files: RemoteFile[]): boolean {
  if (!manifest?.files || manifest.files.length !== files.length) return false;
  const had = new Set(manifest.files.map(key));
  return files.every((f) => had.has(key(f)));
}

/**
 * Deletes files in the partial folder that this listing does not name, or that an earlier run
 * fetched for a different size or hash (the repo changed between runs), complete or part.
 */
function removeStrayFiles(partial: string, files: RemoteFile[]): void {
  let before: RemoteFile[] = [];
  try {
    before = (JSON.parse(fs.readFileSync(path.join(partial, PARTIAL_LISTING), 'utf8')) as Manifest).files ?? [];
  } catch {
    // No earlier listing: keep what is there; sizes and hashes are checked when each file completes.
  }
  const previous = new Map(before.map((f) => [f.path, key(f)]));
  const keep = new Set(files.filter((f) => (previous.get(f.path) ?? key(f)) === key(f)).flatMap((f) => [f.path, `${f.path}.part`]));
  keep.add(LOCK);
  keep.add(PARTIAL_LISTING);
  const walk = (dir: string, prefix: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(path.join(dir, entry.name), rel);
      else if (!keep.has(rel)) fs.rmSync(path.join(dir, entry.name), { force: true });
    }
  };
  walk(partial, '');
}

/** One download per folder at a time: a lock file holding the pid, taken over when that process is gone. */
function lock(partial: string): () => void {
  const file = path.join(partial, LOCK);
  for (let tries = 0; tries < 2; tries++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      let held = true;
      return () => {
        if (held) fs.rmSync(file, { force: true });
        held = false;
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = Number(fs.readFileSync(file, 'utf8'));
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new DownloadInProgressError(`Another download into ${partial} is running (process ${pid}); wait for it or cancel it.`);
      }
      fs.rmSync(file, { force: true });
    }
  }
  throw new DownloadInProgressError(`Could not take the download lock ${file}; delete it if no download is running.`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Renames the complete folder into place; an older folder at `dest` is replaced. */
function install(partial: string, dest: string): void {
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  if (!fs.existsSync(dest)) {
    fs.renameSync(partial, dest);
    return;
  }
  const old = `${dest}.old-${process.pid}`;
  fs.rmSync(old, { recursive: true, force: true });
  fs.renameSync(dest, old);
  try {
    fs.renameSync(partial, dest);
  } catch (error) {
    fs.renameSync(old, dest);
    throw error;
  }
  fs.rmSync(old, { recursive: true, force: true });
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
