// Words for why files were left out, for people: the CLI's messages, the extension's output
// channel and its panel use the same ones.

import type { SkipReason, SkippedFile } from './types';

export const SKIP_REASON_TEXT: Record<SkipReason, string> = {
  'always-skipped': 'version control or installed packages (.git, node_modules)',
  gitignore: 'ignored by .gitignore',
  excluded: 'matches an exclude glob',
  'not-included': 'matches no include glob',
  generated: 'generated (build output, lockfile, minified or marked as generated)',
  'too-large': 'larger than the file size limit',
  binary: 'binary (NUL bytes)',
  'not-utf8': 'not valid UTF-8 text',
  empty: 'empty',
  'symlink-loop': 'a symbolic link loop',
  'symlink-outside': 'a symbolic link out of the workspace',
  unreadable: 'could not be read',
  'token-budget': 'over the workspace token budget',
};

/** "3 binary, 1 too-large": how many files were left out for each reason, most first. */
export function countSkips(skipped: readonly SkippedFile[]): string {
  const counts = new Map<string, number>();
  for (const s of skipped) counts.set(s.reason, (counts.get(s.reason) ?? 0) + 1);
  const parts = [...counts].sort((a, b) => b[1] - a[1]).map(([reason, n]) => `${n} ${reason}`);
  return parts.length === 0 ? 'none' : parts.join(', ');
}
