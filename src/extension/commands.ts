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
import { statusIsRunning } from './statusText';
import { collectWorkspaceContext, readWorkspace, type WorkspaceContext } from './collectWorkspaceContext';
import { generationSettings, modelToLoad, readSettings, type FreqKvSettings } from './settings';
import { classifyContent } from '../engine/workspace/ingest';
import { countSkips, SKIP_REASON_TEXT } from '../engine/workspace/skipSummary';
import { recentTurns } from '../engine/workspace/prompt';
import { downloadModelCommand } from './downloadModel';
import { workspaceFileCandidates } from './workspacePaths';
import type { AskParams, ContextFiles, FileText, ConversationTurn, EngineEvent, GenerationResult, LoadModelParams, PriorTurn } from '../protocol';

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
  /** A segmented ask ran in this window, so file changes are worth re-reading in the background. */
  segmentsInUse?: boolean;
  /** Starts the file watcher (once) that keeps the segments up to date; set by extension.ts. */
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
  register('freqkv.cancel', async () => {
    const cancelled = await freqkv.client.cancel();
    if (!cancelled) void vscode.window.showInformationMessage('FreqKV: nothing is running.');
  });
  register('freqkv.clearCache', () => clearCache(freqkv));
  register('freqkv.newChat', () => newChat(freqkv));
  register('freqkv.openInEditor', () => FreqKvPanel.show(freqkv.extension.extensionUri, chatHandlers(freqkv)));
  register('freqkv.restartEngine', () => restartEngine(freqkv));
}

function openChat(freqkv: FreqKvContext): Promise<void> {
  return freqkv.chatView.reveal();
}

/** What the chat's buttons and links do, in the view and in the editor tab (also after a reload). */
export function chatHandlers(freqkv: FreqKvContext): ChatHandlers {
  return {
    ask: ({ question }) => void answer(freqkv, question),
    cancel: () => void freqkv.client.cancel(),
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
  if (!statusIsRunning(freqkv.status.state)) return false;
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
  void openChat(freqkv);
  postToChats({ type: 'answerStarted', question: title, earlierTurns });
  freqkv.status.answering(null);
  try {
    await work();
  } finally {
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
  const skipped = ingest.skipped.map((s) => ({ path: s.path, reason: SKIP_REASON_TEXT[s.reason] }));
  const params: AskParams = { ...segmentParams(freqkv, settings, files), question, mode: settings.mode, history };
  if (settings.mode === 'segmented') {
    freqkv.segmentsInUse = true;
    freqkv.watchFiles?.();
  }
  await run(freqkv, question, async (onEvent) => {
    const result = await freqkv.client.ask(params, onEvent);
    const segments = result.segments;
    if (segments) {
      // Which files the assembled cache holds, at which resolution; those that did not fit are listed as left out.
      postContext(freqkv, {
        included: segments.files.map((f) => ({ path: f.path, tokens: f.tokens, rows: f.rows, storedRows: f.storedRows })),
        skipped: [...segments.dropped.map((d) => ({ path: d.path, reason: d.reason })), ...skipped],
      });
      freqkv.output.info(
        `Segments: ${segments.reused} reused, ${segments.built} prefilled in ${(segments.updateMs / 1000).toFixed(1)} s${segments.persisted ? '' : ' (not saved: the store cannot be written)'}; the cache holds ${segments.files.length} files, ${segments.dropped.length} did not fit.`,
      );
    }
    return result;
  }, earlierTurns);
}

/** Where and how a segmented ask keeps this workspace's segments. */
function segmentParams(freqkv: FreqKvContext, settings: FreqKvSettings, files: FileText[]): Omit<AskParams, 'question' | 'mode'> {
  return {
    ...generationSettings(settings),
    files,
    codec: settings.segmentCodec,
    storeDir: segmentStoreUri(freqkv).fsPath,
    maxStoreBytes: settings.maxStoreMB * 1024 * 1024,
    workspaceId: (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.toString()).join('|') || 'no-folder',
  };
}

function segmentStoreUri(freqkv: FreqKvContext): vscode.Uri {
  return vscode.Uri.joinPath(freqkv.extension.globalStorageUri, 'segments');
}

/**
 * The file watcher's refresh, after a segmented ask: when the engine is idle, re-reads the
 * workspace and prefills only the files that changed, so the next question starts warm.
 */
export async function refreshSegments(freqkv: FreqKvContext): Promise<void> {
  const settings = readSettings();
  if (!freqkv.segmentsInUse || settings.mode !== 'segmented' || !freqkv.loadedModel) return;
  try {
    if ((await freqkv.client.getStats()).busy) return;
    const context = await readWorkspace(settings, freqkv.client);
    if (context.kind !== 'read' || context.ingest.files.length === 0) return;
    const files = context.ingest.files.map((f) => ({ path: f.path, text: f.text }));
    const update = await freqkv.client.updateSegments(segmentParams(freqkv, settings, files));
    if (update.built > 0 || update.removed > 0) {
      freqkv.output.info(`Segment cache refreshed after file changes: ${update.built} files prefilled, ${update.removed} collected, ${update.reused} unchanged (${(update.ms / 1000).toFixed(1)} s).`);
    }
  } catch (error) {
    // A question started meanwhile (busy) or the model changed: the next question updates the segments itself.
    freqkv.output.info(`Segment refresh skipped: ${error instanceof Error ? error.message : String(error)}`);
  }
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

/** Forgets the statistics and the worker's segment cache, and deletes the stored segments. */
async function clearCache(freqkv: FreqKvContext): Promise<void> {
  try {
    await freqkv.client.clearCache();
    freqkv.segmentsInUse = false;
    freqkv.status.ready(freqkv.loadedModel?.modelDir ?? null, null);
    postToChats({ type: 'stats', stats: null, modelDir: freqkv.loadedModel?.modelDir ?? null });
    const store = segmentStoreUri(freqkv);
    const bytes = directoryBytes(store.fsPath);
    await vscode.workspace.fs.delete(store, { recursive: true, useTrash: false }).then(undefined, () => undefined);
    void vscode.window.showInformationMessage(`FreqKV: cleared the cache statistics${bytes > 0 ? ` and ${(bytes / 1e6).toFixed(1)} MB of stored segments` : ''}.`);
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
