// The status bar's words for the cache statistics: `KV 1.2 MB · 9.6×`. No vscode import, so
// the formatting is tested in plain node. Bytes use decimal units (1 MB = 10^6 bytes).

import type { GenerationStats } from '../engine/generate/stats';
import type { IndexStatus } from '../protocol';

export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '? B';
  if (bytes < 1000) return `${Math.round(bytes)} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 999.95 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

export function formatRatio(ratio: number): string {
  if (!Number.isFinite(ratio) || ratio <= 0) return '–×';
  return `${ratio.toFixed(1)}×`;
}

/** The status bar item's text; `null` before the first generation. */
export function statusBarText(stats: GenerationStats | null): string {
  if (!stats) return 'KV –';
  return `KV ${formatBytes(stats.cacheBytes)} · ${formatRatio(stats.effectiveRatio)}`;
}

/** The tooltip: every statistic, one per line, with the names the other layers use. */
export function statusBarTooltip(stats: GenerationStats | null, modelDir: string | null): string {
  const model = `Model: ${modelDir ?? 'none loaded'}`;
  if (!stats) return `${model}\nNo generation yet. Click for the cache statistics.`;
  return [
    model,
    `Cache rows: ${stats.cacheRows} / ${stats.cacheCapacity}`,
    `Cache bytes: ${formatBytes(stats.cacheBytes)}`,
    `Compressions: ${stats.compressions} (${stats.compressMs.toFixed(0)} ms)`,
    `Effective ratio (tokens seen / rows): ${formatRatio(stats.effectiveRatio)}`,
    `Tokens seen: ${stats.tokensSeen} (prompt ${stats.promptTokens}, generated ${stats.generatedTokens})`,
    `Prefill: ${stats.prefillTokensPerSecond.toFixed(0)} tokens/s · decode: ${stats.decodeTokensPerSecond.toFixed(1)} tokens/s`,
    `Time to first token: ${stats.timeToFirstTokenMs.toFixed(0)} ms`,
    'Click for the cache statistics.',
  ].join('\n');
}

/** Background indexing in the status bar: `Indexing 120/880 files · 14 %`. */
export function indexingStatusText(status: IndexStatus): string {
  const files = `${status.filesDone}/${status.filesTotal} files · ${status.percent} %`;
  switch (status.state) {
    case 'indexing':
      return `$(sync~spin) Indexing ${files}`;
    case 'paused':
      return `Indexed ${files} (paused)`;
    case 'done':
      return `Indexed ${status.filesTotal} files`;
    default:
      return 'Indexing failed';
  }
}

/** The tooltip line for the index: files, tokens, speed and why it stopped. */
export function indexingTooltip(status: IndexStatus): string {
  const speed = status.state === 'indexing' && status.tokensPerSecond > 0 ? `, ${status.tokensPerSecond.toFixed(0)} tokens/s` : '';
  const why = status.message ? `\n${status.message}` : '';
  return `Workspace index: ${status.filesDone}/${status.filesTotal} files, ${status.tokensDone.toLocaleString('en-US')}/${status.tokensTotal.toLocaleString('en-US')} tokens (${status.percent} %)${speed}; ${status.state}.${why}`;
}
