// The Hugging Face hub's URL layout and file listing, and the choice of which files of a repo
// make a model folder the engine can load.
//
//   listing  GET {endpoint}/api/models/{owner}/{name}/tree/{revision}?recursive=true
//            → [{ type: 'file' | 'directory', path, size, oid, lfs?: { oid: sha256 hex, size } }]
//            (paginated with a `Link: <…>; rel="next"` header on large repos)
//   file     GET {endpoint}/{owner}/{name}/resolve/{revision}/{path}   (may redirect to a CDN)
//
// For a file stored with Git LFS, `lfs.oid` is the sha256 of the content and the top-level
// `oid` is the git hash of the small pointer file, so only `lfs` says anything about the bytes.
// For other files `oid` is the git blob hash: sha1("blob <size>\0" + content).

import { UnsupportedRepoError } from './errors';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';
export const DEFAULT_REVISION = 'main';
export const DEFAULT_VARIANT = 'q4';

/**
 * The models Download Model offers: the onnx-community ONNX export (`repo`; `approxBytes` is its
 * q4 download as listed on the hub, about) and the original weights a build variant converts
 * (`sourceRepo`; `approxSourceBytes` is bf16 safetensors, 2 bytes a parameter, about).
 */
export const SUPPORTED_MODELS = [
  { repo: 'onnx-community/Qwen2.5-Coder-0.5B-Instruct', label: 'Qwen2.5-Coder 0.5B Instruct', approxBytes: 870e6, sourceRepo: 'Qwen/Qwen2.5-Coder-0.5B-Instruct', approxSourceBytes: 0.99e9 },
  { repo: 'onnx-community/Qwen2.5-Coder-1.5B-Instruct', label: 'Qwen2.5-Coder 1.5B Instruct', approxBytes: 1.93e9, sourceRepo: 'Qwen/Qwen2.5-Coder-1.5B-Instruct', approxSourceBytes: 3.09e9 },
] as const;
export const DEFAULT_REPO = SUPPORTED_MODELS[0].repo;
/** The default repo of a build variant: the original Hugging Face weights. */
export const DEFAULT_BUILD_REPO = SUPPORTED_MODELS[0].sourceRepo;

/**
 * ONNX variants as onnx-community names them (onnx/<base>.onnx + onnx/<base>.onnx_data[_N]).
 * A downloaded folder holds exactly one variant; its freqkv-download.json records the graph, which
 * loading the folder picks (graphFile.ts).
 */
export const VARIANTS: Record<string, string> = {
  fp32: 'model',
  q4: 'model_q4',
  int8: 'model_int8',
  quantized: 'model_quantized',
  q4f16: 'model_q4f16',
  fp16: 'model_fp16',
};

/**
 * Build variants: the repo's original safetensors weights are downloaded and converted locally
 * by the project's builder (src/builder), with these weights; the graph it writes outputs only
 * the new cache rows (faster decoding than the onnx-community exports).
 */
export const BUILD_VARIANTS: Record<string, { weights: 'int4' | 'int8' }> = {
  'build-int4': { weights: 'int4' },
  'build-int8': { weights: 'int8' },
};

export function isBuildVariant(variant: string): boolean {
  return Object.hasOwn(BUILD_VARIANTS, variant);
}

/** Every variant name downloadModel accepts. */
export const ALL_VARIANTS = [...Object.keys(VARIANTS), ...Object.keys(BUILD_VARIANTS)];

/** The JSON files of a model folder; config.json and tokenizer.json are required. */
const REQUIRED_FILES = ['config.json', 'tokenizer.json'];
const OPTIONAL_FILES = ['generation_config.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja'];

export interface HubEntry {
  type: 'file' | 'directory';
  path: string;
  size: number;
  oid?: string;
  lfs?: { oid: string; size: number };
}

export interface RemoteFile {
  path: string;
  size: number;
  /** sha256 of the content (hex), for LFS files. */
  sha256?: string;
  /** git blob sha1 of the content (hex), for files stored in git itself. */
  gitOid?: string;
}

export function checkRepoId(repo: string): void {
  if (!/^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(repo) || repo.includes('..')) {
    throw new UnsupportedRepoError(`'${repo}' is not a Hugging Face model id; use owner/name, for example ${DEFAULT_REPO}.`);
  }
}

export function variantBase(variant: string): string {
  const base = VARIANTS[variant];
  if (!base) throw new UnsupportedRepoError(`Unknown ONNX variant '${variant}'; use one of ${ALL_VARIANTS.join(', ')}.`);
  return base;
}

/** Throws the unknown-variant error unless `variant` is an ONNX or a build variant. */
export function checkVariant(variant: string): void {
  if (!isBuildVariant(variant)) variantBase(variant);
}

export function treeUrl(endpoint: string, repo: string, revision: string): string {
  return `${trimSlash(endpoint)}/api/models/${repo}/tree/${encodeURIComponent(revision)}?recursive=true`;
}

export function fileUrl(endpoint: string, repo: string, revision: string, filePath: string): string {
  return `${trimSlash(endpoint)}/${repo}/resolve/${encodeURIComponent(revision)}/${filePath.split('/').map(encodeURIComponent).join('/')}`;
}

function trimSlash(endpoint: string): string {
  return endpoint.replace(/\/+$/, '');
}

