// The FreqKV webview panel: a question box, the streamed answer, live statistics. Security
// defaults of vscode-extension-samples: CSP default-src 'none', the one script by nonce,
// localResourceRoots = media + dist. Messages both ways are the protocol's typed unions.

import * as crypto from 'node:crypto';
import * as vscode from 'vscode';
import type { ConversationTurn, HostToWebviewMessage, WebviewToHostMessage } from '../protocol';

export interface PanelHandlers {
  ask(question: string): void;
  cancel(): void;
  clearCache(): void;
  /** The conversation so far, replayed into a new (or restored) panel once its script runs. */
  history(): ConversationTurn[];
  ready(): void;
  openFile(relativePath: string): void;
}

export class FreqKvPanel {
  static readonly viewType = 'freqkv.panel';
  private static current: FreqKvPanel | undefined;
  /**
   * Messages posted before the webview's script has said 'ready': a webview drops what it is
   * sent before its listener exists, so a question asked while the panel is still loading would
   * stream into nothing. They are delivered, in order, after the history, on 'ready'.
   */
  private undelivered: HostToWebviewMessage[] | undefined = [];
  /** The turns finished before this panel existed; later ones are in `undelivered`. */
  private readonly earlierTurns: ConversationTurn[];

  private constructor(
    private readonly panel: vscode.WebviewPanel,
    extensionUri: vscode.Uri,
    handlers: PanelHandlers,
  ) {
    this.earlierTurns = handlers.history();
    panel.webview.html = panelHtml(panel.webview, extensionUri);
    panel.webview.onDidReceiveMessage((message: WebviewToHostMessage) => {
      switch (message.type) {
        case 'ask':
          handlers.ask(message.question);
          break;
        case 'cancel':
          handlers.cancel();
          break;
        case 'clearCache':
          handlers.clearCache();
          break;
        case 'ready': {
          // A reloaded webview says 'ready' again: it starts from the whole history.
          const queued = this.undelivered ?? [];
          const history = this.undelivered ? this.earlierTurns : handlers.history();
          this.undelivered = undefined;
          this.deliver({ type: 'history', turns: history });
          for (const queuedMessage of queued) this.deliver(queuedMessage);
          handlers.ready();
          break;
        }
        case 'openFile':
          handlers.openFile(message.path);
          break;
      }
    });
    panel.onDidDispose(() => {
      if (FreqKvPanel.current === this) FreqKvPanel.current = undefined;
    });
  }

  /** Shows the panel, creating it the first time. */
  static show(extensionUri: vscode.Uri, handlers: PanelHandlers): FreqKvPanel {
    if (FreqKvPanel.current) {
      FreqKvPanel.current.panel.reveal(undefined, true);
      return FreqKvPanel.current;
    }
    const panel = vscode.window.createWebviewPanel(FreqKvPanel.viewType, 'FreqKV', { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, {
      enableScripts: true,
      // The conversation lives in the webview's DOM; keep it while the panel is hidden.
      retainContextWhenHidden: true,
      localResourceRoots: localResourceRoots(extensionUri),
    });
    FreqKvPanel.current = new FreqKvPanel(panel, extensionUri, handlers);
    return FreqKvPanel.current;
  }

  /** Takes over a panel VS Code restored after a reload (registerWebviewPanelSerializer). */
  static revive(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, handlers: PanelHandlers): FreqKvPanel {
    panel.webview.options = { enableScripts: true, localResourceRoots: localResourceRoots(extensionUri) };
    FreqKvPanel.current?.panel.dispose();
    FreqKvPanel.current = new FreqKvPanel(panel, extensionUri, handlers);
    return FreqKvPanel.current;
  }

  /** Posts to the open panel, if there is one (kept until its script is ready). */
  static post(message: HostToWebviewMessage): void {
    const current = FreqKvPanel.current;
    if (!current) return;
    if (current.undelivered) current.undelivered.push(message);
    else current.deliver(message);
  }

  private deliver(message: HostToWebviewMessage): void {
    void this.panel.webview.postMessage(message);
  }
}

function localResourceRoots(extensionUri: vscode.Uri): vscode.Uri[] {
  return [vscode.Uri.joinPath(extensionUri, 'media'), vscode.Uri.joinPath(extensionUri, 'dist')];
}

function panelHtml(webview: vscode.Webview, extensionUri: vscode.Uri): string {
  const nonce = crypto.randomBytes(16).toString('base64');
  const script = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview.js'));
  const style = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', 'panel.css'));
  const csp = [`default-src 'none'`, `style-src ${webview.cspSource}`, `img-src ${webview.cspSource}`, `script-src 'nonce-${nonce}'`].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${style}">
<title>FreqKV</title>
</head>
<body>
<div id="notice" class="notice" hidden></div>
<form id="ask-form">
  <textarea id="question" rows="3" placeholder="Ask about the workspace…" aria-label="Question"></textarea>
  <div class="buttons">
    <button type="submit" id="ask">Ask</button>
    <button type="button" id="cancel" disabled>Cancel</button>
    <button type="button" id="clear">Clear cache</button>
  </div>
</form>
<details id="files" hidden></details>
<div id="conversation" aria-live="polite"></div>
<section id="stats-section">
  <h2>Cache statistics</h2>
  <dl id="stats"></dl>
  <h3>Cache rows (line: capacity) against tokens seen</h3>
  <div id="chart"></div>
</section>
<script nonce="${nonce}" src="${script}"></script>
</body>
</html>`;
}
