// The chat in an editor tab ("Open in Editor"): the same webview as the chat view, in a
// WebviewPanel that VS Code restores after a reload (registerWebviewPanelSerializer).

import * as vscode from 'vscode';
import { attachChat, chatWebviewOptions, type ChatHandlers } from './chatWebview';

export class FreqKvPanel {
  static readonly viewType = 'freqkv.panel';
  private static current: FreqKvPanel | undefined;

  private constructor(
    private readonly panel: vscode.WebviewPanel,
    extensionUri: vscode.Uri,
    handlers: ChatHandlers,
  ) {
    const attached = attachChat(panel.webview, extensionUri, handlers, 'editor');
    panel.onDidDispose(() => {
      attached.dispose();
      if (FreqKvPanel.current === this) FreqKvPanel.current = undefined;
    });
  }

  /** Shows the panel, creating it the first time. */
  static show(extensionUri: vscode.Uri, handlers: ChatHandlers): FreqKvPanel {
    if (FreqKvPanel.current) {
      FreqKvPanel.current.panel.reveal(undefined, true);
      return FreqKvPanel.current;
    }
    const panel = vscode.window.createWebviewPanel(FreqKvPanel.viewType, 'FreqKV Chat', { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, {
      ...chatWebviewOptions(extensionUri),
      // The conversation lives in the webview's DOM; keep it while the panel is hidden.
      retainContextWhenHidden: true,
    });
    FreqKvPanel.current = new FreqKvPanel(panel, extensionUri, handlers);
    return FreqKvPanel.current;
  }

  /** Takes over a panel VS Code restored after a reload. */
  static revive(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, handlers: ChatHandlers): FreqKvPanel {
    FreqKvPanel.current?.panel.dispose();
    FreqKvPanel.current = new FreqKvPanel(panel, extensionUri, handlers);
    return FreqKvPanel.current;
  }
}
