// Reading a repo's file list from the hub (paginated), with bounded retries on transient
// failures, and the checks on the endpoint itself.

import { DownloadCancelledError, HubResponseError, NetworkError, RepoNotFoundError, UnsupportedRepoError } from './errors';
import { sleep } from './fetchFile';
import { DEFAULT_ENDPOINT, nextPageUrl, parseListing, treeUrl, type HubEntry } from './hub';

export interface RetrySettings {
  retries: number;
  retryDelayMs: number;
  idleTimeoutMs: number;
}

export async function listRepo(endpoint: string, repo: string, revision: string, signal: AbortSignal | undefined, settings: RetrySettings): Promise<HubEntry[]> {
  const entries: HubEntry[] = [];
  let url: string | undefined = treeUrl(endpoint, repo, revision);
  for (let page = 0; url && page < 100; page++) {
    const response = await getWithRetries(url, endpoint, signal, settings);
    if (response.status === 404 || response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      throw new RepoNotFoundError(`${endpoint} has no model ${repo} at revision ${revision} (HTTP ${response.status}). Check the name and the revision; private and gated repositories are not supported.`);
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new HubResponseError(`${url} answered ${response.status} ${response.statusText}; expected the repository's file list. Try again later.`);
    }
    let json: unknown;
    try {
      json = await response.json();
    } catch (error) {
      throw new HubResponseError(`${url} did not return JSON (${(error as Error).message}); is ${endpoint} a Hugging Face hub?`);
    }
    entries.push(...parseListing(json, url));
    url = nextPageUrl(response.headers.get('link'));
    if (url && !/^https?:/.test(url)) url = new URL(url, endpoint).toString();
  }
  return entries;
}

/** GET with bounded retries on network errors, stalls, 429 and 5xx; other replies are returned. */
async function getWithRetries(url: string, endpoint: string, signal: AbortSignal | undefined, settings: RetrySettings): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    if (signal?.aborted) throw new DownloadCancelledError('The download was cancelled while listing the repository; nothing was downloaded yet.');
    const timeout = AbortSignal.timeout(settings.idleTimeoutMs);
    let problem: string;
    try {
      const response = await fetch(url, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout, headers: { Accept: 'application/json' } });
      if (response.status !== 429 && response.status < 500) return response;
      await response.body?.cancel();
      problem = `HTTP ${response.status} ${response.statusText}`;
    } catch (error) {
      if (signal?.aborted) continue;
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      problem = timeout.aborted ? `no answer within ${Math.round(settings.idleTimeoutMs / 1000)} s` : (cause?.code ?? cause?.message ?? (error as Error).message);
    }
    if (attempt >= settings.retries) {
      throw new NetworkError(`Could not reach ${endpoint} (${problem}). The machine may be offline, or the endpoint may be wrong (a mirror can be set with --endpoint or freqkv.huggingFaceEndpoint).`);
    }
    await sleep(Math.min(30_000, settings.retryDelayMs * 2 ** attempt), signal).catch(() => undefined);
  }
}

export function checkEndpoint(endpoint: string): void {
  let parsed: URL;
  try {
    parsed = new URL(endpoint);
  } catch {
    throw new UnsupportedRepoError(`'${endpoint}' is not a URL; the endpoint is a hub address such as ${DEFAULT_ENDPOINT}.`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new UnsupportedRepoError(`The endpoint ${endpoint} is not http(s); use a hub address such as ${DEFAULT_ENDPOINT}.`);
}
