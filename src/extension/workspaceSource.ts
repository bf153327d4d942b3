// Workspace files listed through VS Code's API, as a source for the engine's ingestion
// (src/engine/workspace/ingest.ts). findFiles is given an exclude glob built from the user's
// files.exclude setting plus the folders never read (.git, node_modules), so those are not even
// listed; .gitignore files are found the same way and handed to the engine's WorkspaceFilter,
// which then judges every path (gitignore, include/exclude globs, generated files) exactly as
// the CLI's disk walker does. Files are read with workspace.fs, so remote workspaces work too.

import * as vscode from 'vscode';
import { ALWAYS_SKIPPED_DIRS, type WorkspaceFilter } from '../engine/workspace/filter';
import type { SourceEntry } from '../engine/workspace/types';

/** At most this many files are listed per workspace folder. */
export const MAX_LISTED_FILES = 100_000;

/** The glob patterns of files.exclude that are on (conditional `{ when }` entries are left to VS Code). */
export function filesExcludePatterns(setting: Record<string, unknown> | undefined): string[] {
  return Object.entries(setting ?? {})
    .filter(([, on]) => on === true)
    .map(([pattern]) => pattern);
}

/** One glob for findFiles' exclude: files.exclude and the folders never read. */
export function excludeGlob(filesExclude: readonly string[]): string {
  const patterns = [...filesExclude, ...ALWAYS_SKIPPED_DIRS.map((dir) => `**/${dir}/**`)];
  return `{${patterns.join(',')}}`;
}

/** A workspace-relative path with forward slashes; prefixed by the folder's name in a multi-root workspace. */
function relativePath(folder: vscode.WorkspaceFolder, uri: vscode.Uri, multiRoot: boolean): string {
  const base = folder.uri.path.endsWith('/') ? folder.uri.path : `${folder.uri.path}/`;
  const inside = uri.path.startsWith(base) ? uri.path.slice(base.length) : vscode.workspace.asRelativePath(uri, false);
  return multiRoot ? `${folder.name}/${inside}` : inside;
}

async function readText(uri: vscode.Uri): Promise<string> {
  return new TextDecoder('utf-8').decode(await vscode.workspace.fs.readFile(uri));
}

/**
 * Every file of every workspace folder, sorted by path. Adds the .gitignore files it finds to
 * `filter` first (shallowest first, so deeper ones can override).
 */
export async function* vscodeWorkspaceEntries(filter: WorkspaceFilter, token?: vscode.CancellationToken): AsyncGenerator<SourceEntry> {
  const folders = vscode.workspace.workspaceFolders ?? [];
  const multiRoot = folders.length > 1;
  const filesExclude = filesExcludePatterns(vscode.workspace.getConfiguration('files').get<Record<string, unknown>>('exclude'));
  const exclude = excludeGlob(filesExclude);
  for (const folder of folders) {
    if (filter.useGitignore) {
      const gitignores = await vscode.workspace.findFiles(new vscode.RelativePattern(folder, '**/.gitignore'), exclude, MAX_LISTED_FILES, token);
      const withDirs = gitignores.map((uri) => ({ uri, dir: relativePath(folder, uri, multiRoot).replace(/\/?\.gitignore$/, '') }));
      withDirs.sort((a, b) => a.dir.split('/').length - b.dir.split('/').length || a.dir.localeCompare(b.dir));
      for (const { uri, dir } of withDirs) {
        try {
          filter.addGitignore(dir, await readText(uri));
        } catch {
          // An unreadable .gitignore adds no rules, as in the CLI's walker.
        }
      }
    }
    const uris = await vscode.workspace.findFiles(new vscode.RelativePattern(folder, '**/*'), exclude, MAX_LISTED_FILES, token);
    const files = uris.map((uri) => ({ uri, path: relativePath(folder, uri, multiRoot) })).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    for (const file of files) {
      let size: number;
      try {
        const stat = await vscode.workspace.fs.stat(file.uri);
        if ((stat.type & vscode.FileType.File) === 0) continue;
        size = stat.size;
      } catch {
        yield { kind: 'skipped', path: file.path, reason: 'unreadable' };
        continue;
      }
      yield {
        kind: 'file',
        path: file.path,
        size,
        read: async (maxBytes) => {
          const bytes = await vscode.workspace.fs.readFile(file.uri);
          return bytes.length > maxBytes ? bytes.subarray(0, maxBytes) : bytes;
        },
      };
    }
  }
}
