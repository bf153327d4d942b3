// Which files a path in a model's answer may open: only ones inside a workspace folder. The
// path comes from model output, so `..`, absolute paths and drive letters are refused.

import * as path from 'node:path';

/** Absolute candidates for `relativePath` under each folder, in folder order; none if it escapes. */
export function workspaceFileCandidates(relativePath: string, folders: readonly string[]): string[] {
  const cleaned = relativePath.split('#')[0]!.replace(/^\.\//, '');
  if (cleaned === '' || path.isAbsolute(cleaned) || /^[a-z]:/i.test(cleaned)) return [];
  const candidates: string[] = [];
  for (const folder of folders) {
    const file = path.resolve(folder, cleaned);
    const relative = path.relative(folder, file);
    if (relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative)) candidates.push(file);
  }
  return candidates;
}
