// A small Markdown renderer for model output in the webview. Model text never becomes markup
// by itself: the whole input is HTML-escaped first, and only the constructs below add tags
// (fenced code, inline code, headings, bold, italic, lists, paragraphs, links). Link targets
// are kept only when they are http(s) URLs or plain relative paths, so `javascript:` and
// `data:` never reach an href. The webview's CSP (no inline script) is the second wall.
// A fuller renderer (e.g. markdown-it with html: false, plus DOMPurify) can replace this file.

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** A link target that is safe in an href, or undefined. `url` is already HTML-escaped. */
export function safeHref(url: string): string | undefined {
  const raw = url.trim();
  if (/^https?:\/\//i.test(raw)) return raw;
  // A relative path (a workspace file): no scheme, no protocol-relative //host.
  if (!/^[a-z][a-z0-9+.-]*:/i.test(raw) && !raw.startsWith('//') && /^[\w./#-]+$/.test(raw.replace(/&amp;/g, '&'))) return raw;
  return undefined;
}

function renderInline(escaped: string): string {
  // Inline code first, so its contents are not formatted further.
  const codes: string[] = [];
  let text = escaped.replace(/`([^`]+)`/g, (_match, code: string) => {
    codes.push(`<code>${code}</code>`);
    return `\u0000${codes.length - 1}\u0000`;
  });
  text = text.replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (_match, label: string, url: string) => {
    const href = safeHref(url);
    return href === undefined ? label : `<a href="${href}">${label}</a>`;
  });
  text = text.replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>');
  text = text.replace(/(^|[^*])\*([^*\s][^*]*)\*/g, '$1<em>$2</em>');
  return text.replace(/\u0000(\d+)\u0000/g, (_match, index: string) => codes[Number(index)] ?? '');
}

/** Markdown → HTML that contains no tag or attribute the input could choose. */
export function renderMarkdown(markdown: string): string {
  const lines = escapeHtml(markdown.replace(/\u0000/g, '')).split(/\r?\n/);
  const out: string[] = [];
  let paragraph: string[] = [];
  let list: string[] = [];
  const flush = (): void => {
    if (paragraph.length > 0) out.push(`<p>${renderInline(paragraph.join('\n'))}</p>`);
    if (list.length > 0) out.push(`<ul>${list.map((item) => `<li>${renderInline(item)}</li>`).join('')}</ul>`);
    paragraph = [];
    list = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const fence = /^```\s*([\w+-]*)\s*$/.exec(line);
    if (fence) {
      flush();
      const code: string[] = [];
      for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) code.push(lines[i]!);
      const language = fence[1] ? ` class="language-${fence[1]}"` : '';
      out.push(`<pre><code${language}>${code.join('\n')}</code></pre>`);
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      flush();
      const level = heading[1]!.length;
      out.push(`<h${level}>${renderInline(heading[2]!)}</h${level}>`);
      continue;
    }
    const item = /^\s*[-*]\s+(.*)$/.exec(line);
    if (item) {
      if (paragraph.length > 0) flush();
      list.push(item[1]!);
      continue;
    }
    if (line.trim() === '') {
      flush();
      continue;
    }
    if (list.length > 0) flush();
    paragraph.push(line);
  }
  flush();
  return out.join('\n');
}
