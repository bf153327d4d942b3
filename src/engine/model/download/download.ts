// Download Model: fetches one ONNX variant of a model repo from a Hugging Face hub into a model
// folder the engine loads. Files go to `<dest>.partial/` (each one as `<file>.part` until its
// size and hash check out); when every file is there and the folder passes the check,
// `<dest>.partial` is renamed to `<dest>`, so `<dest>` is never half-written. A cancelled or
// failed run keeps `<dest>.partial` and the next run resumes it. `<dest>/freqkv-download.json`
// records what was downloaded, including which graph (`onnxFile`, which loading the folder then
// picks); a later run with the same listing does nothing.
//
// A build variant (build-int4, build-int8) fetches the repo's original safetensors weights into
// `<dest>.partial` the same way, then converts them with the project's builder into
// `<dest>.build/model` (the 'converting' phase), checks that folder and renames it to `<dest>`; the
// downloaded weights are deleted after a successful build and kept in `<dest>.partial` when it
// fails, so a rerun converts again without downloading. The manifest records the source files
// (with their hashes), the builder options and the files built; a rerun with the same listing
// and options does nothing.
//
// This module does not import the ONNX reader (so the extension host can use it without
// bundling protobufjs): by default the finished folder is only checked for a config.json the
// engine runs, and a build variant needs the caller to pass `build`. index.ts wraps it to run the
// full inspectModelFolder check and the builder in this thread.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseHfConfig } from '../modelConfig';
import { FreqKvError } from '../../errors';
import { DiskFullError, DownloadCancelledError, UnsupportedRepoError } from './errors';
import { fetchFile, formatBytes, freeBytes, sizeOf } from './fetchFile';
import { install, lock, MANIFEST, PARTIAL_LISTING, readManifest, removeStrayFiles, sameDownload, type BuildRecord, type Manifest } from './folderState';
import { BUILD_VARIANTS, checkRepoId, checkVariant, chooseFiles, DEFAULT_BUILD_REPO, DEFAULT_ENDPOINT, DEFAULT_REPO, DEFAULT_REVISION, DEFAULT_VARIANT, fileUrl, isBuildVariant, type RemoteFile } from './hub';
import { checkEndpoint, listRepo } from './listing';

export interface DownloadModelOptions {
  /** owner/name on the hub (default onnx-community/Qwen2.5-Coder-0.5B-Instruct; for a build variant Qwen/Qwen2.5-Coder-0.5B-Instruct). */
  repo?: string;
  revision?: string;
  /** ONNX variant: q4 (default), fp32, int8, quantized, q4f16, fp16; or a build variant: build-int4, build-int8. */
  variant?: string;
  /** The model folder to create (replaced if it exists and differs). */
  dest: string;
  /** The hub or a mirror of it (default https://huggingface.co). */
  endpoint?: string;
  signal?: AbortSignal;
  onProgress?: (progress: DownloadProgress) => void;
  /** Retries of a request that fails transiently without progress (default 3). */
  retries?: number;
  /** First backoff delay (default 1000 ms; doubles per retry). */
  retryDelayMs?: number;
  /** A request receiving nothing for this long is retried (default 60 s). */
  idleTimeoutMs?: number;
  /**
   * Checks the finished folder before it is put in place; throws a FreqKvError if the engine
   * cannot run it. Default: config.json describes a model the engine runs.
   */
  check?: (dir: string) => void;
  /** Converts a downloaded safetensors folder into a model folder (needed for a build variant). */
  build?: ModelBuilder;
}

/** What a build variant asks the builder for: the options of writeModelFolder (src/builder/modelFolderWriter.ts). */
export interface BuildOptions {
  weights: 'int4' | 'int8';
  kvCache: 'float32';
  externalData: 'auto';
}

/**
 * Writes the model folder `outDir` from the Hugging Face folder `sourceDir`. It may stop early
 * (rejecting) once `signal` is aborted; downloadModel checks the signal before and after.
 */
