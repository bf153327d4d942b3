// The FreqKV commands. Each is a small function over the FreqKvContext; the engine work goes
// through EngineClient, and every engine error is shown with what to do.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { EngineClient } from './engineClient';
import { FreqKvPanel } from './panel';
import { postToChats, type ChatHandlers } from './chatWebview';
import type { FreqKvChatView } from './chatView';
import type { FreqKvStatusBar } from './statusBar';
import { indexingTooltip, statusIsRunning } from './statusText';
import { collectWorkspaceContext, type WorkspaceContext } from './collectWorkspaceContext';
import { generationSettings, modelToLoad, readSettings, type FreqKvSettings } from './settings';
import { classifyContent } from '../engine/workspace/ingest';
import { countSkips, SKIP_REASON_TEXT } from '../engine/workspace/skipSummary';
import { recentTurns } from '../engine/workspace/prompt';
import { downloadModelCommand } from './downloadModel';
import { filesExcludePatterns } from './workspaceSource';
import { workspaceFileCandidates } from './workspacePaths';
import type { AskParams, ContextFiles, ConversationTurn, EngineEvent, GenerationResult, IndexStatus, LoadModelParams, PriorTurn, WorkspaceSpec } from '../protocol';

export interface FreqKvContext {
  extension: vscode.ExtensionContext;
  client: EngineClient;
  status: FreqKvStatusBar;
  output: vscode.LogOutputChannel;
  chatView: FreqKvChatView;
  /** The context of the running (or last) turn, kept with it in the conversation. */
  turnContext?: ContextFiles;
  /** The model the worker has loaded, or undefined when the next request must load one. */
  loadedModel: LoadModelParams | undefined;
  /** The workspace the index works on, once a segmented ask or Index Workspace ran: file changes are sent to the worker. */
  indexSpec?: WorkspaceSpec;
  /** The question or summary being answered now (a second one is refused without touching it). */
  answering?: string;
  /** The last background indexing status, for the status bar. */
  indexStatus?: IndexStatus;
  /** Starts the file watcher (once) that sends changed paths to the index; set by extension.ts. */
  watchFiles?: () => void;
}

const EMBEDDED_NOTICE =
  'FreqKV is using its embedded model, stories260K: a tiny model trained on children\'s stories. It shows the engine and the cache statistics working, but it cannot answer questions about code. Set freqkv.modelPath (FreqKV: Choose Model) to a larger model.';

export function registerCommands(freqkv: FreqKvContext): void {
  const register = (id: string, run: (...args: never[]) => unknown): void => {
    freqkv.extension.subscriptions.push(vscode.commands.registerCommand(id, run));
  };
  register('freqkv.ask', () => askAboutWorkspace(freqkv));
  register('freqkv.summarizeFile', (uri?: vscode.Uri) => summarizeFile(freqkv, uri));
  register('freqkv.showStats', () => showStats(freqkv));
  register('freqkv.chooseModel', () => chooseModel(freqkv));
  register('freqkv.downloadModel', () => downloadModelCommand(freqkv.extension, freqkv.output));
  register('freqkv.cancel', () => cancel(freqkv));
  register('freqkv.clearCache', () => clearCache(freqkv));
  register('freqkv.newChat', () => newChat(freqkv));
  register('freqkv.openInEditor', () => FreqKvPanel.show(freqkv.extension.extensionUri, chatHandlers(freqkv)));
  register('freqkv.restartEngine', () => restartEngine(freqkv));
  register('freqkv.clearAllCaches', () => clearAllCaches(freqkv));
  register('freqkv.indexWorkspace', () => indexWorkspace(freqkv));
  register('freqkv.pauseIndexing', async () => {
    const stopped = await freqkv.client.stopIndexing();
    void vscode.window.showInformationMessage(stopped ? 'FreqKV: indexing paused; FreqKV: Index Workspace resumes it.' : 'FreqKV: no indexing is running.');
  });
}

