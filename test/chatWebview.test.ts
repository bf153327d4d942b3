// @vitest-environment jsdom
// The chat's rendering of model output, in a DOM (jsdom): markdown-it + DOMPurify on hostile
// output, the Markdown a chat needs, file references becoming links, and a turn's code-block
// actions and context bars. The same code runs in the webview; the e2e test shows it inert
// under the webview's CSP in a real browser.

import { describe, expect, it } from 'vitest';
import { renderMarkdown, renderMarkdownFragment } from '../src/webview/markdown';
import { findFileReferences, linkFileReferences, parseFileHref } from '../src/webview/fileReferences';
import { TurnView } from '../src/webview/turnView';
import { emptyStats } from '../src/engine/generate/stats';

/** Every element and attribute a rendered fragment may hold; anything else is a failure. */
const ALLOWED = new Set(['P', 'BR', 'HR', 'H1', 'H2', 'H3', 'H4', 'H5', 'H6', 'STRONG', 'EM', 'S', 'CODE', 'PRE', 'BLOCKQUOTE', 'UL', 'OL', 'LI', 'A', 'TABLE', 'THEAD', 'TBODY', 'TR', 'TH', 'TD']);

function assertInert(fragment: DocumentFragment): void {
  for (const node of Array.from(fragment.querySelectorAll('*'))) {
    expect(ALLOWED.has(node.tagName), `<${node.tagName.toLowerCase()}> survived`).toBe(true);
    for (const attribute of Array.from(node.attributes)) {
      expect(['href', 'class', 'start'], `${attribute.name} on <${node.tagName.toLowerCase()}>`).toContain(attribute.name);
      if (attribute.name === 'href') expect(attribute.value).toMatch(/^(https?:\/\/|(?![a-z][a-z0-9+.-]*:|\/\/)[\w./#:-])/i);
      if (attribute.name === 'class') expect(attribute.value).toMatch(/^language-[\w+#.-]+$/);
    }
  }
}

describe('renderMarkdown (markdown-it with html: false, then DOMPurify) keeps hostile output inert', () => {
  const hostile: [string, string][] = [
    ['script', '<script>window.pwned = 1</script>'],
    ['script in a list', '- <script src="https://evil.example/x.js"></script>'],
    ['event handler on an image', '<img src=x onerror="window.pwned = 1">'],
    ['event handler in a heading', '# <b onmouseover="x()">title</b>'],
    ['javascript: in raw HTML', '<a href="javascript:alert(1)">x</a>'],
    ['javascript: link', '[click](javascript:alert(1))'],
    ['javascript: link, mixed case and entities', '[click](JaVaScRiPt&#58;alert(1))'],
    ['vbscript: link', '[click](vbscript:msgbox(1))'],
    ['data: link', '[data](data:text/html;base64,PHNjcmlwdD4=)'],
    ['protocol-relative link', '[proto](//evil.example/x)'],
    ['file: link', '[f](file:///etc/passwd)'],
    ['command: link', '[c](command:workbench.action.terminal.new)'],
    ['autolink javascript', '<javascript:alert(1)>'],
    ['image (a request the answer chooses)', '![x](https://evil.example/track.png)'],
    ['SVG with onload', '**<svg onload=alert(1)><circle r=5></circle></svg>**'],
    ['SVG use of a remote file', '<svg><use href="https://evil.example/s.svg#a"/></svg>'],
    ['MathML', '<math><mtext><img src=x onerror=alert(1)></mtext></math>'],
    ['iframe', '<iframe src="https://evil.example"></iframe>'],
    ['iframe srcdoc in inline code', '`<iframe srcdoc="<script>">`'],
    ['object and embed', '<object data="x.swf"></object><embed src="x.swf">'],
    ['style element', '- <style>body{background:url(https://evil.example/x)}</style>'],
    ['style attribute', '<p style="background:url(https://evil.example/x)">x</p>'],
    ['link and meta', '<link rel=stylesheet href="https://evil.example/x.css"><meta http-equiv="refresh" content="0;url=https://evil.example">'],
    ['form', '<form action="https://evil.example"><button>go</button></form>'],
    ['quote breaking out of an href', '[x](https://ok.example/" onclick="alert(1))'],
    ['a code fence of HTML', '```html\n<script>alert(1)</script>\n```'],
    ['a fence language that tries to be an attribute', '```ts" onclick="alert(1)\ncode\n```'],
  ];
  for (const [name, input] of hostile) {
    it(name, () => {
      const fragment = renderMarkdownFragment(input);
      assertInert(fragment);
      // Put in a live document: nothing it holds runs or loads.
      const host = document.createElement('div');
      host.append(fragment);
      document.body.append(host);
      expect((window as unknown as { pwned?: number }).pwned).toBeUndefined();
      expect(host.querySelector('script, img, svg, math, iframe, object, embed, style, link, meta, form, [style], [onerror], [onclick], [onload]')).toBeNull();
      host.remove();
    });
  }

  it('shows raw HTML as text (the reader sees what the model wrote)', () => {
    expect(renderMarkdown('<script>alert(1)</script>')).toBe('<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n');
    expect(renderMarkdown('[bad](javascript:alert(1))')).toBe('<p>[bad](javascript:alert(1))</p>\n');
  });

  it('renders headings, numbered and nested lists, tables, inline code and fenced code with its language', () => {
    expect(renderMarkdown('## Title')).toBe('<h2>Title</h2>\n');
    expect(renderMarkdown('a **b** *c* `d<e>`')).toBe('<p>a <strong>b</strong> <em>c</em> <code>d&lt;e&gt;</code></p>\n');
    expect(renderMarkdown('3. three\n4. four\n   - nested\n')).toBe('<ol start="3">\n<li>three</li>\n<li>four\n<ul>\n<li>nested</li>\n</ul>\n</li>\n</ol>\n');
    expect(renderMarkdown('| a | b |\n| - | - |\n| 1 | 2 |')).toBe('<table>\n<thead>\n<tr>\n<th>a</th>\n<th>b</th>\n</tr>\n</thead>\n<tbody>\n<tr>\n<td>1</td>\n<td>2</td>\n</tr>\n</tbody>\n</table>\n');
    expect(renderMarkdown('```ts\nconst a = 1 < 2;\n```')).toBe('<pre><code class="language-ts">const a = 1 &lt; 2;\n</code></pre>\n');
    expect(renderMarkdown('[docs](https://example.com/a?b=1&c=2)')).toBe('<p><a href="https://example.com/a?b=1&amp;c=2">docs</a></p>\n');
    expect(renderMarkdown('see [engine](src/engine/engine.ts:12)')).toBe('<p>see <a href="src/engine/engine.ts:12">engine</a></p>\n');
  });
});

describe('file references in answers', () => {
  const known = new Set(['src/lamp.ts', 'src/engine/engine.ts', 'README.md', 'test/engine.test.ts']);

  it('finds known paths, with a line, and a unique file name', () => {
    expect(findFileReferences('See src/lamp.ts:2 and README.md.', known)).toEqual([
      { start: 4, end: 17, path: 'src/lamp.ts', line: 2 },
      { start: 22, end: 31, path: 'README.md' },
    ]);
    expect(findFileReferences('in lamp.ts#L3', known)).toEqual([{ start: 3, end: 13, path: 'src/lamp.ts', line: 3 }]);
    // engine.ts is unique; a path the workspace does not have is no link.
    expect(findFileReferences('engine.ts and src/other.ts', known).map((r) => r.path)).toEqual(['src/engine/engine.ts']);
    expect(findFileReferences('e.g. 3.5 or v1.2', known)).toEqual([]);
  });

  it('links text and inline code, not fenced code or existing links', () => {
    const fragment = renderMarkdownFragment('Open `src/lamp.ts:2`, not [this](https://x.example/src/lamp.ts).\n\n```\nsrc/lamp.ts\n```');
    linkFileReferences(fragment, known);
    const links = Array.from(fragment.querySelectorAll('a.file-link'));
    expect(links.map((a) => [a.getAttribute('href'), (a as HTMLElement).dataset.line, a.textContent])).toEqual([['src/lamp.ts', '2', 'src/lamp.ts:2']]);
    expect(fragment.querySelector('pre a')).toBeNull();
  });

  it('reads a line from an href the answer wrote', () => {
    expect(parseFileHref('src/x.ts:42')).toEqual({ path: 'src/x.ts', line: 42 });
    expect(parseFileHref('./src/x.ts#L7')).toEqual({ path: 'src/x.ts', line: 7 });
    expect(parseFileHref('src/x.ts')).toEqual({ path: 'src/x.ts' });
  });
});

describe('a turn of the chat', () => {
  it('streams an answer, gives each code block Copy and Insert, links files, and shows a bar per file', () => {
    const copied: string[] = [];
    const inserted: string[] = [];
    const turn = new TurnView('What does lightTheLamp return?', 1, new Set(), { copy: (t) => copied.push(t), insert: (t) => inserted.push(t) });
    document.body.append(turn.root);
    turn.start();
    turn.showContext({
      included: [
        { path: 'long-story.md', tokens: 2962, rows: 332, storedRows: 442 },
        { path: 'src/lamp.ts', tokens: 30, rows: 30, storedRows: 30 },
      ],
      skipped: [{ path: 'logo.png', reason: 'binary' }],
    });
    const stats = { ...emptyStats(512), cacheRows: 372, cacheBytes: 1_234_567, tokensSeen: 3002, effectiveRatio: 8.07, generatedTokens: 40, decodeTokensPerSecond: 12.34 };
    const text = 'It returns a string, see src/lamp.ts:2:\n\n```ts\nreturn `${keeper} lit the lamp`;\n```\n';
    turn.onEvent({ kind: 'token', text: 'It returns', stats });
    turn.onEvent({ kind: 'done', reason: 'eos', text, stats });
    expect(turn.running).toBe(false);
    expect(turn.root.querySelector('.follow-up')!.textContent).toBe('Follow-up: the prompt repeats the 1 earlier turn.');
    expect(turn.root.querySelector('details.context summary')!.textContent).toBe('Context: 2 files, 2,992 tokens; 1 left out');
    expect(turn.root.querySelector('details.context li')!.textContent).toBe('long-story.md — 2,962 tokens, 332 of 442 rows');
    const bars = Array.from(turn.root.querySelectorAll<HTMLElement>('.bar-fill')).map((b) => b.style.width);
    expect(bars).toEqual(['75.1%', '100%']);
    const link = turn.root.querySelector<HTMLAnchorElement>('.answer a.file-link')!;
    expect([link.getAttribute('href'), link.dataset.line]).toEqual(['src/lamp.ts', '2']);
    expect(turn.root.querySelector('.code-language')!.textContent).toBe('ts');
    turn.root.querySelector<HTMLButtonElement>('.code-copy')!.click();
    turn.root.querySelector<HTMLButtonElement>('.code-insert')!.click();
    expect(copied).toEqual(['return `${keeper} lit the lamp`;\n']);
    expect(inserted).toEqual(copied);
    expect(turn.root.querySelector('details.stats summary')!.textContent).toBe('372 rows · 1.2 MB · 8.1× · 12.3 tokens/s');
    turn.root.remove();
  });

  it('shows a failure in the turn it belongs to', () => {
    const turn = new TurnView('q', 0, new Set(), { copy: () => undefined, insert: () => undefined });
    turn.start();
    turn.fail({ name: 'EngineBusyError', message: 'busy' });
    expect(turn.running).toBe(false);
    expect(turn.root.querySelector('.error')!.textContent).toBe('EngineBusyError: busy');
  });
});
