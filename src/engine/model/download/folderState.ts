// The state a download keeps on disk: the manifest of a finished folder, the listing a partial
// folder was fetched against, the lock that keeps two downloads out of one folder, and the
// rename that puts a finished folder in place.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { DownloadInProgressError } from './errors';
import type { RemoteFile } from './hub';

export const MANIFEST = 'freqkv-download.json';
const LOCK = '.freqkv-download.lock';
/** The listing a partial folder was downloaded against, to drop files that changed since. */
export const PARTIAL_LISTING = '.freqkv-partial.json';

export interface Manifest {
  variant?: string;
  /** The files fetched from the hub (for a build variant: the source files, deleted after the build). */
  files?: RemoteFile[];
  /** The graph file fetched ('onnx/model_q4.onnx') or built, relative to the folder; loading the folder picks it. */
  onnxFile?: string;
  build?: BuildRecord;
}

/** What a build variant converted the source files into. */
export interface BuildRecord {
  builder: string;
  /** The options given to the builder (writeModelFolder). */
  options: { weights: string; kvCache: string; externalData: string };
  seconds: number;
  /** The files of the built folder (manifest aside), with their sizes. */
  files: { path: string; size: number }[];
}

function key(f: RemoteFile): string {
  return `${f.path}\t${f.size}\t${f.sha256 ?? ''}\t${f.gitOid ?? ''}`;
}

export function readManifest(dir: string): Manifest | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, MANIFEST), 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
}

/** The folder holds exactly these files (by path, size and hash), each present at its size. */
export function sameDownload(manifest: Manifest | undefined, files: RemoteFile[]): boolean {
  if (!manifest?.files || manifest.files.length !== files.length) return false;
  const had = new Set(manifest.files.map(key));
  return files.every((f) => had.has(key(f)));
}

/**
 * Deletes files in the partial folder that this listing does not name, or that an earlier run
 * fetched for a different size or hash (the repo changed between runs), complete or part.
 */
export function removeStrayFiles(partial: string, files: RemoteFile[]): void {
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
export function lock(partial: string): () => void {
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
export function install(partial: string, dest: string): void {
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
