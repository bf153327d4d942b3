// File references in answers (`src/x.ts`, `src/x.ts:42`, `lamp.ts`) become links that open the
// file at the line. Only paths the conversation knows are workspace files (the files a question
// read or left out) are linked; the host checks again that the file is inside the workspace.

export interface FileReference {
  /** Offsets of the reference in the text. */
  start: number;
  end: number;
  /** The workspace-relative path it names. */
  path: string;
  /** 1-based line, when the reference has one (`:42` or `#L42`). */
  line?: number;
}

const REFERENCE = /(?<![\w/.-])((?:\.\/)?(?:[\w@.-]+\/)*[\w@-][\w@.-]*\.[A-Za-z0-9]+)(?:(?::|#L)(\d+))?/g;

/** A known path for `written` (exact, or the one known path ending in `/written`), or undefined. */
export function resolveKnownPath(written: string, known: ReadonlySet<string>): string | undefined {
  const path = written.replace(/^\.\//, '');
  if (known.has(path)) return path;
  const endings = [...known].filter((p) => p.endsWith(`/${path}`));
  return endings.length === 1 ? endings[0] : undefined;
}

export function findFileReferences(text: string, known: ReadonlySet<string>): FileReference[] {
  const found: FileReference[] = [];
  for (const match of text.matchAll(REFERENCE)) {
    const path = resolveKnownPath(match[1]!, known);
    if (!path) continue;
    const line = match[2] === undefined ? undefined : Number(match[2]);
    found.push({ start: match.index, end: match.index + match[0].length, path, ...(line && line > 0 ? { line } : {}) });
  }
  return found;
}

/** Splits an href the answer wrote (`src/x.ts:42`, `src/x.ts#L42`) into path and line. */
export function parseFileHref(href: string): { path: string; line?: number } {
  const match = /^(.*?)(?:(?::|#L)(\d+))?$/.exec(href)!;
  const line = match[2] === undefined ? undefined : Number(match[2]);
  return { path: match[1]!.replace(/^\.\//, ''), ...(line && line > 0 ? { line } : {}) };
}

/**
 * Wraps the known file references in the text of `root` (outside code blocks and existing
 * links) in `<a class="file-link">` with the path in href and the line in data-line.
 */
export function linkFileReferences(root: ParentNode, known: ReadonlySet<string>): void {
  if (known.size === 0) return;
  const document = (root as Node).ownerDocument ?? (root as Document);
  const walker = document.createTreeWalker(root as Node, 4 /* NodeFilter.SHOW_TEXT */);
  const texts: Text[] = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!(node.parentElement?.closest('pre, a'))) texts.push(node as Text);
  }
  for (const text of texts) {
    const value = text.data;
    const references = findFileReferences(value, known);
    if (references.length === 0) continue;
    const pieces: Node[] = [];
    let at = 0;
    for (const reference of references) {
      if (reference.start > at) pieces.push(document.createTextNode(value.slice(at, reference.start)));
      const link = document.createElement('a');
      link.className = 'file-link';
      link.setAttribute('href', reference.path);
      if (reference.line !== undefined) link.dataset.line = String(reference.line);
      link.title = reference.line === undefined ? `Open ${reference.path}` : `Open ${reference.path} at line ${reference.line}`;
      link.textContent = value.slice(reference.start, reference.end);
      pieces.push(link);
      at = reference.end;
    }
    if (at < value.length) pieces.push(document.createTextNode(value.slice(at)));
    text.replaceWith(...pieces);
  }
}
