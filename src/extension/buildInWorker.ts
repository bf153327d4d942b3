// The extension's ModelBuilder for Download Model's build variants: the conversion runs in a
// worker thread (dist/build-worker.js), so the extension host keeps answering while it runs, and
// a cancel terminates it at once.

import { Worker } from 'node:worker_threads';
import type { ModelBuilder } from '../engine/model/download/download';
import { FreqKvError } from '../engine/errors';
import type { BuildWorkerData, BuildWorkerReply } from '../worker/buildWorker';

/** A conversion that failed in the build worker (the builder's error name and message). */
export class BuildFailedError extends FreqKvError {}

export function buildInWorker(workerPath: string): ModelBuilder {
  return (sourceDir, outDir, options, signal) =>
    new Promise<void>((resolve, reject) => {
      const worker = new Worker(workerPath, { workerData: { sourceDir, outDir, options } satisfies BuildWorkerData });
      let settled = false;
      const settle = (error?: Error): void => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', stop);
        if (error) reject(error);
        else resolve();
      };
      const stop = (): void => {
        void worker.terminate();
        settle(new BuildFailedError('The conversion was cancelled.'));
      };
      if (signal?.aborted) return stop();
      signal?.addEventListener('abort', stop, { once: true });
      worker.once('message', (reply: BuildWorkerReply) => settle(reply.ok ? undefined : new BuildFailedError(`${reply.name}: ${reply.message}`)));
      worker.once('error', (error) => settle(new BuildFailedError(`the build worker failed: ${error.message}`)));
      worker.once('exit', (code) => settle(new BuildFailedError(`the build worker exited (code ${code}) without an answer.`)));
    });
}
