// The files a workspace index covers, on the local disk: one or more root folders (a multi-root
// workspace prefixes each path with its folder's name), walked with the engine's filter
// (.gitignore, include/exclude globs, generated files). Listing stats files and never reads them;
// the index reads a file only when its size or modification time changed, and again when it
// prefills it.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { WorkspaceFilter, type FilterOptions } from '../workspace/filter';
import { readHead, walkDirectory } from '../workspace/nodeSource';
import type { SkipReason, SourceEntry, SourceFile } from '../workspace/types';

export interface WorkspaceRoot {
  dir: string;
  /** Prefix of this root's paths ('' or undefined for a single-root workspace). */
  prefix?: string;
}

/** What the workspace index reads files through. */
export interface IndexSource {
  /** Every file (size and modification time, not read) and what was left out, sorted by path within each root. */
  list(signal?: AbortSignal): AsyncIterable<SourceEntry>;
  /** One file by its workspace path, as it is now; undefined if it is gone or not a file. */
  stat(path: string): Promise<SourceFile | undefined>;
  /** Why a path is left out by the rules (as of the last listing), or undefined. */
  checkFile(path: string): SkipReason | undefined;
}

export class DirectorySource implements IndexSource {
  private filters: WorkspaceFilter[];

  constructor(
    readonly roots: readonly WorkspaceRoot[],
    private readonly filterOptions: FilterOptions = {},
  ) {
    if (roots.length === 0) throw new RangeError('DirectorySource needs at least one root folder');
    this.filters = roots.map(() => new WorkspaceFilter(filterOptions));
  }

  async *list(signal?: AbortSignal): AsyncGenerator<SourceEntry> {
    // A fresh filter per listing: walking adds the .gitignore files it finds.
    this.filters = this.roots.map(() => new WorkspaceFilter(this.filterOptions));
    for (let i = 0; i < this.roots.length; i++) {
      const root = this.roots[i]!;
      const prefix = root.prefix ? `${root.prefix}/` : '';
      for await (const entry of walkDirectory(root.dir, this.filters[i]!, signal)) yield prefix === '' ? entry : { ...entry, path: prefix + entry.path };
    }
  }

  private locate(workspacePath: string): { root: WorkspaceRoot; filter: WorkspaceFilter; rel: string } | undefined {
    for (let i = 0; i < this.roots.length; i++) {
      const root = this.roots[i]!;
      const prefix = root.prefix ? `${root.prefix}/` : '';
      if (prefix !== '' && !workspacePath.startsWith(prefix)) continue;
      const rel = workspacePath.slice(prefix.length);
      if (rel === '' || rel.split('/').includes('..')) return undefined;
      return { root, filter: this.filters[i]!, rel };
    }
    return undefined;
  }

  checkFile(workspacePath: string): SkipReason | undefined {
    const at = this.locate(workspacePath);
    return at ? at.filter.checkFile(at.rel) : 'unreadable';
  }

  async stat(workspacePath: string): Promise<SourceFile | undefined> {
    const at = this.locate(workspacePath);
    if (!at) return undefined;
    const abs = path.join(at.root.dir, ...at.rel.split('/'));
    let stat: fs.Stats;
    try {
      stat = await fs.promises.stat(abs);
    } catch {
      return undefined;
    }
    if (!stat.isFile()) return undefined;
    return { kind: 'file', path: workspacePath, size: stat.size, mtimeMs: stat.mtimeMs, read: (maxBytes) => readHead(abs, maxBytes) };
  }
}
