// Downloads one file of a model into `<target>.part` with HTTP range requests, then checks its
// size and hash and renames it to `<target>`. A `.part` left by an earlier, interrupted run is
// resumed with `Range: bytes=N-`: a 206 reply is appended, a 200 reply (a server that ignores
// ranges) restarts the file, a 416 reply means the part is already complete. Transient failures
// (refused or dropped connections, stalls, 429 and 5xx replies) are retried with exponential
// backoff; the count starts over whenever an attempt made progress.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RemoteFile } from './hub';
import { DiskFullError, DownloadCancelledError, HubResponseError, IntegrityError, NetworkError, RepoNotFoundError } from './errors';

export interface FetchSettings {
  endpoint: string;
  signal?: AbortSignal;
  /** Retries after a transient failure that made no progress. */
  retries: number;
  /** The first retry waits this long; each further one twice as long (at most 30 s). */
  retryDelayMs: number;
  /** A request that receives nothing for this long is abandoned (and retried). */
  idleTimeoutMs: number;
  /** Called with the bytes of this file on disk after each chunk (0 on a restart), and the bytes received for it in this run. */
  onBytes(fileBytes: number, fetched: number): void;
  /** Called once the content is complete and is being hashed. */
  onVerify?(): void;
}

export interface FetchOutcome {
  /** Bytes received over the network for this file in this run. */
  fetched: number;
  /** Bytes of an earlier run that were kept (resumed from). */
  resumedFrom: number;
}

/** A failure worth retrying. Internal: it becomes a NetworkError when the retries run out. */
class TransientError extends Error {}

/** The part file must be thrown away and the file fetched from its start. */
class RestartError extends Error {}

export async function fetchFile(url: string, target: string, file: RemoteFile, settings: FetchSettings): Promise<FetchOutcome> {
  const part = `${target}.part`;
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const resumedFrom = Math.min(sizeOf(part), file.size);
  let fetched = 0;
  const report = (fileBytes: number): void => settings.onBytes(fileBytes, fetched);
  let failures = 0;
  let attempts = 0;
  for (;;) {
    throwIfCancelled(settings.signal, file);
    if (++attempts > 50 + settings.retries) throw new HubResponseError(`${url} keeps answering with replies that do not continue ${file.path}; gave up after ${attempts - 1} requests.`);
    let start = sizeOf(part);
    if (start > file.size) {
      fs.rmSync(part, { force: true });
      start = 0;
    }
    try {
      await fetchOnce(url, part, start, file, settings, (n) => (fetched += n), report);
      break;
    } catch (error) {
      if (settings.signal?.aborted) throw cancelled(file);
      if (error instanceof RestartError) {
        fs.rmSync(part, { force: true });
        settings.onBytes(0, fetched);
        continue;
      }
      if (!(error instanceof TransientError)) throw error;
      failures = sizeOf(part) > start ? 1 : failures + 1;
      if (failures > settings.retries) {
        throw new NetworkError(
          `Could not download ${file.path} from ${settings.endpoint}: ${error.message}. The machine may be offline, or the endpoint may be wrong (a mirror can be set with --endpoint or freqkv.huggingFaceEndpoint). What was downloaded is kept; run the download again to resume.`,
        );
      }
      await sleep(Math.min(30_000, settings.retryDelayMs * 2 ** (failures - 1)), settings.signal).catch(() => undefined);
    }
  }
  settings.onVerify?.();
  await verify(part, file);
  fs.renameSync(part, target);
  return { fetched, resumedFrom };
}

