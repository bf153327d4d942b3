// The webview's script (bundled for the browser into dist/webview.js). DOM only: it renders
// the protocol's HostToWebview messages and posts WebviewToHost messages. Model output goes
// through renderMarkdown, which escapes HTML before adding its own few tags.

import type { GenerationStats, HostToWebviewMessage, IncludedFileInfo, WebviewToHostMessage } from '../protocol';
import { CacheChart } from './cacheChart';
import { renderMarkdown } from './markdown';

interface VsCodeApi {
  postMessage(message: WebviewToHostMessage): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const byId = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const form = byId<HTMLFormElement>('ask-form');
const question = byId<HTMLTextAreaElement>('question');
const cancel = byId<HTMLButtonElement>('cancel');
const ask = byId<HTMLButtonElement>('ask');
const conversation = byId<HTMLDivElement>('conversation');
const statsList = byId<HTMLDListElement>('stats');
const notice = byId<HTMLDivElement>('notice');
const filesSection = byId<HTMLDetailsElement>('files');
const chart = new CacheChart(byId<HTMLDivElement>('chart'));

let answerText = '';
let answerElement: HTMLDivElement | undefined;

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = question.value.trim();
  if (text) vscode.postMessage({ type: 'ask', question: text });
});
// Links in answers and in the file lists: http(s) ones VS Code opens itself; relative ones name workspace files.
const openLinkedFile = (event: MouseEvent): void => {
  const link = (event.target as HTMLElement).closest('a');
  const href = link?.getAttribute('href');
  if (!href || /^https?:/i.test(href)) return;
  event.preventDefault();
  vscode.postMessage({ type: 'openFile', path: href });
};
conversation.addEventListener('click', openLinkedFile);
filesSection.addEventListener('click', openLinkedFile);
cancel.addEventListener('click', () => vscode.postMessage({ type: 'cancel' }));
byId<HTMLButtonElement>('clear').addEventListener('click', () => vscode.postMessage({ type: 'clearCache' }));

function setRunning(running: boolean): void {
  cancel.disabled = !running;
  ask.disabled = running;
}

const STAT_ROWS: [string, (s: GenerationStats) => string][] = [
  ['Cache rows', (s) => `${s.cacheRows} / ${s.cacheCapacity}`],
  ['Cache bytes', (s) => `${s.cacheBytes.toLocaleString()} B`],
  ['Compressions', (s) => `${s.compressions} (${s.compressMs.toFixed(0)} ms)`],
  ['Effective ratio', (s) => `${s.effectiveRatio.toFixed(2)}×`],
  ['Tokens seen', (s) => `${s.tokensSeen} (prompt ${s.promptTokens}, generated ${s.generatedTokens})`],
  ['Prefill', (s) => `${s.prefillTokensPerSecond.toFixed(0)} tokens/s`],
  ['Decode', (s) => `${s.decodeTokensPerSecond.toFixed(1)} tokens/s`],
  ['Time to first token', (s) => `${s.timeToFirstTokenMs.toFixed(0)} ms`],
];

function showStats(stats: GenerationStats | null): void {
  statsList.replaceChildren();
  if (!stats) {
    statsList.textContent = 'No generation yet.';
    return;
  }
  for (const [label, value] of STAT_ROWS) {
    const term = document.createElement('dt');
    term.textContent = label;
    const detail = document.createElement('dd');
    detail.textContent = value(stats);
    statsList.append(term, detail);
  }
}

/** The files in the question's context, and those left out with why. Paths open the file. */
function showFiles(included: IncludedFileInfo[], skipped: { path: string; reason: string }[]): void {
  const tokens = included.reduce((sum, f) => sum + f.tokens, 0);
  const summary = document.createElement('summary');
  summary.textContent = `Context: ${included.length} file${included.length === 1 ? '' : 's'}, ${tokens.toLocaleString('en-US')} tokens; ${skipped.length} left out`;
  const list = (title: string, rows: [string, string][]): HTMLElement => {
    const section = document.createElement('div');
    const heading = document.createElement('h3');
    heading.textContent = title;
    const ul = document.createElement('ul');
    for (const [path, detail] of rows) {
      const li = document.createElement('li');
      const link = document.createElement('a');
      link.href = path;
      link.textContent = path;
      li.append(link, ` — ${detail}`);
      ul.append(li);
    }
    section.append(heading, ul);
    return section;
  };
  filesSection.replaceChildren(
    summary,
    list('Included', included.map((f) => [f.path, `${f.tokens.toLocaleString('en-US')} tokens${f.rows === undefined ? '' : `, ${f.rows} of ${f.storedRows} rows${f.rows === f.storedRows ? ' (full resolution)' : ''}`}`])),
    list('Left out', skipped.map((f) => [f.path, f.reason])),
  );
  filesSection.hidden = false;
}

window.addEventListener('message', (event: MessageEvent<HostToWebviewMessage>) => {
  const message = event.data;
  switch (message.type) {
    case 'answerStarted': {
      const asked = document.createElement('div');
      asked.className = 'question';
      asked.textContent = message.question;
      answerElement = document.createElement('div');
      answerElement.className = 'answer';
      answerText = '';
      chart.reset();
      conversation.append(asked, answerElement);
      setRunning(true);
      break;
    }
    case 'engineEvent': {
      const engineEvent = message.event;
      if (engineEvent.kind === 'segments') {
        // Stored segments brought up to date before the cache is assembled: progress, not statistics.
        if (answerElement) answerElement.textContent = `Reading files into the segment cache: ${engineEvent.filesDone} of ${engineEvent.filesTotal} (${engineEvent.built} prefilled, ${engineEvent.tokensPrefilled.toLocaleString('en-US')} tokens)…`;
        break;
      }
      showStats(engineEvent.stats);
      chart.add(engineEvent.stats, engineEvent.stats.cacheCapacity);
      if (engineEvent.kind === 'token') answerText += engineEvent.text;
      if (engineEvent.kind === 'done') {
        answerText = engineEvent.text;
        setRunning(false);
      }
      if (answerElement && engineEvent.kind !== 'prefill') answerElement.innerHTML = renderMarkdown(answerText);
      break;
    }
    case 'answerFailed': {
      const failure = document.createElement('div');
      failure.className = 'error';
      failure.textContent = `${message.error.name}: ${message.error.message}`;
      conversation.append(failure);
      setRunning(false);
      break;
    }
    case 'history':
      conversation.replaceChildren();
      for (const turn of message.turns) {
        const asked = document.createElement('div');
        asked.className = 'question';
        asked.textContent = turn.question;
        const answered = document.createElement('div');
        answered.className = 'answer';
        answered.innerHTML = renderMarkdown(turn.answer);
        conversation.append(asked, answered);
      }
      break;
    case 'stats':
      showStats(message.stats);
      break;
    case 'files':
      showFiles(message.included, message.skipped);
      break;
    case 'notice':
      notice.textContent = message.text;
      notice.hidden = message.text === '';
      break;
  }
});

showStats(null);
// Any saved state lets VS Code restore the panel after a reload (see the serializer in extension.ts).
vscode.setState({ restored: true });
vscode.postMessage({ type: 'ready' });
