// The extension's entry point: wires the engine client, the status bar, the panel and the
// commands, and returns. The work happens in the engine worker (dist/worker.js); see
// ARCHITECTURE.md. Command ids are listed in package.json contributes.commands.

import * as path from 'node:path';
import * as vscode from 'vscode';
import { EngineClient } from './engineClient';
import { panelHandlers, refreshSegments, registerCommands, type FreqKvContext } from './commands';
import { FreqKvPanel } from './panel';
import { statusBarText, statusBarTooltip } from './statusText';

export function activate(context: vscode.ExtensionContext): void {
  const client = new EngineClient(path.join(context.extensionPath, 'dist', 'worker.js'));
  const status = vscode.window.createStatusBarItem('freqkv.cache', vscode.StatusBarAlignment.Right, 100);
  status.name = 'FreqKV cache';
  status.command = 'freqkv.showStats';
  status.text = statusBarText(null);
  status.tooltip = statusBarTooltip(null, null);
  status.show();
  const output = vscode.window.createOutputChannel('FreqKV', { log: true });

  const freqkv: FreqKvContext = { extension: context, client, status, output, loadedModel: undefined };
  registerCommands(freqkv);
  // After a window reload VS Code restores an open panel; the webview asks for the conversation again.
  context.subscriptions.push(
    vscode.window.registerWebviewPanelSerializer(FreqKvPanel.viewType, {
      deserializeWebviewPanel: async (panel) => {
        FreqKvPanel.revive(panel, context.extensionUri, panelHandlers(freqkv));
      },
    }),
  );
  context.subscriptions.push(status, output, {
    dispose: () => void client.dispose(),
  });
  // Incremental segments: an edited, added or deleted file is re-read (only it is prefilled again)
  // a few seconds after the last change, when the engine is idle.
  const watcher = vscode.workspace.createFileSystemWatcher('**/*');
  let refreshTimer: ReturnType<typeof setTimeout> | undefined;
  const scheduleRefresh = (): void => {
    if (!freqkv.segmentsInUse) return;
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => void refreshSegments(freqkv), 3000);
  };
  context.subscriptions.push(watcher, watcher.onDidChange(scheduleRefresh), watcher.onDidCreate(scheduleRefresh), watcher.onDidDelete(scheduleRefresh), {
    dispose: () => clearTimeout(refreshTimer),
  });
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
