// One turn of the chat thread in the DOM: the question, its context (the files in, each with a
// bar of the rows the cache gave it against the rows stored, and those left out with why), the
// streamed answer as sanitized Markdown with code-block actions and file links, and the
// statistics of the answer. Built with DOM calls only; model text goes through markdown.ts.

import type { ContextFiles, EngineEvent, GenerationStats, ProtocolError } from '../protocol';
import { formatBytes, formatCount, formatDuration, formatRatio, plural } from '../formatNumbers';
import { CacheChart } from './cacheChart';
import { renderMarkdownFragment } from './markdown';
import { linkFileReferences } from './fileReferences';

/** What the turn asks of the host when the user acts on the answer. */
export interface TurnActions {
  copy(text: string): void;
  insert(text: string): void;
}

function element<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class TurnView {
  readonly root = element('article', 'turn');
  private readonly contextDetails = element('details', 'context');
  private readonly progress = element('div', 'progress');
  private readonly answer = element('div', 'answer markdown');
  private readonly statsDetails = element('details', 'stats');
  private chart: CacheChart | undefined;
  private answerText = '';
  private firstStats: GenerationStats | undefined;
  private renderPending = false;
  running = false;

  constructor(
    question: string,
    earlierTurns: number,
    private readonly knownPaths: Set<string>,
    private readonly actions: TurnActions,
  ) {
    const asked = element('div', 'question', question);
    this.root.append(asked);
    if (earlierTurns > 0) this.root.append(element('div', 'follow-up', `Follow-up: the prompt repeats the ${plural(earlierTurns, 'earlier turn')}.`));
    this.contextDetails.hidden = true;
    this.statsDetails.hidden = true;
    this.progress.hidden = true;
    this.root.append(this.contextDetails, this.progress, this.answer, this.statsDetails);
  }

  /** A turn as the conversation kept it (after a reload). */
  static restored(turn: { question: string; answer: string; context?: ContextFiles; stats?: GenerationStats; earlierTurns?: number }, knownPaths: Set<string>, actions: TurnActions): TurnView {
    const view = new TurnView(turn.question, turn.earlierTurns ?? 0, knownPaths, actions);
    if (turn.context) view.showContext(turn.context);
    view.answerText = turn.answer;
    view.renderAnswer();
    if (turn.stats) view.showStats(turn.stats);
    return view;
  }

  start(): void {
    this.running = true;
    this.root.classList.add('running');
    this.showProgress('Reading the workspace…');
  }

  showProgress(text: string): void {
    this.progress.textContent = text;
    this.progress.hidden = false;
  }

  /** The files in the question's context with their rows, and those left out. */
  showContext(context: ContextFiles): void {
    for (const file of [...context.included, ...context.skipped]) this.knownPaths.add(file.path);
    const tokens = context.included.reduce((sum, f) => sum + f.tokens, 0);
    const summary = element('summary', undefined, `Context: ${plural(context.included.length, 'file')}, ${formatCount(tokens)} tokens; ${formatCount(context.skipped.length)} left out`);
    const included = element('ul', 'files');
    for (const file of context.included) {
      const item = element('li');
      const link = fileLink(file.path);
      const detail = file.rows === undefined ? `${formatCount(file.tokens)} tokens` : `${formatCount(file.tokens)} tokens, ${formatCount(file.rows)} of ${formatCount(file.storedRows ?? file.rows)} rows${file.rows === file.storedRows ? ' (full resolution)' : ''}`;
      item.append(link, ` — ${detail}`);
      if (file.rows !== undefined && file.storedRows) item.append(bar(file.rows, file.storedRows, `${formatCount(file.rows)} of ${formatCount(file.storedRows)} stored rows`));
      included.append(item);
    }
    const parts: HTMLElement[] = [summary, element('h4', undefined, 'Included'), included];
    if (context.skipped.length > 0) {
      const skipped = element('ul', 'files skipped');
      for (const file of context.skipped) {
        const item = element('li');
        item.append(fileLink(file.path), ` — ${file.reason}`);
        skipped.append(item);
      }
      parts.push(element('h4', undefined, 'Left out'), skipped);
    }
    this.contextDetails.replaceChildren(...parts);
    this.contextDetails.hidden = false;
    if (!this.running) this.renderAnswer();
  }

  onEvent(event: EngineEvent): void {
    if (event.kind === 'segments') {
      this.showProgress(`Reading files into the segment cache: ${formatCount(event.filesDone)} of ${formatCount(event.filesTotal)} (${formatCount(event.built)} prefilled, ${formatCount(event.tokensPrefilled)} tokens)…`);
      return;
    }
    if (event.kind === 'prefill') {
      this.showProgress(`Reading the prompt: ${formatCount(event.tokensDone)} of ${formatCount(event.tokensTotal)} tokens…`);
      this.addPoint(event.stats);
      return;
    }
    this.progress.hidden = true;
    this.addPoint(event.stats);
    if (event.kind === 'token') {
      this.answerText += event.text;
      this.scheduleRender();
      return;
    }
    this.answerText = event.text;
    this.finish();
    this.renderAnswer();
    this.showStats(event.stats);
  }

  fail(error: ProtocolError): void {
    this.progress.hidden = true;
    this.root.append(element('div', 'error', `${error.name}: ${error.message}`));
    this.finish();
  }

  private finish(): void {
    this.running = false;
    this.root.classList.remove('running');
  }

  private addPoint(stats: GenerationStats): void {
    if (stats.cacheRows === 0) return;
    if (!this.firstStats && stats.generatedTokens > 0) this.firstStats = stats;
    if (!this.chart) this.chart = new CacheChart();
    this.chart.add({ generated: stats.generatedTokens, cacheRows: stats.cacheRows }, stats.cacheCapacity);
  }

  /** Re-renders at most once a frame while tokens stream in. */
  private scheduleRender(): void {
    if (this.renderPending) return;
    this.renderPending = true;
    requestAnimationFrame(() => {
      this.renderPending = false;
      this.renderAnswer();
    });
  }

  private renderAnswer(): void {
    const fragment = renderMarkdownFragment(this.answerText);
    linkFileReferences(fragment, this.knownPaths);
    for (const code of Array.from(fragment.querySelectorAll('pre > code'))) this.addCodeActions(code as HTMLElement);
    this.answer.replaceChildren(fragment);
  }

  /** Copy and Insert at Cursor above each fenced code block, and its language. */
  private addCodeActions(code: HTMLElement): void {
    const pre = code.parentElement!;
    const bar = element('div', 'code-actions');
    const language = /language-([\w+#.-]+)/.exec(code.className)?.[1];
    bar.append(element('span', 'code-language', language ?? ''));
    const copy = element('button', 'code-copy', 'Copy');
    copy.type = 'button';
    copy.title = 'Copy the code to the clipboard';
    copy.addEventListener('click', () => {
      this.actions.copy(code.textContent ?? '');
      copy.textContent = 'Copied';
      setTimeout(() => (copy.textContent = 'Copy'), 1500);
    });
    const insert = element('button', 'code-insert', 'Insert at cursor');
    insert.type = 'button';
    insert.title = 'Insert the code at the cursor of the last active editor';
    insert.addEventListener('click', () => this.actions.insert(code.textContent ?? ''));
    bar.append(copy, insert);
    const block = element('div', 'code-block');
    pre.replaceWith(block);
    block.append(bar, pre);
  }

  /**
   * The answer's statistics: a one-line summary (rows, bytes, ratio, speed), and on opening,
   * how the cache grew over the answer (rows and bytes at its first and last token), the
   * table, and the chart of rows against tokens generated.
   */
  private showStats(stats: GenerationStats): void {
    const summary = element('summary', undefined, statsSummary(stats));
    const table = element('table', 'stats-table');
    const first = this.firstStats;
    const rows: [string, string][] = [
      ['Cache rows', first && first !== stats ? `${formatCount(first.cacheRows)} → ${formatCount(stats.cacheRows)} of ${formatCount(stats.cacheCapacity)}` : `${formatCount(stats.cacheRows)} of ${formatCount(stats.cacheCapacity)}`],
      ['Cache bytes', first && first !== stats ? `${formatBytes(first.cacheBytes)} → ${formatBytes(stats.cacheBytes)}` : formatBytes(stats.cacheBytes)],
      ['Effective ratio', `${formatRatio(stats.effectiveRatio)} (tokens seen per cache row)`],
      ['Tokens seen', `${formatCount(stats.tokensSeen)} (${formatCount(stats.promptTokens)} prompt, ${formatCount(stats.generatedTokens)} generated)`],
      ['Compressions', `${formatCount(stats.compressions)} (${formatDuration(stats.compressMs)})`],
      ['Time to first token', formatDuration(stats.timeToFirstTokenMs)],
      ['Prefill', `${formatCount(stats.prefillTokensPerSecond)} tokens/s`],
      ['Decode', `${formatCount(stats.decodeTokensPerSecond, 1)} tokens/s`],
    ];
    for (const [label, value] of rows) {
      const tr = element('tr');
      tr.append(element('th', undefined, label), element('td', undefined, value));
      table.append(tr);
    }
    const parts: Element[] = [summary, table];
    if (this.chart && this.chart.size > 1) parts.push(element('div', 'chart-title', 'Cache rows over the answer (dashed: capacity)'), this.chart.svg);
    this.statsDetails.replaceChildren(...parts);
    this.statsDetails.hidden = false;
  }
}

/** "372 rows · 1.3 MB · 8.1× · 12.3 tokens/s". */
export function statsSummary(stats: GenerationStats): string {
  return `${formatCount(stats.cacheRows)} rows · ${formatBytes(stats.cacheBytes)} · ${formatRatio(stats.effectiveRatio)} · ${formatCount(stats.decodeTokensPerSecond, 1)} tokens/s`;
}

function fileLink(path: string): HTMLAnchorElement {
  const link = element('a', 'file-link', path);
  link.setAttribute('href', path);
  link.title = `Open ${path}`;
  return link;
}

/** A bar of `value` against `max` (width set through the CSSOM, which the CSP allows). */
function bar(value: number, max: number, label: string): HTMLElement {
  const outer = element('span', 'bar');
  outer.setAttribute('role', 'meter');
  outer.setAttribute('aria-valuemin', '0');
  outer.setAttribute('aria-valuemax', String(max));
  outer.setAttribute('aria-valuenow', String(value));
  outer.setAttribute('aria-label', label);
  outer.title = label;
  const inner = element('span', 'bar-fill');
  inner.style.width = `${Math.max(1, Math.min(100, (value / max) * 100)).toFixed(1)}%`;
  outer.append(inner);
  return outer;
}
