// The FreqKV commands. Each is a small function over the FreqKvContext; the engine work goes
// through EngineClient, and every engine error is shown with what to do.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { EngineClient } from './engineClient';
import { FreqKvPanel, type PanelHandlers } from './panel';
import { collectWorkspaceContext, readWorkspace, type WorkspaceContext } from './collectWorkspaceContext';
import { generationSettings, modelToLoad, readSettings, type FreqKvSettings } from './settings';
import { classifyContent } from '../engine/workspace/ingest';
import { countSkips, SKIP_REASON_TEXT } from '../engine/workspace/skipSummary';
import { downloadModelCommand } from './downloadModel';
import { statusBarText, statusBarTooltip } from './statusText';
import { workspaceFileCandidates } from './workspacePaths';
import type { AskParams, FileText, ConversationTurn, EngineEvent, GenerationResult, GenerationStats, LoadModelParams } from '../protocol';

export interface FreqKvContext {
  extension: vscode.ExtensionContext;
  client: EngineClient;
  status: vscode.StatusBarItem;
  output: vscode.LogOutputChannel;
  /** The model the worker has loaded, or undefined when the next request must load one. */
  loadedModel: LoadModelParams | undefined;
  /** A segmented ask ran in this window, so file changes are worth re-reading in the background. */
  segmentsInUse?: boolean;
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
}

function openPanel(freqkv: FreqKvContext): void {
  FreqKvPanel.show(freqkv.extension.extensionUri, panelHandlers(freqkv));
}

/** What the panel's buttons and links do; also used when VS Code restores the panel after a reload. */
export function panelHandlers(freqkv: FreqKvContext): PanelHandlers {
  return {
    ask: (question) => void answer(freqkv, question),
    cancel: () => void freqkv.client.cancel(),
    clearCache: () => void clearCache(freqkv),
    history: () => conversation(freqkv),
    ready: () => void showStats(freqkv, false),
    openFile: (relativePath) => void openWorkspaceFile(relativePath),
  };
}

function updateStatus(freqkv: FreqKvContext, stats: GenerationStats | null): void {
  freqkv.status.text = statusBarText(stats);
  freqkv.status.tooltip = statusBarTooltip(stats, freqkv.loadedModel?.modelDir ?? null);
}

/** Loads the configured model unless it is loaded; shows the error with a way out and returns false. */
async function ensureModel(freqkv: FreqKvContext): Promise<boolean> {
  const settings = readSettings();
  const wanted = modelToLoad(settings, freqkv.extension.extensionPath);
  const loaded = freqkv.loadedModel;
  if (loaded?.modelDir === wanted.modelDir && loaded.onnxFile === wanted.onnxFile && loaded.threads === wanted.threads) return true;
  try {
    await freqkv.client.loadModel(wanted);
    freqkv.loadedModel = wanted;
    FreqKvPanel.post({ type: 'notice', text: settings.modelPath.trim() === '' ? EMBEDDED_NOTICE : '' });
    return true;
  } catch (error) {
    await showEngineError(freqkv, error);
    return false;
  }
}

