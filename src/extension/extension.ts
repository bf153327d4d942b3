// The extension's entry point: wires the engine client, the status bar, the chat view, the
// editor-tab panel and the commands, and returns. It activates on use (a command, the chat
// view, a restored panel), so a window that never uses FreqKV has none of this. The work
// happens in the engine worker (dist/worker.js); see docs/architecture.md. Command ids are
// listed in package.json contributes.commands.

import * as path from 'node:path';
import * as vscode from 'vscode';
import { EngineClient } from './engineClient';
import { chatHandlers, indexPathOf, registerCommands, showIndexStatus, trackLastTextEditor, type FreqKvContext } from './commands';
import { FreqKvPanel } from './panel';
import { FreqKvChatView } from './chatView';
import { FreqKvStatusBar } from './statusBar';

/** The engine client of the active extension: deactivate waits for its worker to stop. */
let activeClient: EngineClient | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const client = new EngineClient(path.join(context.extensionPath, 'dist', 'worker.js'));
  activeClient = client;
  const status = new FreqKvStatusBar();
  const output = vscode.window.createOutputChannel('FreqKV', { log: true });
  const chatView = new FreqKvChatView(context.extensionUri, () => chatHandlers(freqkv));
  const freqkv: FreqKvContext = { extension: context, client, status, output, chatView, loadedModel: undefined };
  registerCommands(freqkv);
  context.subscriptions.push(
    vscode.window.registerWebviewViewProvider(FreqKvChatView.viewType, chatView, { webviewOptions: { retainContextWhenHidden: true } }),
    // After a window reload VS Code restores an open panel; the webview asks for the conversation again.
    vscode.window.registerWebviewPanelSerializer(FreqKvPanel.viewType, {
      deserializeWebviewPanel: async (panel) => {
        FreqKvPanel.revive(panel, context.extensionUri, chatHandlers(freqkv));
      },
    }),
    trackLastTextEditor(),
  );
  context.subscriptions.push(status, output, {
    dispose: () => void client.dispose(),
  });
  client.onIndexStatus((status) => showIndexStatus(freqkv, status));
  // The workspace index learns of edited, added and deleted files from a file watcher, started
  // by the first segmented question or Index Workspace: their paths go to the worker, whose next
  // refresh (a question, or background indexing) reads only those.
  let watcher: vscode.FileSystemWatcher | undefined;
  const changed = new Set<string>();
  let flushTimer: ReturnType<typeof setTimeout> | undefined;
  const onChange = (uri: vscode.Uri): void => {
    if (!freqkv.indexSpec) return;
    const p = indexPathOf(freqkv, uri);
    if (p === undefined || p.split('/').some((part) => part === '.git' || part === 'node_modules')) return;
    changed.add(p);
    clearTimeout(flushTimer);
    flushTimer = setTimeout(() => {
      const paths = [...changed];
      changed.clear();
      void client.workspaceChanged(paths).catch((error: unknown) => output.info(`File changes not sent to the engine: ${error instanceof Error ? error.message : String(error)}`));
    }, 1000);
  };
  freqkv.watchFiles = () => {
    if (watcher) return;
    watcher = vscode.workspace.createFileSystemWatcher('**/*');
    context.subscriptions.push(watcher, watcher.onDidChange(onChange), watcher.onDidCreate(onChange), watcher.onDidDelete(onChange));
  };
  context.subscriptions.push({ dispose: () => clearTimeout(flushTimer) });
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((event) => {
      // A new model path, graph file or thread count takes effect on the next request.
      if (['freqkv.modelPath', 'freqkv.onnxFile', 'freqkv.threads'].some((name) => event.affectsConfiguration(name))) freqkv.loadedModel = undefined;
    }),
  );
}

/** Waits until the worker has stopped (a running answer or indexing is cancelled between chunks first). */
export async function deactivate(): Promise<void> {
  const client = activeClient;
  activeClient = undefined;
  await client?.dispose();
}