/** One request that, when it resolves, has left the complete file in `part`. */
async function fetchOnce(url: string, part: string, start: number, file: RemoteFile, settings: FetchSettings, count: (n: number) => void, report: (fileBytes: number) => void): Promise<void> {
  const idle = new AbortController();
  const signal = settings.signal ? AbortSignal.any([settings.signal, idle.signal]) : idle.signal;
  let timer = setTimeout(() => idle.abort(), settings.idleTimeoutMs);
  const resetTimer = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => idle.abort(), settings.idleTimeoutMs);
  };
  const stalled = (): TransientError => new TransientError(`no data for ${Math.round(settings.idleTimeoutMs / 1000)} s`);
  try {
    let response: Response;
    try {
      response = await fetch(url, { headers: start > 0 ? { Range: `bytes=${start}-` } : {}, signal, redirect: 'follow' });
    } catch (error) {
      if (idle.signal.aborted && !settings.signal?.aborted) throw stalled();
      throw transient(error);
    }
    if (response.status === 416) {
      await response.body?.cancel();
      if (start === file.size) return;
      throw new RestartError();
    }
    if (response.status === 404 || response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      throw new RepoNotFoundError(`${url} answered ${response.status}: ${file.path} was listed but cannot be fetched (the repository may have changed or need a login). Run the download again.`);
    }
    if (response.status === 429 || response.status >= 500) {
      await response.body?.cancel();
      throw new TransientError(`the server answered ${response.status} ${response.statusText}`);
    }
    if (response.status !== 200 && response.status !== 206) {
      await response.body?.cancel();
      throw new HubResponseError(`${url} answered ${response.status} ${response.statusText}; expected the file's bytes.`);
    }
    let offset = start;
    if (response.status === 206) {
      const from = /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '');
      if (!from || Number(from[1]) !== start) {
        await response.body?.cancel();
        throw new RestartError();
      }
    } else {
      // 200: the server sent the whole file (no range asked, or the range was ignored).
      offset = 0;
    }
    if (!response.body) throw new TransientError('the reply had no body');
    report(offset);
    const handle = await fs.promises.open(part, offset === 0 ? 'w' : 'a');
    const reader = response.body.getReader();
    try {
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (error) {
          if (idle.signal.aborted && !settings.signal?.aborted) throw stalled();
          throw transient(error);
        }
        if (chunk.done) break;
        resetTimer();
        if (offset + chunk.value.byteLength > file.size) {
          await reader.cancel().catch(() => undefined);
          await handle.close();
          fs.rmSync(part, { force: true });
          throw new IntegrityError(`${file.path} is longer than the ${file.size} bytes the listing gives; the file was deleted. Run the download again; if it happens again, the repository changed while downloading or a proxy alters files.`);
        }
        await writeAll(handle, chunk.value, part, file);
        offset += chunk.value.byteLength;
        count(chunk.value.byteLength);
        report(offset);
      }
    } finally {
      await handle.close().catch(() => undefined);
      reader.releaseLock();
    }
    if (offset < file.size) throw new TransientError(`the connection ended after ${offset} of ${file.size} bytes`);
  } finally {
    clearTimeout(timer);
  }
}

async function writeAll(handle: fs.promises.FileHandle, bytes: Uint8Array, part: string, file: RemoteFile): Promise<void> {
  try {
    await handle.write(bytes);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOSPC') {
      const free = freeBytes(path.dirname(part));
      const needed = file.size - sizeOf(part);
      throw new DiskFullError(
        `The disk is full while writing ${file.path}${free !== undefined ? ` (${formatBytes(needed)} of this file still to come, ${formatBytes(free)} free)` : ''}. Free some space, then run the download again: it resumes where it stopped.`,
      );
    }
    throw error;
  }
}

async function verify(part: string, file: RemoteFile): Promise<void> {
  const size = sizeOf(part);
  let problem: string | undefined;
  if (size !== file.size) problem = `${size} bytes instead of ${file.size}`;
  else if (file.sha256) {
    const actual = await hashFile(part, 'sha256');
    if (actual !== file.sha256) problem = `sha256 ${actual} instead of ${file.sha256}`;
  } else if (file.gitOid && /^[0-9a-f]{40}$/.test(file.gitOid)) {
    const actual = await hashFile(part, 'sha1', `blob ${size}\0`);
    if (actual !== file.gitOid) problem = `git blob hash ${actual} instead of ${file.gitOid}`;
  }
  if (problem) {
    fs.rmSync(part, { force: true });
    throw new IntegrityError(`${file.path} arrived damaged (${problem}); the bad file was deleted. Run the download again; if it fails the same way, the repository changed while downloading or a proxy alters files.`);
  }
}

async function hashFile(file: string, algorithm: 'sha256' | 'sha1', prefix = ''): Promise<string> {
  const hash = createHash(algorithm);
  hash.update(prefix);
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function transient(error: unknown): TransientError {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const detail = cause?.code ?? cause?.message ?? (error as Error).message;
  return new TransientError(detail === (error as Error).message ? detail : `${(error as Error).message}: ${detail}`);
}

function cancelled(file: RemoteFile): DownloadCancelledError {
  return new DownloadCancelledError(`The download was cancelled during ${file.path}; what was downloaded is kept, and the next download of the same model resumes from there.`);
}

function throwIfCancelled(signal: AbortSignal | undefined, file: RemoteFile): void {
  if (signal?.aborted) throw cancelled(file);
}

export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function sizeOf(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/** Free bytes for an unprivileged user on the file system holding `dir` (or its nearest existing parent). */
export function freeBytes(dir: string): number | undefined {
  let current = path.resolve(dir);
  for (;;) {
    try {
      const stats = fs.statfsSync(current);
      return stats.bavail * stats.bsize;
    } catch {
      const parent = path.dirname(current);
      if (parent === current) return undefined;
      current = parent;
    }
  }
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1e12) return `${(bytes / 1e12).toFixed(2)} TB`;
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(1)} kB`;
  return `${bytes} B`;
}
