// FreqKV: Download Model. A QuickPick of the supported models, then the engine's downloadModel
// (src/engine/model/download) in a cancellable progress notification, into
// globalStorage/models/<repo name>. On success the user can make it freqkv.modelPath; the
// extension reloads the model when that setting changes. A cancelled or failed download keeps
// what arrived, and running the command again resumes it. After the ONNX exports the list offers
// each model's original weights built here (variant build-int4, into <repo name>-build-int4):
// the conversion runs in a worker thread (buildInWorker.ts).

import * as path from 'node:path';
import * as vscode from 'vscode';
// ./download, not the index: no ONNX reader in the extension host (the worker checks the graph on load).
import { downloadModel, type DownloadProgress, type DownloadResult } from '../engine/model/download/download';
import { DownloadCancelledError } from '../engine/model/download/errors';
import { formatBytes } from '../engine/model/download/fetchFile';
import { SUPPORTED_MODELS } from '../engine/model/download/hub';
import { buildInWorker } from './buildInWorker';
import { readSettings } from './settings';

const USE = 'Use This Model';
const RETRY = 'Retry';

/** Runs the command; resolves with the model folder when one was downloaded (or already there). */
export async function downloadModelCommand(context: vscode.ExtensionContext, output: vscode.LogOutputChannel): Promise<string | undefined> {
  const exports = SUPPORTED_MODELS.map((model) => ({
    label: model.label,
    description: model.repo,
    detail: `About ${formatBytes(model.approxBytes)} to download (ONNX, int4 weights)`,
    repo: model.repo,
    variant: undefined as string | undefined,
  }));
  const builds = SUPPORTED_MODELS.map((model) => ({
    label: `${model.label}, built from the original weights`,
    description: model.sourceRepo,
    detail: `About ${formatBytes(model.approxSourceBytes)} to download, then built here with int4 weights (faster decoding; a minute or more and a few GB of memory)`,
    repo: model.sourceRepo as string,
    variant: 'build-int4' as string | undefined,
  }));
  const picked = await vscode.window.showQuickPick([...exports, ...builds], { title: 'FreqKV: Download Model', placeHolder: 'A model to download from Hugging Face into the extension’s storage' });
  if (!picked) return undefined;
  const name = picked.repo.split('/').pop() ?? 'model';
  const dest = path.join(context.globalStorageUri.fsPath, 'models', picked.variant ? `${name}-${picked.variant}` : name);

  for (;;) {
    const endpoint = readSettings().huggingFaceEndpoint;
    output.info(`Downloading ${picked.repo} from ${endpoint} into ${dest}`);
    try {
      const result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `FreqKV: downloading ${picked.label}`, cancellable: true },
        (progress, token) => {
          const controller = new AbortController();
          token.onCancellationRequested(() => controller.abort());
          let shown = 0;
          return downloadModel({
            repo: picked.repo,
            variant: picked.variant,
            build: buildInWorker(path.join(context.extensionPath, 'dist', 'build-worker.js')),
            dest,
            endpoint,
            signal: controller.signal,
            onProgress: (p) => {
              const percent = p.bytesTotal > 0 ? (100 * p.bytesDone) / p.bytesTotal : 0;
              progress.report({ increment: Math.max(0, percent - shown), message: progressMessage(p) });
              shown = Math.max(shown, percent);
            },
          });
        },
      );
      output.info(summary(result));
      const choice = await vscode.window.showInformationMessage(`FreqKV: ${picked.label} is ready (${formatBytes(result.bytesTotal)} in ${result.dir}).`, USE);
      if (choice === USE) {
        const settings = vscode.workspace.getConfiguration('freqkv');
        await settings.update('modelPath', result.dir, vscode.ConfigurationTarget.Global);
        // The folder records the graph it holds; a graph named for another model would not be there.
        if (settings.get<string>('onnxFile', '').trim() !== '') await settings.update('onnxFile', undefined, vscode.ConfigurationTarget.Global);
      }
      return result.dir;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (error instanceof DownloadCancelledError) {
        output.info(message);
        void vscode.window.showInformationMessage(`FreqKV: ${message}`);
        return undefined;
      }
      output.error(`${error instanceof Error ? error.name : 'Error'}: ${message}`);
      const choice = await vscode.window.showErrorMessage(`FreqKV: ${message}`, RETRY);
      if (choice !== RETRY) return undefined;
    }
  }
}

function progressMessage(p: DownloadProgress): string {
  if (p.phase === 'listing') return 'listing files…';
  if (p.phase === 'installing') return 'checking the folder…';
  if (p.phase === 'converting') return `building the model from ${p.file ?? 'the weights'}…`;
  const rate = p.bytesPerSecond > 0 ? ` at ${formatBytes(p.bytesPerSecond)}/s` : '';
  const verb = p.phase === 'verifying' ? 'checking' : 'file';
  return `${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal)}${rate} · ${verb} ${p.filesDone + 1}/${p.filesTotal}: ${p.file ?? ''}`;
}

function summary(result: DownloadResult): string {
  if (result.alreadyPresent) return `${result.repo} is already in ${result.dir}; nothing fetched.`;
  return `${result.repo} (${result.variant}): ${formatBytes(result.bytesTotal)} in ${result.files.length} files into ${result.dir}; ${formatBytes(result.bytesFetched)} fetched, ${formatBytes(result.bytesResumed)} resumed, ${result.seconds.toFixed(1)} s.`;
}
