// Errors raised while downloading a model from a Hugging Face hub (or a mirror of one). Each
// message says what went wrong and what to do; partial data is kept unless it is known bad.

import { FreqKvError } from '../../errors';

/** The hub answered 404 (or 401/403) for the repository, the revision or a file it listed. */
export class RepoNotFoundError extends FreqKvError {}

/** The hub could not be reached (refused, unknown host, timed out, dropped connections). */
export class NetworkError extends FreqKvError {}

/** The hub answered with a status the download cannot use (a 5xx after the retries, a bad listing). */
export class HubResponseError extends FreqKvError {}

/** A downloaded file has the wrong size or hash; the bad file has been deleted. */
export class IntegrityError extends FreqKvError {}

/** The disk is full, or too full for the files still to download. */
export class DiskFullError extends FreqKvError {}

/** The repository is not a model the engine can run: no ONNX variant, no config.json, a bad id. */
export class UnsupportedRepoError extends FreqKvError {}

/** The download was cancelled; what was downloaded is kept for the next run to resume. */
export class DownloadCancelledError extends FreqKvError {}

/** Another process is downloading into the same folder. */
export class DownloadInProgressError extends FreqKvError {}