/** Cancel: the running answer (in any phase), else background indexing. */
async function cancel(freqkv: FreqKvContext): Promise<void> {
  if (await freqkv.client.cancel()) return;
  if (await freqkv.client.stopIndexing()) {
    void vscode.window.showInformationMessage('FreqKV: indexing paused; FreqKV: Index Workspace resumes it.');
    return;
  }
  void vscode.window.showInformationMessage('FreqKV: nothing is running.');
}

/** Index Workspace: brings every file into the store in the background (pre-empted by questions). */
async function indexWorkspace(freqkv: FreqKvContext): Promise<void> {
  if (!(await ensureModel(freqkv))) return;
  const spec = workspaceSpec(freqkv, readSettings());
  if (!spec) return;
  freqkv.indexSpec = spec;
  freqkv.watchFiles?.();
  await freqkv.client.startIndexing(spec);
}

function openChat(freqkv: FreqKvContext): Promise<void> {
  return freqkv.chatView.reveal();
}

/** What the chat's buttons and links do, in the view and in the editor tab (also after a reload). */
export function chatHandlers(freqkv: FreqKvContext): ChatHandlers {
  return {
    ask: ({ question }) => void answer(freqkv, question),
    cancel: () => void cancel(freqkv),
    clearCache: () => void clearCache(freqkv),
    // The chat posts the history itself (chatWebview.ts), before what was sent while it loaded.
    history: () => conversation(freqkv),
    ready: () => void showStats(freqkv, false),
    openFile: ({ path: relativePath, line }) => void openWorkspaceFile(relativePath, line),
    copy: ({ text }) => void vscode.env.clipboard.writeText(text).then(() => vscode.window.setStatusBarMessage('FreqKV: code copied to the clipboard', 3000)),
    insert: ({ text }) => void insertAtCursor(text),
    newChat: () => void newChat(freqkv),
    openInEditor: () => void vscode.commands.executeCommand('freqkv.openInEditor'),
  };
}

/** The status bar after a generation or an error: ready with the statistics, or stopped. */
function updateStatus(freqkv: FreqKvContext, event: EngineEvent): void {
  if (event.kind === 'segments') freqkv.status.indexing(event.filesDone, event.filesTotal);
  else if (event.kind === 'done') freqkv.status.ready(freqkv.loadedModel?.modelDir ?? null, event.stats);
  else freqkv.status.answering(event.stats);
}

/** Posts a turn's context to the chats and keeps it for the conversation. */
function postContext(freqkv: FreqKvContext, context: ContextFiles): void {
  freqkv.turnContext = context;
  postToChats({ type: 'files', ...context });
}

/**
 * Background indexing progress from the worker, in the status bar (while no answer runs: a
 * question pre-empts indexing), and its end in the output.
 */
export function showIndexStatus(freqkv: FreqKvContext, status: IndexStatus): void {
  const previous = freqkv.indexStatus?.state;
  freqkv.indexStatus = status;
  const kind = freqkv.status.state.kind;
  if (status.state === 'indexing' && (kind === 'ready' || kind === 'indexing')) freqkv.status.indexing(status.filesDone, status.filesTotal);
  else if (status.state !== 'indexing' && kind === 'indexing') freqkv.status.ready(freqkv.loadedModel?.modelDir ?? null);
  if (status.state !== 'indexing' && previous !== status.state) freqkv.output.info(indexingTooltip(status));
}

/** Loads the configured model unless it is loaded; shows the error with a way out and returns false. */
async function ensureModel(freqkv: FreqKvContext): Promise<boolean> {
  const settings = readSettings();
  const wanted = modelToLoad(settings, freqkv.extension.extensionPath);
  const loaded = freqkv.loadedModel;
  if (loaded?.modelDir === wanted.modelDir && loaded.onnxFile === wanted.onnxFile && loaded.threads === wanted.threads) return true;
  const inTurn = freqkv.status.state.kind === 'answering';
  freqkv.status.loading(wanted.modelDir);
  try {
    await freqkv.client.loadModel(wanted);
    freqkv.loadedModel = wanted;
    freqkv.status.ready(wanted.modelDir);
    if (inTurn) freqkv.status.answering(null);
    postToChats({ type: 'notice', text: settings.modelPath.trim() === '' ? EMBEDDED_NOTICE : '' });
    return true;
  } catch (error) {
    freqkv.status.error(error instanceof Error ? error.message : String(error));
    await showEngineError(freqkv, error);
    return false;
  }
}

