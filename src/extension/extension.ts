// The extension's entry point: wires the engine client, the status bar, the panel and the
// commands, and returns. The work happens in the engine worker (dist/worker.js); see
// ARCHITECTURE.md. Command ids are listed in package.json contributes.commands.

import * as path from 'node:path';
import * as vscode from 'vscode';
import { EngineClient } from './engineClient';
import { indexPathOf, panelHandlers, registerCommands, showIndexStatus, type FreqKvContext } from './commands';
import { FreqKvPanel } from './panel';
import { statusBarText, statusBarTooltip } from './statusText';

/** The engine client of the active extension: deactivate waits for its worker to stop. */
let activeClient: EngineClient | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const client = new EngineClient(path.join(context.extensionPath, 'dist', 'worker.js'));
  activeClient = client;
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
  client.onIndexStatus((status) => showIndexStatus(freqkv, status));
  // The workspace index learns of edited, added and deleted files from the watcher: their paths
  // go to the worker, whose next refresh (a question, or background indexing) reads only those.
  const watcher = vscode.workspace.createFileSystemWatcher('**/*');
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
  context.subscriptions.push(watcher, watcher.onDidChange(onChange), watcher.onDidCreate(onChange), watcher.onDidDelete(onChange), {
    dispose: () => clearTimeout(flushTimer),
  });
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((event) => {
      // A new model path or thread count takes effect on the next request.
      if (event.affectsConfiguration('freqkv.modelPath') || event.affectsConfiguration('freqkv.threads')) freqkv.loadedModel = undefined;
    }),
  );
}

/** Waits until the worker has stopped (a running answer or indexing is cancelled between chunks first). */
export async function deactivate(): Promise<void> {
  const client = activeClient;
  activeClient = undefined;
  await client?.dispose();
}
