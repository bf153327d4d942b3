// What the chat view (activity bar) and the editor-tab panel share: the HTML, the options, the
// routing of the webview's messages to the handlers, and one `post` that reaches every open
// chat. Security defaults of vscode-extension-samples: CSP default-src 'none', the one script
// by nonce, styles only from the extension, localResourceRoots = media + dist.

import * as crypto from 'node:crypto';
import * as vscode from 'vscode';
import type { ConversationTurn, HostToWebviewMessage, WebviewToHost, WebviewToHostMessage } from '../protocol';

/** What the chat's buttons and links do (commands.ts); `reply` posts to the chat that sent the message only. */
export type ChatHandlers = { [K in keyof WebviewToHost]: (message: WebviewToHost[K], reply: (message: HostToWebviewMessage) => void) => void } & {
  /** The conversation so far, posted to a chat when its script says 'ready'. */
  history(): ConversationTurn[];
};

/**
 * A webview drops what it is sent before its script's listener exists, so a question asked while
 * a chat is still loading would stream into nothing. Until the chat says 'ready' its messages
 * wait here; on 'ready' it gets the turns finished before it was attached, then those messages.
 */
interface Delivery {
  undelivered: HostToWebviewMessage[] | undefined;
  earlierTurns: ConversationTurn[];
}

const open = new Map<vscode.Webview, Delivery>();

/** Posts to every open chat: the view and the editor tab, if open (kept until each is ready). */
export function postToChats(message: HostToWebviewMessage): void {
  for (const [webview, delivery] of open) {
    if (delivery.undelivered) delivery.undelivered.push(message);
    else void webview.postMessage(message);
  }
}

export function chatWebviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
  return { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'media'), vscode.Uri.joinPath(extensionUri, 'dist')] };
}

/** Fills `webview` with the chat and routes its messages; the returned disposable detaches it. */
export function attachChat(webview: vscode.Webview, extensionUri: vscode.Uri, handlers: ChatHandlers, place: 'view' | 'editor'): vscode.Disposable {
  webview.options = chatWebviewOptions(extensionUri);
  webview.html = chatHtml(webview, extensionUri, place);
  const delivery: Delivery = { undelivered: [], earlierTurns: handlers.history() };
  open.set(webview, delivery);
  const listener = webview.onDidReceiveMessage((message: WebviewToHostMessage) => {
    if (message.type === 'ready') {
      // A reloaded webview says 'ready' again: it starts from the whole history.
      const queued = delivery.undelivered ?? [];
      const turns = delivery.undelivered ? delivery.earlierTurns : handlers.history();
      delivery.undelivered = undefined;
      void webview.postMessage({ type: 'history', turns } satisfies HostToWebviewMessage);
      for (const queuedMessage of queued) void webview.postMessage(queuedMessage);
    }
    const handler = handlers[message.type] as ((payload: WebviewToHostMessage, reply: (message: HostToWebviewMessage) => void) => void) | undefined;
    handler?.(message, (reply) => void webview.postMessage(reply));
  });
  return new vscode.Disposable(() => {
    open.delete(webview);
    listener.dispose();
  });
}

function chatHtml(webview: vscode.Webview, extensionUri: vscode.Uri, place: 'view' | 'editor'): string {
  const nonce = crypto.randomBytes(16).toString('base64');
  const script = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview.js'));
  const style = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', 'chat.css'));
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
<body class="${place}">
<div id="notice" class="notice" hidden></div>
<div id="thread" aria-live="polite">
  <div id="empty" class="empty">
    <p>Ask about the files of this workspace. The model runs on this machine; nothing leaves it.</p>
    <p>Each answer shows which files it read, at which resolution the cache holds them, and what the cache cost.</p>
  </div>
</div>
<details id="cache-status" hidden><summary>Cache statistics</summary><div id="cache-status-body"></div></details>
<form id="ask-form">
  <textarea id="question" rows="3" placeholder="Ask about the workspace… (Enter to send, Shift+Enter for a new line)" aria-label="Question"></textarea>
  <div class="buttons">
    <button type="submit" id="ask">Ask</button>
    <button type="button" id="cancel" class="secondary" hidden>Cancel</button>
    <span class="spacer"></span>
    <button type="button" id="new-chat" class="secondary" title="Start a new conversation: follow-up questions no longer see the earlier turns">New chat</button>
    ${place === 'view' ? '<button type="button" id="open-in-editor" class="secondary" title="Open the chat in an editor tab">Open in editor</button>' : ''}
  </div>
</form>
<script nonce="${nonce}" src="${script}"></script>
</body>
</html>`;
}