async function showEngineError(freqkv: FreqKvContext, error: unknown): Promise<void> {
  const name = error instanceof Error ? error.name : 'Error';
  const message = error instanceof Error ? error.message : String(error);
  freqkv.output.error(`${name}: ${message}`);
  postToChats({ type: 'answerFailed', error: { name, message } });
  if (name === 'WorkerCrashedError') freqkv.status.error(message);
  else if (freqkv.status.state.kind !== 'error') freqkv.status.ready(freqkv.loadedModel?.modelDir ?? null);
  const actions = name === 'EngineBusyError' ? ['Cancel'] : name === 'WorkerCrashedError' ? ['Restart Engine'] : /Model|Config|Signature|Runtime/.test(name) ? ['Choose Model'] : [];
  const picked = await vscode.window.showErrorMessage(`FreqKV: ${message}`, ...actions);
  if (picked === 'Cancel') await freqkv.client.cancel();
  if (picked === 'Restart Engine') await restartEngine(freqkv);
  if (picked === 'Choose Model') await chooseModel(freqkv);
}

const CONVERSATION_KEY = 'freqkv.conversation';
const CONVERSATION_TURNS = 50;

/** The conversation is kept per workspace (workspaceState), the latest turns only. */
function conversation(freqkv: FreqKvContext): ConversationTurn[] {
  return freqkv.extension.workspaceState.get<ConversationTurn[]>(CONVERSATION_KEY, []);
}

async function remember(freqkv: FreqKvContext, turn: ConversationTurn): Promise<void> {
  await freqkv.extension.workspaceState.update(CONVERSATION_KEY, [...conversation(freqkv), turn].slice(-CONVERSATION_TURNS));
}

/**
 * While a question runs, another one is not started (its turn would take the running one's
 * place in the chat): the user is told, with a way to cancel. Returns whether one runs.
 */
function refuseWhileRunning(freqkv: FreqKvContext): boolean {
  // Background indexing does not count: a question pre-empts it.
  if (freqkv.answering === undefined && freqkv.status.state.kind !== 'loading') return false;
  void vscode.window.showInformationMessage('FreqKV is answering another question; cancel it first or wait for it to finish.', 'Cancel').then((picked) => {
    if (picked === 'Cancel') void freqkv.client.cancel();
  });
  return true;
}

/**
 * A turn in the chats: the question, then its context, progress and answer (or why there is
 * none). The status bar says "answering" from the start, so a second question waits its turn,
 * and is ready again at the end, whichever way the turn ended.
 */
async function inTurn(freqkv: FreqKvContext, title: string, earlierTurns: number, work: () => Promise<void>): Promise<void> {
  freqkv.turnContext = undefined;
  freqkv.answering = title;
  void openChat(freqkv);
  postToChats({ type: 'answerStarted', question: title, earlierTurns });
  freqkv.status.answering(null);
  try {
    await work();
  } finally {
    freqkv.answering = undefined;
    if (statusIsRunning(freqkv.status.state)) freqkv.status.ready(freqkv.loadedModel?.modelDir ?? null);
  }
}

/** Runs one engine request of a started turn, streaming into the chats and the status bar. */
async function run(freqkv: FreqKvContext, title: string, request: (onEvent: (event: EngineEvent) => void) => Promise<GenerationResult>, earlierTurns = 0): Promise<void> {
  const onEvent = (event: EngineEvent): void => {
    updateStatus(freqkv, event);
    postToChats({ type: 'engineEvent', event });
  };
  try {
    const result = await request(onEvent);
    for (const warning of result.warnings) freqkv.output.warn(warning);
    await remember(freqkv, { question: title, answer: result.text, context: freqkv.turnContext, stats: result.stats, earlierTurns });
  } catch (error) {
    await showEngineError(freqkv, error);
  }
}

/** Forgets the conversation: the next question is asked without earlier turns. */
async function newChat(freqkv: FreqKvContext): Promise<void> {
  await freqkv.extension.workspaceState.update(CONVERSATION_KEY, []);
  postToChats({ type: 'history', turns: [] });
}

