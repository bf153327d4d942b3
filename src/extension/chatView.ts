// The chat view in the activity bar (a WebviewView the user can move to the secondary side
// bar): the conversation as a thread, with the question box below it.

import * as vscode from 'vscode';
import { attachChat, type ChatHandlers } from './chatWebview';

export class FreqKvChatView implements vscode.WebviewViewProvider {
  static readonly viewType = 'freqkv.chat';
  private view: vscode.WebviewView | undefined;

  constructor(
    private readonly extensionUri: vscode.Uri,
    /** The handlers need the extension's context, which holds this view: asked for when the view resolves. */
    private readonly handlers: () => ChatHandlers,
  ) {}

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    const attached = attachChat(view.webview, this.extensionUri, this.handlers(), 'view');
    view.onDidDispose(() => {
      attached.dispose();
      if (this.view === view) this.view = undefined;
    });
  }

  /** Shows the view (resolving it the first time), keeping the focus where it is. */
  async reveal(): Promise<void> {
    if (this.view) {
      this.view.show(true);
      return;
    }
    await vscode.commands.executeCommand(`${FreqKvChatView.viewType}.focus`);
  }
}