async function showEngineError(freqkv: FreqKvContext, error: unknown): Promise<void> {
  const name = error instanceof Error ? error.name : 'Error';
  const message = error instanceof Error ? error.message : String(error);
  freqkv.output.error(`${name}: ${message}`);
  FreqKvPanel.post({ type: 'answerFailed', error: { name, message } });
  const actions = name === 'EngineBusyError' ? ['Cancel'] : /Model|Config|Signature|Runtime/.test(name) ? ['Choose Model'] : [];
  const picked = await vscode.window.showErrorMessage(`FreqKV: ${message}`, ...actions);
  if (picked === 'Cancel') await freqkv.client.cancel();
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

/** Runs one engine request, streaming into the panel and the status bar. */
async function run(freqkv: FreqKvContext, title: string, request: (onEvent: (event: EngineEvent) => void) => Promise<GenerationResult>): Promise<void> {
  FreqKvPanel.post({ type: 'answerStarted', question: title });
  const onEvent = (event: EngineEvent): void => {
    if (event.kind !== 'segments') updateStatus(freqkv, event.stats);
    FreqKvPanel.post({ type: 'engineEvent', event });
  };
  try {
    const result = await request(onEvent);
    for (const warning of result.warnings) freqkv.output.warn(warning);
    await remember(freqkv, { question: title, answer: result.text });
  } catch (error) {
    await showEngineError(freqkv, error);
  }
}

async function answer(freqkv: FreqKvContext, question: string): Promise<void> {
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
    void vscode.window.showInformationMessage('FreqKV: reading the workspace was cancelled; nothing was asked.');
    return;
  }
  const { ingest, readMs } = context;
  freqkv.output.info(`Read ${ingest.files.length} files (${ingest.totalTokens} tokens) in ${readMs.toFixed(0)} ms; left out ${ingest.skipped.length}: ${countSkips(ingest.skipped)}.`);
  for (const skipped of ingest.skipped) freqkv.output.info(`Left out ${skipped.path}: ${SKIP_REASON_TEXT[skipped.reason]}`);
  FreqKvPanel.post({
    type: 'files',
    included: ingest.files.map((f) => ({ path: f.path, tokens: f.tokens })),
    skipped: ingest.skipped.map((s) => ({ path: s.path, reason: SKIP_REASON_TEXT[s.reason] })),
  });
  if (ingest.files.length === 0) {
    const why = ingest.filesSeen === 0 ? 'the workspace has no files (or none outside files.exclude)' : `all ${ingest.filesSeen} were left out (${countSkips(ingest.skipped)})`;
    const message = `FreqKV: no files to read: ${why}. Open a folder with text source files, or loosen freqkv.include, freqkv.exclude or freqkv.maxFileBytes.`;
    FreqKvPanel.post({ type: 'answerFailed', error: { name: 'NoInputError', message } });
    void vscode.window.showWarningMessage(message, 'Show Output').then((picked) => picked && freqkv.output.show());
    return;
  }
  const files = ingest.files.map((f) => ({ path: f.path, text: f.text }));
  const skipped = ingest.skipped.map((s) => ({ path: s.path, reason: SKIP_REASON_TEXT[s.reason] }));
  const params: AskParams = { ...segmentParams(freqkv, settings, files), question, mode: settings.mode };
  if (settings.mode === 'segmented') freqkv.segmentsInUse = true;
  await run(freqkv, question, async (onEvent) => {
    const result = await freqkv.client.ask(params, onEvent);
    const segments = result.segments;
    if (segments) {
      // Which files the assembled cache holds, at which resolution; those that did not fit are listed as left out.
      FreqKvPanel.post({
        type: 'files',
        included: segments.files.map((f) => ({ path: f.path, tokens: f.tokens, rows: f.rows, storedRows: f.storedRows })),
        skipped: [...segments.dropped.map((d) => ({ path: d.path, reason: d.reason })), ...skipped],
      });
      freqkv.output.info(
        `Segments: ${segments.reused} reused, ${segments.built} prefilled in ${(segments.updateMs / 1000).toFixed(1)} s${segments.persisted ? '' : ' (not saved: the store cannot be written)'}; the cache holds ${segments.files.length} files, ${segments.dropped.length} did not fit.`,
      );
    }
    return result;
  });
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
  openPanel(freqkv);
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
  openPanel(freqkv);
  if (!(await ensureModel(freqkv))) return;
  const settings = readSettings();
  try {
    FreqKvPanel.post({ type: 'files', included: [{ path: relative, tokens: await freqkv.client.countTokens(text) }], skipped: [] });
  } catch (error) {
    await showEngineError(freqkv, error);
    return;
  }
  await run(freqkv, `Summarize ${relative}`, (onEvent) => freqkv.client.summarize({ ...generationSettings(settings), file: { path: relative, text } }, onEvent));
}

async function showStats(freqkv: FreqKvContext, reveal = true): Promise<void> {
  if (reveal) openPanel(freqkv);
  const reply = await freqkv.client.getStats();
  FreqKvPanel.post({ type: 'stats', stats: reply.stats, modelDir: reply.model?.modelDir ?? null });
  FreqKvPanel.post({ type: 'notice', text: readSettings().modelPath.trim() === '' ? EMBEDDED_NOTICE : '' });
}

/** Forgets the statistics and the worker's segment cache, and deletes the stored segments. */
async function clearCache(freqkv: FreqKvContext): Promise<void> {
  try {
    await freqkv.client.clearCache();
    freqkv.segmentsInUse = false;
    updateStatus(freqkv, null);
    FreqKvPanel.post({ type: 'stats', stats: null, modelDir: freqkv.loadedModel?.modelDir ?? null });
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

/** Opens a path an answer links to, if it names a file inside a workspace folder. */
async function openWorkspaceFile(relativePath: string): Promise<void> {
  const inside = workspaceFileCandidates(relativePath, (vscode.workspace.workspaceFolders ?? []).map((folder) => folder.uri.fsPath));
  for (const file of inside) {
    try {
      await vscode.window.showTextDocument(vscode.Uri.file(file), { preview: true });
      return;
    } catch {
      // Not in this folder; try the next one.
    }
  }
  void vscode.window.showInformationMessage(`FreqKV: ${relativePath} is not a file in this workspace.`);
}
