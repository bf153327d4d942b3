// Download Model's public face: downloadModel with the full model folder check
// (inspectModelFolder reads the graph and its external data), and everything callers need.
// The extension host imports ./download directly, which checks config.json only.

import { inspectModelFolder } from '../modelFolder';
import { downloadModel as downloadFiles, type DownloadModelOptions, type DownloadResult } from './download';

export * from './errors';
export { DEFAULT_ENDPOINT, DEFAULT_REPO, DEFAULT_REVISION, DEFAULT_VARIANT, SUPPORTED_MODELS, VARIANTS, type RemoteFile } from './hub';
export { formatBytes } from './fetchFile';
export type { DownloadModelOptions, DownloadProgress, DownloadResult } from './download';

export function downloadModel(options: DownloadModelOptions): Promise<DownloadResult> {
  return downloadFiles({ ...options, check: options.check ?? ((dir) => void inspectModelFolder(dir)) });
}
