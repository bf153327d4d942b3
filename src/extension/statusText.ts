// The status bar item's words in each state of the engine, and its tooltip. No vscode import,
// so the formatting is tested in plain node. Codicons are written as `$(name)`.

import type { GenerationStats } from '../engine/generate/stats';
import { formatBytes, formatCount, formatRatio } from '../formatNumbers';
import type { IndexStatus } from '../protocol';

export { formatBytes, formatRatio };

/** What the engine is doing, as the status bar shows it. */
export type EngineStatus =
  /** Nothing loaded yet (the extension is active, no question asked). */
  | { kind: 'idle' }
  | { kind: 'loading'; modelDir: string }
  /** A model is loaded; `stats` are the last generation's, if any. */
  | { kind: 'ready'; stats: GenerationStats | null }
  | { kind: 'answering'; stats: GenerationStats | null }
  /** Files are being read into the segment cache: `done` of `total`. */
  | { kind: 'indexing'; done: number; total: number }
  | { kind: 'error'; message: string };

/** Whether Cancel has something to stop in this state. */
export function statusIsRunning(status: EngineStatus): boolean {
  return status.kind === 'loading' || status.kind === 'answering' || status.kind === 'indexing';
}

function cacheText(stats: GenerationStats): string {
  return `KV ${formatBytes(stats.cacheBytes)} · ${formatRatio(stats.effectiveRatio)}`;
}

/** The status bar item's text: `KV 1.2 MB · 9.6×` when ready, a spinner while something runs. */
export function statusBarText(status: EngineStatus): string {
  switch (status.kind) {
    case 'idle':
      return 'KV –';
    case 'loading':
      return '$(loading~spin) KV loading model';
    case 'ready':
      return status.stats ? cacheText(status.stats) : 'KV –';
    case 'answering':
      return `$(loading~spin) ${status.stats && status.stats.cacheRows > 0 ? cacheText(status.stats) : 'KV'} · answering`;
    case 'indexing':
      return `$(sync~spin) KV indexing ${formatCount(status.done)}/${formatCount(status.total)}`;
    case 'error':
      return '$(error) KV engine stopped';
  }
}

/** The tooltip: the state, then every statistic, one per line, with the names the other layers use. */
export function statusBarTooltip(stats: GenerationStats | null, modelDir: string | null, status?: EngineStatus): string {
  const model = `Model: ${modelDir ?? 'none loaded'}`;
  const state = status ? stateLine(status) : undefined;
  const head = state ? [state, model] : [model];
  if (!stats) return [...head, status?.kind === 'error' ? 'Click to restart the engine.' : 'No generation yet. Click for the chat.'].join('\n');
  return [
    ...head,
    `Cache rows: ${formatCount(stats.cacheRows)} / ${formatCount(stats.cacheCapacity)}`,
    `Cache bytes: ${formatBytes(stats.cacheBytes)}`,
    `Compressions: ${formatCount(stats.compressions)} (${formatCount(stats.compressMs)} ms)`,
    `Effective ratio (tokens seen / rows): ${formatRatio(stats.effectiveRatio)}`,
    `Tokens seen: ${formatCount(stats.tokensSeen)} (prompt ${formatCount(stats.promptTokens)}, generated ${formatCount(stats.generatedTokens)})`,
    `Prefill: ${formatCount(stats.prefillTokensPerSecond)} tokens/s · decode: ${formatCount(stats.decodeTokensPerSecond, 1)} tokens/s`,
    `Time to first token: ${formatCount(stats.timeToFirstTokenMs)} ms`,
    status && statusIsRunning(status) ? 'Click to cancel.' : status?.kind === 'error' ? 'Click to restart the engine.' : 'Click for the chat.',
  ].join('\n');
}

function stateLine(status: EngineStatus): string | undefined {
  switch (status.kind) {
    case 'loading':
      return `Loading the model from ${status.modelDir}…`;
    case 'answering':
      return 'Answering…';
    case 'indexing':
      return `Reading files into the segment cache: ${formatCount(status.done)} of ${formatCount(status.total)}`;
    case 'error':
      return `The engine stopped: ${status.message}`;
    default:
      return undefined;
  }
}

/** The tooltip line for the index: files, tokens, speed and why it stopped. */
export function indexingTooltip(status: IndexStatus): string {
  const speed = status.state === 'indexing' && status.tokensPerSecond > 0 ? `, ${status.tokensPerSecond.toFixed(0)} tokens/s` : '';
  const why = status.message ? `\n${status.message}` : '';
  return `Workspace index: ${status.filesDone}/${status.filesTotal} files, ${status.tokensDone.toLocaleString('en-US')}/${status.tokensTotal.toLocaleString('en-US')} tokens (${status.percent} %)${speed}; ${status.state}.${why}`;
}
