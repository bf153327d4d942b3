// What Ask About Workspace puts in front of the question. Today: the active editor's text
// (or its selection), or a note that no file is open. The workspace ingestion change
// (src/engine/workspace, issue 4 item 3) replaces this file's body with files gathered through
// VS Code's API, honouring files.exclude and .gitignore; callers keep this signature.

import * as vscode from 'vscode';

export interface WorkspaceContext {
  /** The text to put before the question; each file introduced by its path. */
  text: string;
  /** Workspace-relative paths that went in. */
  filesIncluded: string[];
  /** Paths left out, with why. */
  filesSkipped: { path: string; reason: string }[];
}

export async function collectWorkspaceContext(maxFileBytes: number): Promise<WorkspaceContext> {
  const editor = vscode.window.activeTextEditor;
  if (!editor) {
    return { text: 'No file is open in the editor; only the active editor is read for now.\n', filesIncluded: [], filesSkipped: [] };
  }
  const document = editor.document;
  const relative = vscode.workspace.asRelativePath(document.uri);
  const content = editor.selection.isEmpty ? document.getText() : document.getText(editor.selection);
  if (Buffer.byteLength(content, 'utf8') > maxFileBytes) {
    return { text: '', filesIncluded: [], filesSkipped: [{ path: relative, reason: `larger than freqkv.maxFileBytes (${maxFileBytes} bytes)` }] };
  }
  return { text: `File: ${relative}\n${content}\n`, filesIncluded: [relative], filesSkipped: [] };
}
