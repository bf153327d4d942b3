// The workspace index: one long-lived record per workspace, model and settings of every file's
// path, size, modification time, content hash, token count and stored segment, plus the BM25
// index of the files' terms and definitions (RelevanceIndex, segments/relevance.ts). It is saved atomically in the segment store
// (DIR/v1/indexes/<key>/manifest.json and search.json, each written to a temp file and renamed)
// and reloaded on start, so a warm question reads, tokenizes and checksums nothing it did before:
//
//   refresh()       stats every file, reads only those whose size or time changed (or a watcher's paths)
//   score(q)        BM25 over every known file, prefilled or not
//   indexFile(p)    prefills one file (re-read from the source) and records its segment
//   indexPending()  prefills the files without a segment (background work; stops on a signal)
//   assemble(q, …)  the cache for a question from the segments of the given files
//
// Texts are never kept: a file is read when it changes (for its hash, tokens and terms) and when
// it is prefilled. A stored segment is checked (checksum) when it is read for an answer, once.
// What the rules or the reading left out (gitignore, binary, too large, …) is kept with the files
// (`skippedFiles()`), so a refresh limited to a watcher's paths still knows all of it, and an
// unchanged binary file (same size and time) is not read again.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSourceFile } from '../workspace/ingest';
import type { SkippedFile, SkipReason, SourceFile } from '../workspace/types';
import type { AssembledCache, AssembleOptions, WorkspaceSegmentCache } from '../segments/workspaceSegmentCache';
import { WORKSPACE_DEFAULTS } from './defaults';
import type { IndexSource } from './directorySource';
import { RelevanceIndex } from '../segments/relevance';

/** The manifest's format; a manifest of another format is rebuilt (stored segments are reused). */
export const INDEX_FORMAT = 2;
/** Files prefilled with fewer tokens say little about the prefill speed. */
const RATE_MIN_TOKENS = 64;
/** While indexing, the manifest is saved at most this often. */
const SAVE_INTERVAL_MS = 2000;
/** Reasons found by reading a file's content: kept with its size and time, so an unchanged file is not read again. */
const CONTENT_REASONS: readonly SkipReason[] = ['binary', 'not-utf8', 'empty'];

/** A file or folder left out, with the size and time of a file left out for its content. */
interface LeftOut {
  reason: SkipReason;
  size?: number;
  mtimeMs?: number;
}

export interface IndexedFile {
  path: string;
  size: number;
  /** -1 when unknown: the next refresh reads the file again. */
  mtimeMs: number;
  contentHash: string;
  /** Tokens of the file's segment text. */
  tokens: number;
  /** The stored segment's name, once the file is prefilled. */
  segment?: string;
  /** L: rows the segment stores. */
  rows?: number;
}

export interface IndexOptions {
  /** Names the workspace (e.g. its root folders). */
  workspaceId: string;
  /** Files larger than this are left out without being read. */
  maxFileBytes?: number;
  /** The most files listed; the rest are left out with a warning. */
  maxFiles?: number;
}

export interface RefreshProgress {
  filesSeen: number;
  filesRead: number;
}

export interface RefreshReport {
  files: number;
  /** Files read because they are new or their size or time changed. */
  read: number;
  /** Of those, files whose content changed (their segment is stale). */
  changed: number;
  removed: number;
  /** Every file and folder left out as of this refresh (also those a refresh limited to paths did not look at), by path. */
  skipped: SkippedFile[];
  /** Files past maxFiles, not listed. */
  capped: number;
  ms: number;
}

export interface IndexProgress {
  filesDone: number;
  filesTotal: number;
  tokensDone: number;
  tokensTotal: number;
  /** The file being prefilled. */
  path?: string;
  /** Tokens/s of this run so far. */
  tokensPerSecond: number;
}

export interface IndexRunReport {
  filesIndexed: number;
  tokensIndexed: number;
  ms: number;
  /** Files gone or changed into something unreadable when they were read to be prefilled. */
  vanished: number;
  /** Stopped by the signal before the end. */
  stopped: boolean;
  /** Every file has a segment. */
  complete: boolean;
}

interface ManifestJson {
  format: number;
  workspace: string;
  model: string;
  settings: string;
  prefillTokensPerSecond: number | null;
  /** [path, size, mtimeMs, contentHash, tokens, segment | null, rows | null] */
  files: [string, number, number, string, number, string | null, number | null][];
  /** What was left out: [path, reason, size | null, mtimeMs | null] (absent in manifests written before it was kept). */
  skipped?: [string, SkipReason, number | null, number | null][];
}

