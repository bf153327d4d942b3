// The extension's entry point: wires the engine client, the status bar, the chat view, the
// editor-tab panel and the commands, and returns. It activates on use (a command, the chat
// view, a restored panel), so a window that never uses FreqKV has none of this. The work
// happens in the engine worker (dist/worker.js); see docs/architecture.md. Command ids are
// listed in package.json contributes.commands.

import * as path from 'node:path';
import * as vscode from 'vscode';
import { EngineClient } from './engineClient';
import { chatHandlers, refreshSegments, registerCommands, trackLastTextEditor, type FreqKvContext } from './commands';
import { FreqKvPanel } from './panel';
import { FreqKvChatView } from './chatView';
import { FreqKvStatusBar } from './statusBar';

export function activate(context: vscode.ExtensionContext): void {
  const client = new EngineClient(path.join(context.extensionPath, 'dist', 'worker.js'));
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
  // Incremental segments: once a segmented question has run, an edited, added or deleted file is
  // re-read (only it is prefilled again) a few seconds after the last change, when the engine is idle.
  let watcher: vscode.FileSystemWatcher | undefined;
  let refreshTimer: ReturnType<typeof setTimeout> | undefined;
  const scheduleRefresh = (): void => {
    if (!freqkv.segmentsInUse) return;
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => void refreshSegments(freqkv), 3000);
  };
  freqkv.watchFiles = () => {
    if (watcher) return;
    watcher = vscode.workspace.createFileSystemWatcher('**/*');
    context.subscriptions.push(watcher, watcher.onDidChange(scheduleRefresh), watcher.onDidCreate(scheduleRefresh), watcher.onDidDelete(scheduleRefresh));
  };
  context.subscriptions.push({ dispose: () => clearTimeout(refreshTimer) });
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((event) => {
      // A new model path, graph file or thread count takes effect on the next request.
      if (['freqkv.modelPath', 'freqkv.onnxFile', 'freqkv.threads'].some((name) => event.affectsConfiguration(name))) freqkv.loadedModel = undefined;
    }),
  );
}

export function deactivate(): void {
  // The client is disposed through context.subscriptions.
}