/** Replaces the engine worker (after a crash, or when it hangs) and loads the model again. */
async function restartEngine(freqkv: FreqKvContext): Promise<void> {
  await freqkv.client.terminate();
  freqkv.loadedModel = undefined;
  if (await ensureModel(freqkv)) void vscode.window.setStatusBarMessage('FreqKV: the engine was restarted', 3000);
}

async function answer(freqkv: FreqKvContext, question: string): Promise<void> {
  if (refuseWhileRunning(freqkv)) return;
  // Follow-ups see the conversation's last turns (the prompt repeats them after the files).
  const history = conversation(freqkv).map((turn) => ({ question: turn.question, answer: turn.answer }));
  const earlierTurns = recentTurns(history).length;
  await inTurn(freqkv, question, earlierTurns, () => askInTurn(freqkv, question, history, earlierTurns));
}

/** Ask About Workspace inside its started turn: read the workspace, then ask the engine. */
async function askInTurn(freqkv: FreqKvContext, question: string, history: PriorTurn[], earlierTurns: number): Promise<void> {
  if (!(await ensureModel(freqkv))) return;
  const settings = readSettings();
  if (settings.mode === 'segmented') {
    await answerFromIndex(freqkv, settings, question, history, earlierTurns);
    return;
  }
  let context: WorkspaceContext;
  try {
    context = await collectWorkspaceContext(settings, freqkv.client);
  } catch (error) {
    await showEngineError(freqkv, error);
    return;
  }
  if (context.kind === 'cancelled') {
    postToChats({ type: 'answerFailed', error: { name: 'Cancelled', message: 'Reading the workspace was cancelled; nothing was asked.' } });
    return;
  }
  const { ingest, readMs } = context;
  freqkv.output.info(`Read ${ingest.files.length} files (${ingest.totalTokens} tokens) in ${readMs.toFixed(0)} ms; left out ${ingest.skipped.length}: ${countSkips(ingest.skipped)}.`);
  for (const skipped of ingest.skipped) freqkv.output.info(`Left out ${skipped.path}: ${SKIP_REASON_TEXT[skipped.reason]}`);
  postContext(freqkv, {
    included: ingest.files.map((f) => ({ path: f.path, tokens: f.tokens })),
    skipped: ingest.skipped.map((s) => ({ path: s.path, reason: SKIP_REASON_TEXT[s.reason] })),
  });
  if (ingest.files.length === 0) {
    const why = ingest.filesSeen === 0 ? 'the workspace has no files (or none outside files.exclude)' : `all ${ingest.filesSeen} were left out (${countSkips(ingest.skipped)})`;
    const message = `FreqKV: no files to read: ${why}. Open a folder with text source files, or loosen freqkv.include, freqkv.exclude or freqkv.maxFileBytes.`;
    postToChats({ type: 'answerFailed', error: { name: 'NoInputError', message } });
    void vscode.window.showWarningMessage(message, 'Show Output').then((picked) => picked && freqkv.output.show());
    return;
  }
  const files = ingest.files.map((f) => ({ path: f.path, text: f.text }));
  const params: AskParams = { ...generationSettings(settings), question, mode: 'sequential', files, history };
  await run(freqkv, question, (onEvent) => freqkv.client.ask(params, onEvent), earlierTurns);
}

/**
 * A segmented ask: the worker's workspace index reads the local folders itself (only changed
 * files), answers first from the relevant ones and indexes the rest in the background.
 */