export class WorkspaceIndex {
  readonly files = new Map<string, IndexedFile>();
  /** What the user should know (a manifest rebuilt, the file cap, …); shown once. */
  readonly warnings: string[] = [];
  /** Measured prefill speed of this model and settings (files of at least 64 tokens). */
  prefillTokensPerSecond: number | undefined;
  readonly dir: string | undefined;
  private relevance = new RelevanceIndex();
  /** Files and folders (ending in '/') left out, by path. */
  private leftOut = new Map<string, LeftOut>();
  private readonly key: string;
  private readonly maxFileBytes: number;
  private readonly maxFiles: number;
  private dirty = false;
  private lastSave = 0;

  private constructor(
    readonly segments: WorkspaceSegmentCache,
    readonly source: IndexSource,
    readonly options: IndexOptions,
  ) {
    this.key = `${options.workspaceId}\n${segments.modelId}\n${segments.settingsId}`;
    this.maxFileBytes = options.maxFileBytes ?? WORKSPACE_DEFAULTS.maxFileBytes;
    this.maxFiles = options.maxFiles ?? WORKSPACE_DEFAULTS.maxFiles;
    const storeDir = segments.store.dir;
    this.dir = storeDir === undefined ? undefined : path.join(storeDir, 'v1', 'indexes', createHash('sha256').update(this.key).digest('hex').slice(0, 32));
  }

  /** The index saved for this workspace, model and settings, or an empty one (a bad manifest is rebuilt with a warning). */
  static open(segments: WorkspaceSegmentCache, source: IndexSource, options: IndexOptions): WorkspaceIndex {
    const index = new WorkspaceIndex(segments, source, options);
    index.load();
    return index;
  }

  private load(): void {
    if (!this.dir) return;
    const manifestFile = path.join(this.dir, 'manifest.json');
    let text: string;
    try {
      text = fs.readFileSync(manifestFile, 'utf8');
    } catch {
      return;
    }
    try {
      const json = JSON.parse(text) as ManifestJson;
      if (json.format !== INDEX_FORMAT) throw new Error(`it has format ${String(json.format)}, not ${INDEX_FORMAT}`);
      if (json.model !== this.segments.modelId || json.settings !== this.segments.settingsId || json.workspace !== this.options.workspaceId) throw new Error('it belongs to another model, setting or workspace');
      if (!Array.isArray(json.files)) throw new Error('it has no file list');
      for (const row of json.files) {
        const [p, size, mtimeMs, contentHash, tokens, segment, rows] = row;
        if (typeof p !== 'string' || typeof contentHash !== 'string' || !Number.isFinite(size) || !Number.isFinite(tokens)) throw new Error('it has a malformed file entry');
        this.files.set(p, { path: p, size, mtimeMs, contentHash, tokens, ...(segment ? { segment, rows: rows ?? 0 } : {}) });
      }
      for (const [p, reason, size, mtimeMs] of Array.isArray(json.skipped) ? json.skipped : []) {
        if (typeof p === 'string' && typeof reason === 'string') this.leftOut.set(p, { reason, ...(size !== null && mtimeMs !== null ? { size, mtimeMs } : {}) });
      }
      this.prefillTokensPerSecond = json.prefillTokensPerSecond ?? undefined;
    } catch (error) {
      this.files.clear();
      this.leftOut.clear();
      this.warnings.push(`The workspace index ${manifestFile} could not be used (${(error as Error).message}); it is rebuilt from the files, and segments already stored are reused.`);
      return;
    }
    try {
      this.relevance = RelevanceIndex.fromJSON(fs.readFileSync(path.join(this.dir, 'search.json'), 'utf8'));
      if (this.relevance.size !== this.files.size) throw new Error(`it lists ${this.relevance.size} files, the manifest ${this.files.size}`);
    } catch (error) {
      // Without the terms, every file is read again by the next refresh (segments are kept).
      this.relevance = new RelevanceIndex();
      for (const file of this.files.values()) file.mtimeMs = -1;
      this.warnings.push(`The workspace search index could not be used (${(error as Error).message}); the files are read again to rebuild it.`);
    }
  }

