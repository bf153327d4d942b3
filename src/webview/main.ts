// The chat's script (bundled for the browser into dist/webview.js), the same in the activity-bar
// view and in the editor tab. DOM only: it renders the protocol's HostToWebview messages as a
// thread of turns (turnView.ts) and posts WebviewToHost messages. Model output goes through
// markdown.ts (markdown-it, then DOMPurify).

import type { GenerationStats, HostToWebviewMessage, WebviewToHostMessage } from '../protocol';
import { formatBytes, formatCount, formatRatio } from '../formatNumbers';
import { parseFileHref } from './fileReferences';
import { TurnView, type TurnActions } from './turnView';

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
const thread = byId<HTMLDivElement>('thread');
const empty = byId<HTMLDivElement>('empty');
const notice = byId<HTMLDivElement>('notice');
const cacheStatus = byId<HTMLDetailsElement>('cache-status');
const cacheStatusBody = byId<HTMLDivElement>('cache-status-body');

/** Paths the conversation has seen as workspace files: references to them in answers become links. */
const knownPaths = new Set<string>();
const actions: TurnActions = {
  copy: (text) => vscode.postMessage({ type: 'copy', text }),
  insert: (text) => vscode.postMessage({ type: 'insert', text }),
};
let current: TurnView | undefined;

function send(): void {
  const text = question.value.trim();
  if (!text || current?.running) return;
  vscode.postMessage({ type: 'ask', question: text });
  question.value = '';
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  send();
});
question.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});
// Links: http(s) ones VS Code opens itself; the others name workspace files (path, and a line in data-line or :42).
thread.addEventListener('click', (event) => {
  const link = (event.target as HTMLElement).closest('a');
  const href = link?.getAttribute('href');
  if (!link || !href || /^https?:/i.test(href)) return;
  event.preventDefault();
  const parsed = parseFileHref(href);
  const line = link.dataset.line ? Number(link.dataset.line) : parsed.line;
  vscode.postMessage({ type: 'openFile', path: parsed.path, ...(line ? { line } : {}) });
});
cancel.addEventListener('click', () => vscode.postMessage({ type: 'cancel' }));
byId<HTMLButtonElement>('new-chat').addEventListener('click', () => vscode.postMessage({ type: 'newChat' }));
document.getElementById('open-in-editor')?.addEventListener('click', () => vscode.postMessage({ type: 'openInEditor' }));

function setRunning(running: boolean): void {
  cancel.hidden = !running;
  ask.disabled = running;
}

function append(turn: TurnView): void {
  empty.hidden = true;
  thread.append(turn.root);
  turn.root.scrollIntoView({ block: 'end' });
}

/** The last generation's statistics (Show Cache Statistics), under the thread. */
function showCacheStatus(stats: GenerationStats | null, modelDir: string | null): void {
  const model = `Model: ${modelDir ?? 'none loaded'}`;
  cacheStatusBody.textContent = stats
    ? `${model}. Last answer: ${formatCount(stats.cacheRows)} of ${formatCount(stats.cacheCapacity)} rows, ${formatBytes(stats.cacheBytes)}, ${formatRatio(stats.effectiveRatio)} (${formatCount(stats.tokensSeen)} tokens seen), ${formatCount(stats.compressions)} compressions.`
    : `${model}. No generation yet.`;
  cacheStatus.hidden = false;
}

window.addEventListener('message', (event: MessageEvent<HostToWebviewMessage>) => {
  const message = event.data;
  switch (message.type) {
    case 'answerStarted':
      current = new TurnView(message.question, message.earlierTurns ?? 0, knownPaths, actions);
      current.start();
      append(current);
      setRunning(true);
      break;
    case 'files':
      current?.showContext(message);
      break;
    case 'engineEvent':
      current?.onEvent(message.event);
      if (message.event.kind === 'done') setRunning(false);
      else current?.root.scrollIntoView({ block: 'end' });
      break;
    case 'answerFailed':
      if (current?.running) current.fail(message.error);
      else {
        // An error outside a question (e.g. Choose Model): a turn of its own.
        const failed = new TurnView('FreqKV', 0, knownPaths, actions);
        failed.fail(message.error);
        append(failed);
      }
      setRunning(false);
      break;
    case 'history':
      thread.replaceChildren(empty);
      empty.hidden = message.turns.length > 0;
      current = undefined;
      for (const turn of message.turns) append(TurnView.restored(turn, knownPaths, actions));
      setRunning(false);
      break;
    case 'stats':
      showCacheStatus(message.stats, message.modelDir);
      break;
    case 'notice':
      notice.textContent = message.text;
      notice.hidden = message.text === '';
      break;
  }
});

// Any saved state lets VS Code restore the editor-tab panel after a reload (the serializer in extension.ts).
vscode.setState({ restored: true });
vscode.postMessage({ type: 'ready' });
