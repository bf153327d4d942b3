// What Ask About Workspace puts in front of the question: the workspace's files, listed and
// read through VS Code's API (workspaceSource.ts) and judged by the engine's ingestion (the
// same rules as `freqkv ask`), under a progress notification that counts files and tokens and
// can be cancelled. Tokens are counted by the engine worker with the loaded model's tokenizer.

import * as vscode from 'vscode';
import { IngestCancelledError, ingestEntries } from '../engine/workspace/ingest';
import { WorkspaceFilter } from '../engine/workspace/filter';
import type { IngestResult } from '../engine/workspace/types';
import type { EngineClient } from './engineClient';
import type { FreqKvSettings } from './settings';
import { vscodeWorkspaceEntries } from './workspaceSource';

export type WorkspaceContext = { kind: 'read'; ingest: IngestResult; readMs: number } | { kind: 'cancelled' };

/** Reads the workspace for a question; resolves to `cancelled` if the user cancels the notification. */
export async function collectWorkspaceContext(settings: FreqKvSettings, client: EngineClient): Promise<WorkspaceContext> {
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'FreqKV: reading the workspace', cancellable: true },
    async (progress, token) => {
      const controller = new AbortController();
      token.onCancellationRequested(() => controller.abort());
      return readWorkspace(settings, client, controller.signal, (message) => progress.report({ message }));
    },
  );
}

/** Reads the workspace without a notification (the file watcher's background refresh). */
export async function readWorkspace(settings: FreqKvSettings, client: EngineClient, signal?: AbortSignal, report?: (message: string) => void): Promise<WorkspaceContext> {
  const filter = new WorkspaceFilter({ include: settings.include, exclude: settings.exclude });
  const started = performance.now();
  let lastReport = 0;
  try {
    const ingest = await ingestEntries(vscodeWorkspaceEntries(filter), filter, {
      maxFileBytes: settings.maxFileBytes,
      maxTotalTokens: settings.maxWorkspaceTokens > 0 ? settings.maxWorkspaceTokens : undefined,
      countTokens: (text) => client.countTokens(text),
      signal,
      onProgress: (p) => {
        if (!report || performance.now() - lastReport < 200) return;
        lastReport = performance.now();
        report(`${p.filesSeen} files seen, ${p.filesIncluded} included, ${p.tokens.toLocaleString('en-US')} tokens`);
      },
    });
    return { kind: 'read', ingest, readMs: performance.now() - started };
  } catch (error) {
    if (error instanceof IngestCancelledError || signal?.aborted) return { kind: 'cancelled' };
    throw error;
  }
}