  /** Saves the manifest and the search index atomically (at most every 2 s unless `force`); false if the store cannot be written. */
  save(force = true): boolean {
    if (!this.dirty) return true;
    if (!force && performance.now() - this.lastSave < SAVE_INTERVAL_MS) return true;
    this.lastSave = performance.now();
    const store = this.segments.store;
    if (!this.dir || !store.persisting) return false;
    const manifest: ManifestJson = {
      format: INDEX_FORMAT,
      workspace: this.options.workspaceId,
      model: this.segments.modelId,
      settings: this.segments.settingsId,
      prefillTokensPerSecond: this.prefillTokensPerSecond ?? null,
      files: [...this.files.values()].map((f) => [f.path, f.size, f.mtimeMs, f.contentHash, f.tokens, f.segment ?? null, f.segment ? (f.rows ?? 0) : null]),
      skipped: [...this.leftOut].map(([p, l]) => [p, l.reason, l.size ?? null, l.mtimeMs ?? null]),
    };
    // The search index first: a manifest never names files the saved search index lacks.
    const ok =
      store.atomicWrite(path.join(this.dir, 'search.json'), Buffer.from(JSON.stringify(this.relevance.toJSON())), 'write the workspace search index') &&
      store.atomicWrite(path.join(this.dir, 'manifest.json'), Buffer.from(JSON.stringify(manifest)), 'write the workspace index');
    if (!ok) return false;
    // The store's own record of the segments this workspace uses: stale ones are collected, the size cap applies.
    store.commitWorkspace(this.key, [...this.files.values()].flatMap((f) => (f.segment ? [f.segment] : [])));
    this.dirty = false;
    return true;
  }

  /** Forgets this workspace: its manifest, search index and the segments no other workspace uses. */
  clear(): { removedSegments: number; failures: string[] } {
    const failures: string[] = [];
    this.files.clear();
    this.leftOut.clear();
    this.relevance = new RelevanceIndex();
    this.dirty = false;
    this.segments.dropRebuiltRows();
    const removedSegments = this.segments.store.commitWorkspace(this.key, []);
    if (this.dir) {
      try {
        fs.rmSync(this.dir, { recursive: true, force: true });
      } catch (error) {
        failures.push(`${this.dir}: ${(error as Error).message}`);
      }
    }
    return { removedSegments, failures };
  }

