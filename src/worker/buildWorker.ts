// The thread a build variant of Download Model converts in when the extension runs it
// (dist/build-worker.js): one conversion per worker, given as workerData, answered with one
// message. The conversion is synchronous for tens of seconds, so the extension host must not run
// it on its own thread; cancelling terminates this worker.

import { parentPort, workerData } from 'node:worker_threads';
import { convertSafetensorsFolder } from '../builder/convertSafetensors';
import type { BuildOptions } from '../engine/model/download/download';

export interface BuildWorkerData {
  sourceDir: string;
  outDir: string;
  options: BuildOptions;
}

export type BuildWorkerReply = { ok: true } | { ok: false; name: string; message: string };

const { sourceDir, outDir, options } = workerData as BuildWorkerData;
convertSafetensorsFolder(sourceDir, outDir, options).then(
  () => parentPort?.postMessage({ ok: true } satisfies BuildWorkerReply),
  (error: unknown) => {
    const failure = error instanceof Error ? error : new Error(String(error));
    parentPort?.postMessage({ ok: false, name: failure.name, message: failure.message } satisfies BuildWorkerReply);
  },
);
