// Which workspace paths are read at all: .gitignore rules (nested files too, via `ignore`),
// include/exclude globs (picomatch), folders that are always skipped (.git, node_modules) and
// generated-file rules by path. Paths are workspace-relative with forward slashes. The node-fs
// walker uses it to prune folders; a VS Code file lister can use the same object.

import ignore, { type Ignore } from 'ignore';
import picomatch from 'picomatch';
import type { SkipReason } from './types';

/** Folders never read: version control and installed packages. */
export const ALWAYS_SKIPPED_DIRS: readonly string[] = ['.git', 'node_modules'];
/** Build-output folders, treated as generated (at any depth). */
export const GENERATED_DIRS: readonly string[] = ['dist', 'out', 'build', 'coverage'];
/** Lockfiles and other files tools write, treated as generated. */
export const GENERATED_FILE_NAMES: readonly string[] = [
  'package-lock.json', 'npm-shrinkwrap.json', 'yarn.lock', 'pnpm-lock.yaml', 'bun.lockb', 'Cargo.lock', 'poetry.lock',
  'Pipfile.lock', 'Gemfile.lock', 'composer.lock', 'go.sum', 'flake.lock', 'uv.lock',
];
/** Minified bundles and source maps. */
const GENERATED_NAME_PATTERN = /\.min\.(js|mjs|cjs|css)$|\.(js|css)\.map$|\.map$/;

export interface FilterOptions {
  /** Globs a file must match to be read (default: everything). */
  include?: readonly string[];
  /** Globs for files and folders to leave out. */
  exclude?: readonly string[];
  /** Honour .gitignore files (default true). */
  gitignore?: boolean;
}

export class WorkspaceFilter {
  private readonly gitignores: { base: string; rules: Ignore }[] = [];
  private readonly includes: ((p: string) => boolean) | undefined;
  private readonly excludes: ((p: string) => boolean) | undefined;
  readonly useGitignore: boolean;

  constructor(options: FilterOptions = {}) {
    this.includes = options.include && options.include.length > 0 ? picomatch([...options.include], { dot: true }) : undefined;
    this.excludes = options.exclude && options.exclude.length > 0 ? picomatch([...options.exclude], { dot: true }) : undefined;
    this.useGitignore = options.gitignore ?? true;
  }

  /** Adds the rules of the .gitignore file in folder `dir` ('' for the workspace root). */
  addGitignore(dir: string, text: string): void {
    if (!this.useGitignore) return;
    this.gitignores.push({ base: dir === '' ? '' : `${dir.replace(/\/+$/, '')}/`, rules: ignore().add(text) });
  }

  /** Why a folder is not walked, or undefined to walk it. */
  checkDir(rel: string): SkipReason | undefined {
    const name = rel.split('/').at(-1)!;
    if (ALWAYS_SKIPPED_DIRS.includes(name)) return 'always-skipped';
    if (this.gitignored(`${rel}/`)) return 'gitignore';
    if (this.excludes && (this.excludes(rel) || this.excludes(`${rel}/`))) return 'excluded';
    if (GENERATED_DIRS.includes(name)) return 'generated';
    return undefined;
  }

  /** Why a file is not read, judging by its path alone, or undefined to read it. */
  checkFile(rel: string): SkipReason | undefined {
    const parts = rel.split('/');
    const name = parts.at(-1)!;
    if (parts.slice(0, -1).some((p) => ALWAYS_SKIPPED_DIRS.includes(p))) return 'always-skipped';
    if (this.gitignored(rel)) return 'gitignore';
    if (this.excludes?.(rel)) return 'excluded';
    if (this.includes && !this.includes(rel)) return 'not-included';
    if (parts.slice(0, -1).some((p) => GENERATED_DIRS.includes(p))) return 'generated';
    if (GENERATED_FILE_NAMES.includes(name) || GENERATED_NAME_PATTERN.test(name)) return 'generated';
    return undefined;
  }

  private gitignored(rel: string): boolean {
    let ignored = false;
    // Shallower files first; a deeper .gitignore can override (including with `!pattern`).
    for (const { base, rules } of this.gitignores) {
      if (base !== '' && !rel.startsWith(base)) continue;
      const sub = rel.slice(base.length);
      if (sub === '' || sub === '/') continue;
      const result = rules.test(sub);
      if (result.ignored) ignored = true;
      else if (result.unignored) ignored = false;
    }
    return ignored;
  }
}