  /** Every file and folder (path ending in '/') left out by the rules or when read, by path. */
  skippedFiles(): SkippedFile[] {
    return [...this.leftOut].map(([p, l]) => ({ path: p, reason: l.reason })).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** Files and tokens known, and how many are prefilled. */
  counts(): { filesTotal: number; filesIndexed: number; tokensTotal: number; tokensIndexed: number } {
    let filesIndexed = 0;
    let tokensTotal = 0;
    let tokensIndexed = 0;
    for (const f of this.files.values()) {
      tokensTotal += f.tokens;
      if (f.segment) {
        filesIndexed++;
        tokensIndexed += f.tokens;
      }
    }
    return { filesTotal: this.files.size, filesIndexed, tokensTotal, tokensIndexed };
  }

  /**
   * Brings the file list in line with the source: every file is stat'ed, only new files and
   * files whose size or modification time changed are read. `paths` limits it to those paths
   * (a file watcher's deltas); otherwise files no longer listed are removed.
   */
  async refresh(options: { paths?: readonly string[]; signal?: AbortSignal; onProgress?: (p: RefreshProgress) => void } = {}): Promise<RefreshReport> {
    const started = performance.now();
    const report: RefreshReport = { files: 0, read: 0, changed: 0, removed: 0, skipped: [], capped: 0, ms: 0 };
    const seen = new Set<string>();
    // A full listing records what is left out anew; a refresh of paths updates those paths only.
    const previous = this.leftOut;
    const leftOut = options.paths ? this.leftOut : new Map<string, LeftOut>();
    const skip = (p: string, entry: LeftOut): void => {
      const before = previous.get(p);
      if (before?.reason !== entry.reason || before.size !== entry.size || before.mtimeMs !== entry.mtimeMs) this.dirty = true;
      leftOut.set(p, entry);
    };
    let lastProgress = 0;
    const visit = async (file: SourceFile): Promise<void> => {
      seen.add(file.path);
      const known = this.files.get(file.path);
      if (known && known.size === file.size && file.mtimeMs !== undefined && known.mtimeMs === file.mtimeMs) return;
      // Left out for its content before and unchanged since: not read again.
      const before = previous.get(file.path);
      if (!known && before?.size !== undefined && before.size === file.size && file.mtimeMs !== undefined && before.mtimeMs === file.mtimeMs) {
        leftOut.set(file.path, before);
        return;
      }
      report.read++;
      const read = await readSourceFile(file, this.maxFileBytes);
      if ('reason' in read) {
        skip(file.path, CONTENT_REASONS.includes(read.reason) && file.mtimeMs !== undefined ? { reason: read.reason, size: file.size, mtimeMs: file.mtimeMs } : { reason: read.reason });
        if (this.forget(file.path)) report.removed++;
        return;
      }
      if (leftOut.delete(file.path)) this.dirty = true;
      if (this.learn(file, read.text)) report.changed++;
    };
    if (options.paths) {
      for (const p of options.paths) {
        options.signal?.throwIfAborted();
        // What was recorded for the path (or under it, for a folder) is decided again.
        for (const q of [...leftOut.keys()]) if ((q === p || q === `${p}/` || q.startsWith(`${p}/`)) && leftOut.delete(q)) this.dirty = true;
        const reason = this.source.checkFile(p);
        const file = await this.source.stat(p);
        if (file && !reason) {
          await visit(file);
          continue;
        }
        // Left out by the rules now (unless a folder above it is recorded as left out already).
        if (file && reason && ![...leftOut.keys()].some((q) => q.endsWith('/') && p.startsWith(q))) skip(p, { reason });
        if (this.forget(p)) report.removed++;
        // A deleted or excluded folder: every file under it.
        else for (const known of [...this.files.keys()]) if (known.startsWith(`${p}/`) && this.forget(known)) report.removed++;
      }
    } else {
      for await (const entry of this.source.list(options.signal)) {
        if (entry.kind === 'skipped') {
          skip(entry.path, { reason: entry.reason });
          continue;
        }
        if (seen.size >= this.maxFiles) {
          report.capped++;
          continue;
        }
        await visit(entry);
        if (options.onProgress && performance.now() - lastProgress > 200) {
          lastProgress = performance.now();
          options.onProgress({ filesSeen: seen.size, filesRead: report.read });
        }
      }
      for (const p of [...this.files.keys()]) {
        if (!seen.has(p) && this.forget(p)) report.removed++;
      }
      if (leftOut.size !== previous.size) this.dirty = true;
      this.leftOut = leftOut;
      if (report.capped > 0) {
        this.warnings.push(`The workspace has more than ${this.maxFiles} files; ${report.capped} files after the first ${this.maxFiles} (in path order) are left out. Narrow it with include/exclude globs.`);
      }
    }
    report.files = this.files.size;
    report.skipped = this.skippedFiles();
    report.ms = performance.now() - started;
    this.save(false);
    return report;
  }

  /** Records a file's current text; true if its content changed (or it is new). */
  private learn(file: SourceFile, text: string): boolean {
    const known = this.files.get(file.path);
    const contentHash = this.segments.contentHashOf({ path: file.path, text });
    this.dirty = true;
    if (known && known.contentHash === contentHash) {
      known.size = file.size;
      known.mtimeMs = file.mtimeMs ?? -1;
      if (!this.relevance.has(file.path)) this.relevance.set(file.path, text);
      return false;
    }
    // A segment stored for this content (e.g. before a manifest was lost) is reused after one check.
    const stored = this.segments.storedRef(file.path, contentHash);
    const tokens = stored?.tokens ?? this.segments.countTokens({ path: file.path, text });
    this.files.set(file.path, { path: file.path, size: file.size, mtimeMs: file.mtimeMs ?? -1, contentHash, tokens, ...(stored ? { segment: stored.name, rows: stored.rows } : {}) });
    this.relevance.set(file.path, text);
    return true;
  }

  private forget(p: string): boolean {
    this.relevance.remove(p);
    const had = this.files.delete(p);
    if (had) this.dirty = true;
    return had;
  }

  /** Relevance (BM25 plus where named identifiers are defined) of every known file that matches the question, prefilled or not. */
  score(question: string): Map<string, number> {
    return this.relevance.scoreByPath(question);
  }

  /** The current text of a file, if it still has the content that was indexed. */
  private async currentText(p: string): Promise<string | undefined> {
    const file = this.source.checkFile(p) ? undefined : await this.source.stat(p);
    if (!file) return undefined;
    const read = await readSourceFile(file, this.maxFileBytes);
    if ('reason' in read) return undefined;
    return read.text;
  }

  /**
   * Prefills one file: re-reads it (a file that changed since it was listed is indexed as it is
   * now; one that vanished is forgotten) and records its segment. Returns the tokens prefilled,
   * or undefined if the file is gone. `signal` stops the prefill between chunks.
   */
  async indexFile(p: string, signal?: AbortSignal): Promise<{ tokens: number; ms: number } | undefined> {
    const known = this.files.get(p);
    if (!known) return undefined;
    if (known.segment) return { tokens: 0, ms: 0 };
    const file = this.source.checkFile(p) ? undefined : await this.source.stat(p);
    const read = file ? await readSourceFile(file, this.maxFileBytes) : undefined;
    if (!file || !read || 'reason' in read) {
      this.forget(p);
      return undefined;
    }
    this.learn(file, read.text);
    const entry = this.files.get(p)!;
    if (entry.segment) return { tokens: 0, ms: 0 };
    const started = performance.now();
    const ref = await this.segments.indexFile({ path: p, text: read.text }, signal);
    const ms = performance.now() - started;
    Object.assign(entry, { segment: ref.name, rows: ref.rows, tokens: ref.tokens });
    if (ref.tokens >= RATE_MIN_TOKENS) {
      const rate = (ref.tokens / ms) * 1000;
      this.prefillTokensPerSecond = this.prefillTokensPerSecond === undefined ? rate : 0.7 * this.prefillTokensPerSecond + 0.3 * rate;
    }
    this.dirty = true;
    this.save(false);
    return { tokens: ref.tokens, ms };
  }

  /**
   * Files without a segment, in the given order (default: fewest tokens first, then by path, so
   * the most files become answerable soonest and a huge file does not hold up the rest).
   */
  pending(order?: readonly string[]): IndexedFile[] {
    const files = order
      ? order.map((p) => this.files.get(p)).filter((f): f is IndexedFile => f !== undefined)
      : [...this.files.values()].sort((a, b) => a.tokens - b.tokens || (a.path < b.path ? -1 : 1));
    return files.filter((f) => !f.segment);
  }

  /**
   * Prefills every file without a segment (the background work, and `freqkv index`): resumable,
   * since each file is recorded as it is done. Stops between chunks when `signal` aborts, and
   * when the store cannot be written (segments would pile up in memory).
   */
  async indexPending(options: { signal?: AbortSignal; order?: readonly string[]; onProgress?: (p: IndexProgress) => void } = {}): Promise<IndexRunReport> {
    const started = performance.now();
    const todo = this.pending(options.order);
    const tokensTotal = todo.reduce((n, f) => n + f.tokens, 0);
    const report: IndexRunReport = { filesIndexed: 0, tokensIndexed: 0, ms: 0, vanished: 0, stopped: false, complete: false };
    const progress = (file?: string): IndexProgress => ({
      filesDone: report.filesIndexed + report.vanished,
      filesTotal: todo.length,
      tokensDone: report.tokensIndexed,
      tokensTotal,
      path: file,
      tokensPerSecond: report.tokensIndexed / Math.max(1e-3, (performance.now() - started) / 1000),
    });
    try {
      for (const file of todo) {
        if (options.signal?.aborted || !this.segments.store.persisting) {
          report.stopped = true;
          break;
        }
        options.onProgress?.(progress(file.path));
        const done = await this.indexFile(file.path, options.signal);
        if (done) {
          report.filesIndexed++;
          report.tokensIndexed += done.tokens;
        } else {
          report.vanished++;
        }
      }
    } catch (error) {
      if (!options.signal?.aborted) throw error;
      report.stopped = true;
    } finally {
      this.save();
    }
    options.onProgress?.(progress());
    report.ms = performance.now() - started;
    report.complete = this.pending().length === 0;
    return report;
  }

  /** The cache for a question from the segments of `paths` (files without a segment are skipped). */
  async assemble(question: string, scores: ReadonlyMap<string, number>, paths: readonly string[], options: AssembleOptions): Promise<AssembledCache> {
    const refs = paths.flatMap((p) => {
      const f = this.files.get(p);
      return f?.segment ? [{ path: p, name: f.segment, contentHash: f.contentHash, tokens: f.tokens, rows: f.rows ?? 0 }] : [];
    });
    return this.segments.assembleFrom(
      question,
      refs,
      refs.map((r) => scores.get(r.path) ?? 0),
      options,
      (p) => this.currentText(p),
    );
  }
}
