// The parts of the extension and webview that need no VS Code: the Markdown renderer on
// hostile model output, the status bar's formatting, which files a link may open, the chart.

import { describe, expect, it } from 'vitest';
import { renderMarkdown } from '../src/webview/markdown';
import { formatBytes, formatRatio, statusBarText, statusBarTooltip } from '../src/extension/statusText';
import { emptyStats } from '../src/engine/generate/stats';
import { workspaceFileCandidates } from '../src/extension/workspacePaths';
import { chartPoints } from '../src/webview/cacheChart';

describe('renderMarkdown never lets model output become active markup', () => {
  const hostile = [
    '<script>alert(1)</script>',
    '<img src=x onerror=alert(1)>',
    '<a href="javascript:alert(1)">x</a>',
    '[click](javascript:alert(1))',
    '[click](JaVaScRiPt:alert(1))',
    '[data](data:text/html;base64,PHNjcmlwdD4=)',
    '[proto](//evil.example/x)',
    '**<svg onload=alert(1)>**',
    '```html\n<script>alert(1)</script>\n```',
    '`<iframe srcdoc="<script>">`',
    '# <b onmouseover="x()">title</b>',
    '- <style>body{}</style>',
    '[x](https://ok.example/" onclick="alert(1))',
  ];
  for (const input of hostile) {
    it(JSON.stringify(input), () => {
      const html = renderMarkdown(input);
      // Every tag in the output is one the renderer writes, with only its own attributes;
      // the input's tags survive only as escaped text (&lt;script&gt;), which is inert.
      for (const tag of html.match(/<[^>]*>/g) ?? []) {
        expect(tag).toMatch(/^<\/?(p|h[1-6]|strong|em|code|pre|ul|li|a)( class="language-[\w+-]+"| href="(https?:\/\/|[\w.])[^"]*")?>$/);
      }
      expect(html).not.toMatch(/<(script|img|svg|iframe|style|b)[\s>]/i);
      expect(html).not.toMatch(/href="\s*(javascript|data):/i);
    });
  }

  it('renders the supported Markdown', () => {
    expect(renderMarkdown('# Title')).toBe('<h1>Title</h1>');
    expect(renderMarkdown('a **b** *c* `d<e>`')).toBe('<p>a <strong>b</strong> <em>c</em> <code>d&lt;e&gt;</code></p>');
    expect(renderMarkdown('- one\n- two')).toBe('<ul><li>one</li><li>two</li></ul>');
    expect(renderMarkdown('```ts\nconst a = 1 < 2;\n```')).toBe('<pre><code class="language-ts">const a = 1 &lt; 2;</code></pre>');
    expect(renderMarkdown('[docs](https://example.com/a?b=1&c=2)')).toBe('<p><a href="https://example.com/a?b=1&amp;c=2">docs</a></p>');
    expect(renderMarkdown('see [engine](src/engine/engine.ts)')).toBe('<p>see <a href="src/engine/engine.ts">engine</a></p>');
    expect(renderMarkdown('[bad](javascript:alert(1))')).toBe('<p>bad)</p>');
  });
});

describe('status bar text', () => {
  it('formats bytes and ratios', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1_000)).toBe('1.0 kB');
    expect(formatBytes(1_234_567)).toBe('1.2 MB');
    expect(formatBytes(999_990)).toBe('1.0 MB');
    expect(formatBytes(3.5e9)).toBe('3.5 GB');
    expect(formatBytes(Number.NaN)).toBe('? B');
    expect(formatRatio(9.63)).toBe('9.6×');
    expect(formatRatio(0)).toBe('–×');
  });

  it('shows `KV 1.2 MB · 9.6×` and a tooltip with every statistic', () => {
    expect(statusBarText(null)).toBe('KV –');
    const stats = { ...emptyStats(512), cacheBytes: 1_200_000, effectiveRatio: 9.6, cacheRows: 100, tokensSeen: 960, compressions: 3 };
    expect(statusBarText(stats)).toBe('KV 1.2 MB · 9.6×');
    const tooltip = statusBarTooltip(stats, '/models/x');
    expect(tooltip).toContain('Cache rows: 100 / 512');
    expect(tooltip).toContain('Compressions: 3');
    expect(tooltip).toContain('Model: /models/x');
  });
});

describe('workspaceFileCandidates (links in answers open only workspace files)', () => {
  it('resolves relative paths inside the folders and refuses escapes', () => {
    expect(workspaceFileCandidates('src/a.ts', ['/w'])).toEqual(['/w/src/a.ts']);
    expect(workspaceFileCandidates('./src/a.ts#L3', ['/w', '/v'])).toEqual(['/w/src/a.ts', '/v/src/a.ts']);
    expect(workspaceFileCandidates('../etc/passwd', ['/w'])).toEqual([]);
    expect(workspaceFileCandidates('src/../../x', ['/w'])).toEqual([]);
    expect(workspaceFileCandidates('/etc/passwd', ['/w'])).toEqual([]);
    expect(workspaceFileCandidates('', ['/w'])).toEqual([]);
  });
});

describe('chartPoints (the cache chart)', () => {
  it('puts tokens seen on x and rows on y, capacity at the top', () => {
    expect(chartPoints([], 64)).toBe('');
    expect(chartPoints([{ tokensSeen: 0, cacheRows: 0 }, { tokensSeen: 100, cacheRows: 64 }, { tokensSeen: 200, cacheRows: 32 }], 64)).toBe('0.0,80.0 150.0,0.0 300.0,40.0');
  });
});