async function answerFromIndex(freqkv: FreqKvContext, settings: FreqKvSettings, question: string, history: PriorTurn[], earlierTurns: number): Promise<void> {
  const spec = workspaceSpec(freqkv, settings);
  if (!spec) {
    postToChats({ type: 'answerFailed', error: { name: 'NoInputError', message: 'Open a local folder to ask about it (or set freqkv.mode to "sequential" for a remote one).' } });
    return;
  }
  freqkv.indexSpec = spec;
  freqkv.watchFiles?.();
  const params: AskParams = {
    ...generationSettings(settings),
    question,
    mode: 'segmented',
    workspace: spec,
    maxWorkspaceTokens: settings.maxWorkspaceTokens,
    firstAnswerSeconds: settings.firstAnswerSeconds,
    history,
  };
  await run(freqkv, question, async (onEvent) => {
    const result = await freqkv.client.ask(params, onEvent);
    const segments = result.segments;
    if (segments) {
      // Which files the assembled cache holds, at which resolution; the rest is listed with why it is not in.
      postContext(freqkv, {
        included: segments.files.map((f) => ({ path: f.path, tokens: f.tokens, rows: f.rows, storedRows: f.storedRows })),
        skipped: [
          ...segments.notIndexed.map((f) => ({ path: f.path, reason: 'not indexed yet (indexing continues in the background)' })),
          ...segments.dropped.map((d) => ({ path: d.path, reason: d.reason })),
          ...segments.overTokenLimit.map((f) => ({ path: f.path, reason: `${SKIP_REASON_TEXT['token-budget']} (freqkv.maxWorkspaceTokens; the least relevant files)` })),
          ...segments.skipped.map((f) => ({ path: f.path, reason: SKIP_REASON_TEXT[f.reason] })),
        ],
      });
      freqkv.output.info(
        `Workspace index: ${segments.filesIndexed}/${segments.filesTotal} files indexed; ${segments.built} prefilled for this answer, ${segments.reused} reused (${(segments.updateMs / 1000).toFixed(1)} s)${segments.persisted ? '' : ' (not saved: the store cannot be written)'}; the cache holds ${segments.files.length} files, ${segments.notIndexed.length} files not indexed yet, ${segments.dropped.length} did not fit.`,
      );
    }
    return result;
  }, earlierTurns);
}

/** The workspace as the worker's index reads it: the local folders and the settings' rules; undefined (with a message) if there is none. */
function workspaceSpec(freqkv: FreqKvContext, settings: FreqKvSettings): WorkspaceSpec | undefined {
  const folders = vscode.workspace.workspaceFolders ?? [];
  const local = folders.filter((f) => f.uri.scheme === 'file');
  if (local.length === 0) {
    const message =
      folders.length === 0
        ? 'FreqKV: open a folder to ask about it.'
        : 'FreqKV: the segmented mode indexes local folders only; this workspace is remote. Set freqkv.mode to "sequential" to ask about it.';
    void vscode.window.showWarningMessage(message);
    return undefined;
  }
  const multiRoot = local.length > 1;
  const filesExclude = filesExcludePatterns(vscode.workspace.getConfiguration('files').get<Record<string, unknown>>('exclude'));
  return {
    roots: local.map((f) => ({ dir: f.uri.fsPath, prefix: multiRoot ? f.name : undefined })),
    include: settings.include,
    exclude: [...settings.exclude, ...filesExclude],
    maxFileBytes: settings.maxFileBytes,
    storeDir: segmentStoreUri(freqkv).fsPath,
    maxStoreBytes: settings.maxStoreMB * 1024 * 1024,
    workspaceId: local.map((f) => f.uri.toString()).join('|'),
    codec: settings.segmentCodec,
    cache: settings.cache,
  };
}

function segmentStoreUri(freqkv: FreqKvContext): vscode.Uri {
  return vscode.Uri.joinPath(freqkv.extension.globalStorageUri, 'segments');
}

/** A file watcher's event as a workspace path of the index (prefixed by its folder in a multi-root workspace). */
export function indexPathOf(freqkv: FreqKvContext, uri: vscode.Uri): string | undefined {
  const roots = freqkv.indexSpec?.roots ?? [];
  for (const root of roots) {
    const rel = path.relative(root.dir, uri.fsPath);
    if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) continue;
    const forward = rel.split(path.sep).join('/');
    return root.prefix ? `${root.prefix}/${forward}` : forward;
  }
  return undefined;
}

async function askAboutWorkspace(freqkv: FreqKvContext): Promise<void> {
  await openChat(freqkv);
  const question = await vscode.window.showInputBox({ title: 'FreqKV: Ask About Workspace', prompt: 'Your question', ignoreFocusOut: true });
  if (question?.trim()) await answer(freqkv, question.trim());
}

