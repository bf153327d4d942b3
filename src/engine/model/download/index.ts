// Download Model's public face: downloadModel with the full model folder check
// (inspectModelFolder reads the graph and its external data), and everything callers need.
// The extension host imports ./download directly, which checks config.json only.

import { convertSafetensorsFolder } from '../../../builder/convertSafetensors';
import { inspectModelFolder } from '../modelFolder';
import { downloadModel as downloadFiles, type DownloadModelOptions, type DownloadResult, type ModelBuilder } from './download';

export * from './errors';
export { ALL_VARIANTS, BUILD_VARIANTS, DEFAULT_BUILD_REPO, DEFAULT_ENDPOINT, DEFAULT_REPO, DEFAULT_REVISION, DEFAULT_VARIANT, isBuildVariant, SUPPORTED_MODELS, VARIANTS, type RemoteFile } from './hub';
export { formatBytes } from './fetchFile';
export type { BuildOptions, DownloadModelOptions, DownloadProgress, DownloadResult, ModelBuilder } from './download';

/** The builder in this thread (it blocks the thread while it writes the graph: tens of seconds for 0.5B parameters). */
export const buildInThisThread: ModelBuilder = async (sourceDir, outDir, options) => {
  await convertSafetensorsFolder(sourceDir, outDir, options);
};

export function downloadModel(options: DownloadModelOptions): Promise<DownloadResult> {
  return downloadFiles({ ...options, check: options.check ?? ((dir) => void inspectModelFolder(dir)), build: options.build ?? buildInThisThread });
}
