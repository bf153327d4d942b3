// The parts of the extension and webview that need no VS Code and no DOM: the status bar's
// states and formatting, which files a link may open, the chart's scale. (The Markdown renderer
// and the chat's DOM are tested under jsdom in chatWebview.test.ts.)

import { describe, expect, it } from 'vitest';
import { formatBytes, formatRatio, statusBarText, statusBarTooltip, statusIsRunning, type EngineStatus } from '../src/extension/statusText';
import { formatCount, formatDuration, plural } from '../src/formatNumbers';
import { emptyStats } from '../src/engine/generate/stats';
import { workspaceFileCandidates } from '../src/extension/workspacePaths';
import { chartPoints } from '../src/webview/cacheChart';

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

  it('formats counts for people', () => {
    expect(formatCount(1234567)).toBe('1,234,567');
    expect(formatCount(12.345, 1)).toBe('12.3');
    expect(formatDuration(850)).toBe('850 ms');
    expect(formatDuration(12_345)).toBe('12.3 s');
    expect(plural(1, 'file')).toBe('1 file');
    expect(plural(2962, 'token')).toBe('2,962 tokens');
  });

  it('shows `KV 1.2 MB · 9.6×` when ready, and a tooltip with every statistic', () => {
    expect(statusBarText({ kind: 'idle' })).toBe('KV –');
    expect(statusBarText({ kind: 'ready', stats: null })).toBe('KV –');
    const stats = { ...emptyStats(512), cacheBytes: 1_200_000, effectiveRatio: 9.6, cacheRows: 100, tokensSeen: 960, compressions: 3 };
    expect(statusBarText({ kind: 'ready', stats })).toBe('KV 1.2 MB · 9.6×');
    const tooltip = statusBarTooltip(stats, '/models/x', { kind: 'ready', stats });
    expect(tooltip).toContain('Cache rows: 100 / 512');
    expect(tooltip).toContain('Compressions: 3');
    expect(tooltip).toContain('Model: /models/x');
    expect(tooltip).toContain('Click for the chat.');
  });

  it('has a state for loading, answering, indexing n/m and an error, and Cancel only while something runs', () => {
    const stats = { ...emptyStats(512), cacheBytes: 2_500_000, effectiveRatio: 8.9, cacheRows: 332 };
    const states: [EngineStatus, string, boolean][] = [
      [{ kind: 'loading', modelDir: '/m' }, '$(loading~spin) KV loading model', true],
      [{ kind: 'answering', stats }, '$(loading~spin) KV 2.5 MB · 8.9× · answering', true],
      [{ kind: 'answering', stats: null }, '$(loading~spin) KV · answering', true],
      [{ kind: 'indexing', done: 3, total: 1200 }, '$(sync~spin) KV indexing 3/1,200', true],
      [{ kind: 'error', message: 'exit code 134' }, '$(error) KV engine stopped', false],
      [{ kind: 'ready', stats }, 'KV 2.5 MB · 8.9×', false],
    ];
    for (const [status, text, running] of states) {
      expect(statusBarText(status)).toBe(text);
      expect(statusIsRunning(status)).toBe(running);
    }
    expect(statusBarTooltip(null, null, { kind: 'error', message: 'exit code 134' })).toBe('The engine stopped: exit code 134\nModel: none loaded\nClick to restart the engine.');
    expect(statusBarTooltip(stats, '/m', { kind: 'indexing', done: 3, total: 40 })).toMatch(/^Reading files into the segment cache: 3 of 40\n[\s\S]*Click to cancel\.$/);
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
  it('puts tokens generated on x and rows on y, capacity at the top', () => {
    expect(chartPoints([], 64)).toBe('');
    expect(chartPoints([{ generated: 0, cacheRows: 0 }, { generated: 100, cacheRows: 64 }, { generated: 200, cacheRows: 32 }], 64)).toBe('0.0,80.0 150.0,0.0 300.0,40.0');
  });
});