async function summarizeFile(freqkv: FreqKvContext, uri: vscode.Uri | undefined): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  const target = uri ?? editor?.document.uri;
  if (!target) {
    void vscode.window.showInformationMessage('FreqKV: open a file, or right-click one in the explorer, to summarize it.');
    return;
  }
  const relative = vscode.workspace.asRelativePath(target);
  const maxBytes = readSettings().maxFileBytes;
  let text: string;
  const fromEditor = editor && editor.document.uri.toString() === target.toString();
  if (fromEditor && !editor.selection.isEmpty) {
    text = editor.document.getText(editor.selection);
  } else {
    let size: number;
    try {
      size = (await vscode.workspace.fs.stat(target)).size;
    } catch {
      void vscode.window.showWarningMessage(`FreqKV: ${relative} cannot be read.`);
      return;
    }
    if (size > maxBytes) {
      void vscode.window.showWarningMessage(`FreqKV: ${relative} is ${size.toLocaleString('en-US')} bytes, larger than freqkv.maxFileBytes (${maxBytes.toLocaleString('en-US')}); raise the setting or select the part to summarize.`);
      return;
    }
    const content = fromEditor ? { text: editor.document.getText() } : classifyContent(await vscode.workspace.fs.readFile(target));
    if ('reason' in content) {
      void vscode.window.showWarningMessage(`FreqKV: ${relative} cannot be summarized: it is ${SKIP_REASON_TEXT[content.reason]}.`);
      return;
    }
    text = content.text;
  }
  if (Buffer.byteLength(text, 'utf8') > maxBytes) {
    void vscode.window.showWarningMessage(`FreqKV: the text to summarize is larger than freqkv.maxFileBytes (${maxBytes.toLocaleString('en-US')} bytes).`);
    return;
  }
  const title = `Summarize ${relative}`;
  if (refuseWhileRunning(freqkv)) return;
  await inTurn(freqkv, title, 0, async () => {
    if (!(await ensureModel(freqkv))) return;
    const settings = readSettings();
    try {
      postContext(freqkv, { included: [{ path: relative, tokens: await freqkv.client.countTokens(text) }], skipped: [] });
    } catch (error) {
      await showEngineError(freqkv, error);
      return;
    }
    await run(freqkv, title, (onEvent) => freqkv.client.summarize({ ...generationSettings(settings), file: { path: relative, text } }, onEvent));
  });
}

async function showStats(freqkv: FreqKvContext, reveal = true): Promise<void> {
  if (reveal) await openChat(freqkv);
  const reply = await freqkv.client.getStats();
  postToChats({ type: 'stats', stats: reply.stats, modelDir: reply.model?.modelDir ?? null });
  postToChats({ type: 'notice', text: readSettings().modelPath.trim() === '' ? EMBEDDED_NOTICE : '' });
}