export type ModelBuilder = (sourceDir: string, outDir: string, options: BuildOptions, signal?: AbortSignal) => Promise<void>;

export interface DownloadProgress {
  phase: 'listing' | 'downloading' | 'verifying' | 'converting' | 'installing';
  /** The file being fetched or checked. */
  file?: string;
  fileBytes: number;
  fileSize: number;
  /** Bytes on disk of all files (complete files, plus the current one so far). */
  bytesDone: number;
  bytesTotal: number;
  filesDone: number;
  filesTotal: number;
  /** Network bytes per second over the last few seconds (0 before any). */
  bytesPerSecond: number;
}

export interface DownloadResult {
  dir: string;
  repo: string;
  revision: string;
  variant: string;
  files: RemoteFile[];
  bytesTotal: number;
  /** Bytes received over the network in this run. */
  bytesFetched: number;
  /** Bytes kept from an earlier, interrupted run. */
  bytesResumed: number;
  /** True when `dest` already held this download and nothing was fetched. */
  alreadyPresent: boolean;
  /** The graph file inside `dir`. */
  onnxFile: string;
  seconds: number;
  /** For a build variant: what was built (also when it was already present). */
  build?: BuildRecord;
}

export async function downloadModel(options: DownloadModelOptions): Promise<DownloadResult> {
  const variant = options.variant ?? DEFAULT_VARIANT;
  const repo = options.repo ?? (isBuildVariant(variant) ? DEFAULT_BUILD_REPO : DEFAULT_REPO);
  const revision = options.revision ?? DEFAULT_REVISION;
  const endpoint = (options.endpoint ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
  checkRepoId(repo);
  checkVariant(variant);
  const buildOptions: BuildOptions | undefined = isBuildVariant(variant) ? { weights: (BUILD_VARIANTS[variant] as { weights: 'int4' | 'int8' }).weights, kvCache: 'float32', externalData: 'auto' } : undefined;
  if (buildOptions && !options.build) throw new UnsupportedRepoError(`The variant '${variant}' builds the model locally, and this caller has no builder; use 'freqkv download' or the Download Model command.`);
  checkEndpoint(endpoint);
  const dest = path.resolve(options.dest);
  const partial = `${dest}.partial`;
  const started = performance.now();
  const settings = { retries: options.retries ?? 3, retryDelayMs: options.retryDelayMs ?? 1000, idleTimeoutMs: options.idleTimeoutMs ?? 60_000 };

  const rate = new RateMeter();
  const report = (p: Omit<DownloadProgress, 'bytesPerSecond'>, force = false): void => {
    if (options.onProgress && (force || rate.due())) options.onProgress({ ...p, bytesPerSecond: rate.perSecond() });
  };
  report({ phase: 'listing', fileBytes: 0, fileSize: 0, bytesDone: 0, bytesTotal: 0, filesDone: 0, filesTotal: 0 }, true);

  const entries = await listRepo(endpoint, repo, revision, options.signal, settings);
  const files = chooseFiles(entries, repo, variant);
  const bytesTotal = files.reduce((sum, f) => sum + f.size, 0);
  const onnxFile = buildOptions ? BUILT_GRAPH : (files.find((f) => f.path.endsWith('.onnx'))?.path ?? '');
  const result = { dir: dest, repo, revision, variant, files, bytesTotal, onnxFile: path.join(dest, onnxFile) };

  const present = readManifest(dest);
  if (buildOptions ? sameBuild(present, dest, files, variant, buildOptions) : sameDownload(present, files) && files.every((f) => sizeOf(path.join(dest, f.path)) === f.size)) {
    return { ...result, bytesFetched: 0, bytesResumed: 0, alreadyPresent: true, seconds: (performance.now() - started) / 1000, build: present?.build };
  }

  fs.mkdirSync(partial, { recursive: true });
  const releaseLock = lock(partial);
  try {
    // Files of another listing (an older revision, another variant) are not part of this one.
    removeStrayFiles(partial, files);
    fs.writeFileSync(path.join(partial, PARTIAL_LISTING), JSON.stringify({ repo, revision, variant, files }));
    const onDisk = (f: RemoteFile): number => (sizeOf(path.join(partial, f.path)) === f.size ? f.size : Math.min(f.size, sizeOf(path.join(partial, `${f.path}.part`))));
    const remaining = files.reduce((sum, f) => sum + f.size - onDisk(f), 0);
    // A build writes its folder beside the downloaded weights; it is smaller than them (int4 or int8 from 16 or 32 bits).
    const buildBytes = buildOptions ? files.filter((f) => f.path.endsWith('.safetensors')).reduce((sum, f) => sum + f.size, 0) : 0;
    const free = freeBytes(partial);
    // Installing is a rename, so the space needed is what is still to come.
    if (free !== undefined && remaining + buildBytes > free) {
      const needed = buildOptions ? `${formatBytes(remaining)} still to download and up to ${formatBytes(buildBytes)} for the built model` : `${formatBytes(remaining)} still to download`;
      throw new DiskFullError(`Not enough disk space for ${repo} (${variant}): ${needed}, ${formatBytes(free)} free on the disk holding ${partial}. Free some space (or choose a smaller variant), then run the download again.`);
    }

    let bytesDone = 0;
    let bytesFetched = 0;
    let bytesResumed = 0;
    for (const [index, file] of files.entries()) {
      const target = path.join(partial, file.path);
      if (sizeOf(target) === file.size && fs.existsSync(target)) {
        // Checked and renamed in an earlier run.
        bytesDone += file.size;
        bytesResumed += file.size;
        continue;
      }
      const base = { file: file.path, fileSize: file.size, bytesTotal, filesDone: index, filesTotal: files.length };
      let first = true;
      const outcome = await fetchFile(fileUrl(endpoint, repo, revision, file.path), target, file, {
        endpoint,
        signal: options.signal,
        ...settings,
        onBytes: (fileBytes, fetchedHere) => {
          rate.add(bytesFetched + fetchedHere);
          // Every file's first report goes out, so a listener sees each file start.
          report({ phase: 'downloading', ...base, fileBytes, bytesDone: bytesDone + fileBytes }, first);
          first = false;
        },
        onVerify: () => report({ phase: 'verifying', ...base, fileBytes: file.size, bytesDone: bytesDone + file.size }, true),
      });
      bytesFetched += outcome.fetched;
      bytesResumed += outcome.resumedFrom;
      bytesDone += file.size;
    }
    const done = { bytesDone, bytesTotal, filesDone: files.length, filesTotal: files.length };
    const manifest: Manifest & Record<string, unknown> = { repo, revision, variant, endpoint, onnxFile, files, downloadedAt: new Date().toISOString() };
    // A build writes `<dest>.build/model` (the builder assembles it beside that, inside `<dest>.build`).
    const buildRoot = `${dest}.build`;
    let folder = partial;
    if (buildOptions) {
      folder = path.join(buildRoot, 'model');
      const convert = { phase: 'converting' as const, file: files.find((f) => f.path.endsWith('.safetensors'))?.path, fileBytes: 0, fileSize: 0, ...done };
      report(convert, true);
      manifest.build = await buildFolder(partial, buildRoot, buildOptions, options.build as ModelBuilder, options.signal, `${repo} (${variant})`);
      report(convert, true);
    }
    report({ phase: 'installing', fileBytes: 0, fileSize: 0, ...done }, true);

    fs.writeFileSync(path.join(folder, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    try {
      (options.check ?? checkConfig)(folder);
    } catch (error) {
      if (folder !== partial) fs.rmSync(buildRoot, { recursive: true, force: true });
      if (!(error instanceof FreqKvError) && !(error instanceof SyntaxError)) throw error;
      const what = buildOptions ? 'was built' : 'downloaded';
      throw new UnsupportedRepoError(`${repo} (${variant}) ${what}, but the folder is not a model the engine can run: ${error.message} The downloaded files are kept in ${partial}.`);
    }
    fs.rmSync(path.join(partial, PARTIAL_LISTING), { force: true });
    releaseLock();
    install(folder, dest);
    // The downloaded weights were converted; the built folder is what stays.
    if (folder !== partial) {
      fs.rmSync(partial, { recursive: true, force: true });
      fs.rmSync(buildRoot, { recursive: true, force: true });
    }
    return { ...result, bytesFetched, bytesResumed, alreadyPresent: false, seconds: (performance.now() - started) / 1000, build: manifest.build };
  } finally {
    releaseLock();
  }
}

/** The graph a build writes (writeModelFolder's layout). */
const BUILT_GRAPH = 'onnx/model.onnx';

/** Runs the builder into `<root>/model` (replacing an earlier attempt); on failure or cancel `root` is gone and the source stays. */
async function buildFolder(source: string, root: string, buildOptions: BuildOptions, build: ModelBuilder, signal: AbortSignal | undefined, what: string): Promise<BuildRecord> {
  const out = path.join(root, 'model');
  const cancelled = (): DownloadCancelledError =>
    new DownloadCancelledError(`The download of ${what} was cancelled while converting the model; the downloaded files are kept in ${source}, and the next run converts them without downloading again.`);
  if (signal?.aborted) throw cancelled();
  fs.rmSync(root, { recursive: true, force: true });
  const started = performance.now();
  try {
    await build(source, out, buildOptions, signal);
  } catch (error) {
    fs.rmSync(root, { recursive: true, force: true });
    if (signal?.aborted) throw cancelled();
    if (!(error instanceof FreqKvError)) throw error;
    throw new UnsupportedRepoError(`${what} downloaded, but converting it failed: ${error.message} The downloaded files are kept in ${source}; the next run converts them again without downloading.`);
  }
  if (signal?.aborted) {
    fs.rmSync(root, { recursive: true, force: true });
    throw cancelled();
  }
  return { builder: 'freqkv convert safetensors', options: buildOptions, seconds: Math.round((performance.now() - started) / 100) / 10, files: listFiles(out) };
}

/** Every file under `dir` with its size, paths relative with '/'. */
function listFiles(dir: string): { path: string; size: number }[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .map((p) => p.split(path.sep).join('/'))
    .filter((p) => fs.statSync(path.join(dir, p)).isFile())
    .sort()
    .map((p) => ({ path: p, size: fs.statSync(path.join(dir, p)).size }));
}

/** `dest` holds a build of these source files, with these options, every built file at its size. */
function sameBuild(manifest: Manifest | undefined, dest: string, files: RemoteFile[], variant: string, buildOptions: BuildOptions): boolean {
  const built = manifest?.build;
  return (
    manifest?.variant === variant &&
    sameDownload(manifest, files) &&
    JSON.stringify(built?.options) === JSON.stringify(buildOptions) &&
    (built?.files.length ?? 0) > 0 &&
    (built?.files ?? []).every((f) => sizeOf(path.join(dest, f.path)) === f.size)
  );
}

function checkConfig(dir: string): void {
  const file = path.join(dir, 'config.json');
  parseHfConfig(JSON.parse(fs.readFileSync(file, 'utf8')) as unknown, file);
}

/** Network bytes per second over a sliding window of about five seconds; paces progress reports. */
class RateMeter {
  private samples: { t: number; bytes: number }[] = [];
  private lastReport = 0;

  add(fetchedTotal: number): void {
    const t = performance.now();
    this.samples.push({ t, bytes: fetchedTotal });
    while (this.samples.length > 2 && t - (this.samples[0] as { t: number }).t > 5000) this.samples.shift();
  }

  perSecond(): number {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || !last || last.t - first.t < 200) return 0;
    return ((last.bytes - first.bytes) * 1000) / (last.t - first.t);
  }

  /** At most ten reports a second. */
  due(): boolean {
    const t = performance.now();
    if (t - this.lastReport < 100) return false;
    this.lastReport = t;
    return true;
  }
}
