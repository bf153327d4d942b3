// Workspace files from the local disk: a sorted, depth-first walk that reads .gitignore files as
// it goes (so nested ones apply below their folder), prunes skipped folders without entering
// them, and never follows a symlink that loops or leaves the workspace.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { ALWAYS_SKIPPED_DIRS, type WorkspaceFilter } from './filter';
import type { SourceEntry } from './types';

export async function* walkDirectory(root: string, filter: WorkspaceFilter, signal?: AbortSignal): AsyncGenerator<SourceEntry> {
  const realRoot = await fs.promises.realpath(root);
  yield* walk(realRoot, '', [realRoot]);

  async function* walk(dirAbs: string, dirRel: string, ancestors: string[]): AsyncGenerator<SourceEntry> {
    signal?.throwIfAborted();
    let entries: fs.Dirent[];
    try {
      entries = await fs.promises.readdir(dirAbs, { withFileTypes: true });
    } catch {
      yield { kind: 'skipped', path: dirRel === '' ? '.' : `${dirRel}/`, reason: 'unreadable' };
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const gitignore = entries.find((e) => e.name === '.gitignore' && e.isFile());
    if (gitignore && filter.useGitignore) {
      try {
        filter.addGitignore(dirRel, await fs.promises.readFile(path.join(dirAbs, '.gitignore'), 'utf8'));
      } catch {
        // An unreadable .gitignore adds no rules.
      }
    }
    for (const entry of entries) {
      signal?.throwIfAborted();
      const rel = dirRel === '' ? entry.name : `${dirRel}/${entry.name}`;
      const abs = path.join(dirAbs, entry.name);
      let isDir = entry.isDirectory();
      let isFile = entry.isFile();
      let realDir = abs;
      if (entry.isSymbolicLink() && ALWAYS_SKIPPED_DIRS.includes(entry.name)) {
        yield { kind: 'skipped', path: rel, reason: 'always-skipped' };
        continue;
      }
      if (entry.isSymbolicLink()) {
        let target: string;
        try {
          target = await fs.promises.realpath(abs);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          yield { kind: 'skipped', path: rel, reason: code === 'ELOOP' ? 'symlink-loop' : 'unreadable' };
          continue;
        }
        if (target !== realRoot && !target.startsWith(realRoot + path.sep)) {
          yield { kind: 'skipped', path: rel, reason: 'symlink-outside' };
          continue;
        }
        const stat = await fs.promises.stat(target);
        isDir = stat.isDirectory();
        isFile = stat.isFile();
        realDir = target;
        if (isDir && ancestors.some((a) => a === target || a.startsWith(target + path.sep))) {
          yield { kind: 'skipped', path: `${rel}/`, reason: 'symlink-loop' };
          continue;
        }
      }
      if (isDir) {
        const reason = filter.checkDir(rel);
        if (reason) yield { kind: 'skipped', path: `${rel}/`, reason };
        else yield* walk(realDir, rel, [...ancestors, realDir]);
      } else if (isFile) {
        const reason = filter.checkFile(rel);
        if (reason) {
          yield { kind: 'skipped', path: rel, reason };
          continue;
        }
        let stat: fs.Stats;
        try {
          stat = await fs.promises.stat(abs);
        } catch {
          yield { kind: 'skipped', path: rel, reason: 'unreadable' };
          continue;
        }
        yield { kind: 'file', path: rel, size: stat.size, mtimeMs: stat.mtimeMs, read: (maxBytes) => readHead(abs, maxBytes) };
      }
      // Sockets, devices and FIFOs are not files to read.
    }
  }
}

/** Reads at most maxBytes from the start of a file, never more. */
export async function readHead(file: string, maxBytes: number): Promise<Uint8Array> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const buffer = Buffer.alloc(maxBytes);
    let filled = 0;
    while (filled < maxBytes) {
      const { bytesRead } = await handle.read(buffer, filled, maxBytes - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return buffer.subarray(0, filled);
  } finally {
    await handle.close();
  }
}