/** Clear Cache: forgets the statistics and this workspace's index and segments (other workspaces keep theirs). */
async function clearCache(freqkv: FreqKvContext): Promise<void> {
  try {
    const settings = readSettings();
    const spec = freqkv.loadedModel && (vscode.workspace.workspaceFolders ?? []).some((f) => f.uri.scheme === 'file') ? workspaceSpec(freqkv, settings) : undefined;
    const result = await freqkv.client.clearCache(spec ? { storeDir: spec.storeDir, workspaceId: spec.workspaceId, roots: spec.roots, codec: spec.codec, cache: spec.cache } : {});
    freqkv.indexSpec = undefined;
    freqkv.indexStatus = undefined;
    freqkv.status.ready(freqkv.loadedModel?.modelDir ?? null, null);
    postToChats({ type: 'stats', stats: null, modelDir: freqkv.loadedModel?.modelDir ?? null });
    if (result.failures.length > 0) {
      for (const failure of result.failures) freqkv.output.error(`Clear Cache: ${failure}`);
      void vscode.window.showWarningMessage(`FreqKV: cleared this workspace's index (${result.removedSegments} segments), but some of it could not be removed; see the FreqKV output.`, 'Show Output').then((picked) => picked && freqkv.output.show());
      return;
    }
    void vscode.window.showInformationMessage(`FreqKV: cleared the cache statistics${spec ? ` and this workspace's index (${result.removedSegments} segments)` : ''}. FreqKV: Clear All Caches removes every workspace's.`);
  } catch (error) {
    await showEngineError(freqkv, error);
  }
}

/** Clear All Caches: every workspace's index and segments, and the codebooks (the whole store). */
async function clearAllCaches(freqkv: FreqKvContext): Promise<void> {
  try {
    await freqkv.client.stopIndexing();
    await freqkv.client.clearCache({});
    freqkv.indexSpec = undefined;
    freqkv.indexStatus = undefined;
    freqkv.status.ready(freqkv.loadedModel?.modelDir ?? null, null);
    const store = segmentStoreUri(freqkv);
    const bytes = directoryBytes(store.fsPath);
    try {
      await vscode.workspace.fs.delete(store, { recursive: true, useTrash: false });
    } catch (error) {
      if (!(error instanceof vscode.FileSystemError && error.code === 'FileNotFound')) {
        const message = `FreqKV: the segment store ${store.fsPath} could not be deleted (${error instanceof Error ? error.message : String(error)}); delete it by hand.`;
        freqkv.output.error(message);
        void vscode.window.showErrorMessage(message);
        return;
      }
    }
    void vscode.window.showInformationMessage(`FreqKV: cleared every workspace's index${bytes > 0 ? ` (${(bytes / 1e6).toFixed(1)} MB)` : ''}.`);
  } catch (error) {
    await showEngineError(freqkv, error);
  }
}

function directoryBytes(dir: string): number {
  let total = 0;
  try {
    for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
      if (entry.isFile()) total += fs.statSync(path.join(entry.parentPath, entry.name)).size;
    }
  } catch {
    // No store yet.
  }
  return total;
}

async function chooseModel(freqkv: FreqKvContext): Promise<void> {
  const picked = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Use this model folder', title: 'FreqKV: Choose Model (a folder with config.json, tokenizer.json and onnx/model.onnx)' });
  const folder = picked?.[0];
  if (!folder) return;
  await vscode.workspace.getConfiguration('freqkv').update('modelPath', folder.fsPath, vscode.ConfigurationTarget.Global);
  freqkv.loadedModel = undefined;
  if (await ensureModel(freqkv)) void vscode.window.showInformationMessage(`FreqKV: using the model in ${folder.fsPath}.`);
}

/** Opens a path an answer links to, at the 1-based line, if it names a file inside a workspace folder. */
async function openWorkspaceFile(relativePath: string, line?: number): Promise<void> {
  const inside = workspaceFileCandidates(relativePath, (vscode.workspace.workspaceFolders ?? []).map((folder) => folder.uri.fsPath));
  for (const file of inside) {
    try {
      const at = line === undefined ? undefined : new vscode.Range(line - 1, 0, line - 1, 0);
      await vscode.window.showTextDocument(vscode.Uri.file(file), { preview: true, selection: at });
      return;
    } catch {
      // Not in this folder; try the next one.
    }
  }
  void vscode.window.showInformationMessage(`FreqKV: ${relativePath} is not a file in this workspace.`);
}

/** Inserts a code block at the cursor of the active editor, or of the last one the user was in. */
async function insertAtCursor(text: string): Promise<void> {
  const editor = vscode.window.activeTextEditor ?? lastTextEditor;
  if (!editor) {
    void vscode.window.showInformationMessage('FreqKV: open a file to insert the code into.');
    return;
  }
  await vscode.window.showTextDocument(editor.document, { viewColumn: editor.viewColumn, preserveFocus: false });
  await editor.edit((edit) => {
    for (const selection of editor.selections) edit.replace(selection, text);
  });
}

/** The last text editor that was active: the chat takes the focus, and Insert goes where the user was. */
let lastTextEditor: vscode.TextEditor | undefined;

export function trackLastTextEditor(): vscode.Disposable {
  lastTextEditor = vscode.window.activeTextEditor;
  return vscode.window.onDidChangeActiveTextEditor((editor) => {
    if (editor) lastTextEditor = editor;
  });
}