/** Checks and normalizes one page of the tree listing. */
export function parseListing(json: unknown, where: string): HubEntry[] {
  if (!Array.isArray(json)) throw new UnsupportedRepoError(`${where} did not return a file list (got ${typeof json}); is the endpoint a Hugging Face hub?`);
  const entries: HubEntry[] = [];
  for (const item of json as unknown[]) {
    if (typeof item !== 'object' || item === null) continue;
    const e = item as Record<string, unknown>;
    if ((e.type !== 'file' && e.type !== 'directory') || typeof e.path !== 'string') continue;
    const lfs = e.lfs as Record<string, unknown> | undefined;
    entries.push({
      type: e.type,
      path: e.path,
      size: typeof e.size === 'number' ? e.size : 0,
      oid: typeof e.oid === 'string' ? e.oid : undefined,
      lfs: lfs && typeof lfs.oid === 'string' && typeof lfs.size === 'number' ? { oid: lfs.oid, size: lfs.size } : undefined,
    });
  }
  return entries;
}

/** The ONNX variants a listing holds, by our names (for messages). */
export function variantsIn(entries: HubEntry[]): string[] {
  const paths = new Set(entries.filter((e) => e.type === 'file').map((e) => e.path));
  return Object.entries(VARIANTS)
    .filter(([, base]) => paths.has(`onnx/${base}.onnx`))
    .map(([name]) => name);
}

/** The files of one model folder: the JSON files, one graph and its external data. */
export function chooseFiles(entries: HubEntry[], repo: string, variant: string): RemoteFile[] {
  if (isBuildVariant(variant)) return chooseSourceFiles(entries, repo, variant);
  const base = variantBase(variant);
  const files = new Map(entries.filter((e) => e.type === 'file').map((e) => [e.path, e]));
  for (const name of REQUIRED_FILES) {
    if (!files.has(name)) throw new UnsupportedRepoError(`${repo} has no ${name}; it is not a model folder in the Hugging Face layout. Supported: ${SUPPORTED_MODELS.map((m) => m.repo).join(', ')}.`);
  }
  const graph = `onnx/${base}.onnx`;
  if (!files.has(graph)) {
    const available = variantsIn(entries);
    throw new UnsupportedRepoError(
      available.length > 0
        ? `${repo} has no ${graph} (variant '${variant}'); it has the variants ${available.join(', ')}: pass one of them (--variant).`
        : `${repo} has no ONNX decoder (no onnx/model*.onnx); only ONNX exports such as ${DEFAULT_REPO} can be run.`,
    );
  }
  const dataFile = new RegExp(`^onnx/${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.onnx_data(_\\d+)?$`);
  const wanted = [...REQUIRED_FILES, ...OPTIONAL_FILES.filter((name) => files.has(name)), graph, ...[...files.keys()].filter((p) => dataFile.test(p)).sort()];
  return wanted.map((p) => toRemoteFile(files.get(p) as HubEntry));
}

/** Tokenizer and generation files a build copies or reads, when the repo has them. */
const SOURCE_OPTIONAL_FILES = ['generation_config.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'added_tokens.json'];
const SHARD = /^model-\d+-of-\d+\.safetensors$/;

/**
 * The files a build variant converts: config.json, the tokenizer (tokenizer.json, or vocab.json +
 * merges.txt), the optional JSON files, and model.safetensors or model.safetensors.index.json
 * with the shards model-NNNNN-of-NNNNN.safetensors beside it (the builder checks that every shard
 * the index names arrived).
 */
function chooseSourceFiles(entries: HubEntry[], repo: string, variant: string): RemoteFile[] {
  const files = new Map(entries.filter((e) => e.type === 'file').map((e) => [e.path, e]));
  const onnx = variantsIn(entries);
  const instead = onnx.length > 0 ? ` It has ONNX variants (${onnx.join(', ')}): pass one of them with --variant to download the export as it is.` : '';
  if (!files.has('config.json')) throw new UnsupportedRepoError(`${repo} has no config.json; it is not a model folder in the Hugging Face layout, so '${variant}' cannot build it. Use an original repo such as ${DEFAULT_BUILD_REPO}.${instead}`);
  const tokenizer = files.has('tokenizer.json') ? ['tokenizer.json'] : files.has('vocab.json') && files.has('merges.txt') ? ['vocab.json', 'merges.txt'] : undefined;
  if (!tokenizer) throw new UnsupportedRepoError(`${repo} has neither tokenizer.json nor vocab.json + merges.txt, so '${variant}' cannot build a model folder from it. Use an original repo such as ${DEFAULT_BUILD_REPO}.`);
  let weights: string[];
  if (files.has('model.safetensors.index.json')) {
    weights = ['model.safetensors.index.json', ...[...files.keys()].filter((p) => SHARD.test(p)).sort()];
    if (weights.length === 1) throw new UnsupportedRepoError(`${repo} has model.safetensors.index.json but no shards named model-NNNNN-of-NNNNN.safetensors; '${variant}' cannot build it.`);
  } else if (files.has('model.safetensors')) {
    weights = ['model.safetensors'];
  } else {
    throw new UnsupportedRepoError(
      `${repo} has no safetensors weights (neither model.safetensors nor model.safetensors.index.json), which the build variant '${variant}' converts. Use the original Hugging Face repo of the model, such as ${DEFAULT_BUILD_REPO}.${instead}`,
    );
  }
  const wanted = ['config.json', ...SOURCE_OPTIONAL_FILES.filter((name) => files.has(name)), ...tokenizer, ...weights];
  return wanted.map((p) => toRemoteFile(files.get(p) as HubEntry));
}

function toRemoteFile(entry: HubEntry): RemoteFile {
  if (entry.lfs) return { path: entry.path, size: entry.lfs.size, sha256: entry.lfs.oid.toLowerCase() };
  return { path: entry.path, size: entry.size, gitOid: entry.oid?.toLowerCase() };
}

/** The next page of a paginated listing, from a `Link: <url>; rel="next"` header. */
export function nextPageUrl(link: string | null): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(',')) {
    const match = /<([^>]+)>\s*;\s*rel="?next"?/.exec(part);
    if (match) return match[1];
  }
  return undefined;
}
