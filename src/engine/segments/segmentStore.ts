// The segment store on disk: one file per segment (DIR/v1/segments/<name>.seg, written to a
// temp file and renamed into place, so readers never see half a file) and one manifest per
// workspace (DIR/v1/workspaces/<id>.json: the segment names it uses, also renamed into place).
// There is no shared mutable index, so several processes can share a store: two writers of the
// same segment write the same bytes, and the last rename wins.
//
// Garbage collection: a segment the workspace used last time but not now (its file was deleted
// or changed) is removed unless another workspace's manifest names it; temp files older than an
// hour (a crashed writer) are removed. A size cap evicts the least recently used segments
// (modification time, touched on every read) that the current workspace does not use.
//
// A store that cannot be written (read-only, full disk, no permission, a path through a file)
// never fails a question: segments are kept in memory for this run and `warnings` says so.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

const LAYOUT = 'v1';
const SEGMENT_SUFFIX = '.seg';
const TEMP_MAX_AGE_MS = 60 * 60 * 1000;
/** Room for one workspace at the default token limit (500,000) in int8 on Qwen2.5-0.5B (6.3 KB a token; docs/kv-compression.md). */
export const DEFAULT_STORE_MAX_BYTES = 4 * 1024 ** 3;

/** Errors that mean "this store cannot be written", as opposed to a bug. */
const UNWRITABLE = new Set(['EROFS', 'EACCES', 'EPERM', 'ENOSPC', 'EDQUOT', 'ENOTDIR', 'EEXIST', 'EISDIR', 'ENOENT']);

export interface StoreOptions {
  /** The size cap in bytes over all segments (default 4 GiB). */
  maxBytes?: number;
  /** Writes a file's bytes (default fs.writeFileSync); tests inject a full disk through it. */
  writeFile?: (file: string, bytes: Uint8Array) => void;
}

export class SegmentStore {
  readonly segmentsDir: string | undefined;
  readonly workspacesDir: string | undefined;
  readonly maxBytes: number;
  /** What the user should know: the store is not being written, the cap is too small, … */
  readonly warnings: string[] = [];
  private writable: boolean;
  /** Segments that could not be persisted, kept for this run. */
  private readonly memory = new Map<string, Uint8Array>();
  private readonly writeFile: (file: string, bytes: Uint8Array) => void;

  /** `dir` undefined: an in-memory store (nothing persists, no warning). */
  constructor(readonly dir: string | undefined, options: StoreOptions = {}) {
    this.maxBytes = options.maxBytes ?? DEFAULT_STORE_MAX_BYTES;
    this.writeFile = options.writeFile ?? ((file, bytes) => fs.writeFileSync(file, bytes));
    if (dir === undefined) {
      this.writable = false;
      return;
    }
    this.segmentsDir = path.join(dir, LAYOUT, 'segments');
    this.workspacesDir = path.join(dir, LAYOUT, 'workspaces');
    this.writable = true;
    try {
      fs.mkdirSync(this.segmentsDir, { recursive: true });
      fs.mkdirSync(this.workspacesDir, { recursive: true });
    } catch (error) {
      this.unwritable(error, `create ${path.join(dir, LAYOUT)}`);
    }
  }

  /** Whether segments written now persist on disk. */
  get persisting(): boolean {
    return this.writable;
  }

  /** The stored bytes of a segment, or undefined if it is not stored. Touches it (for LRU). */
  read(name: string): Uint8Array | undefined {
    const inMemory = this.memory.get(name);
    if (inMemory) return inMemory;
    if (!this.segmentsDir) return undefined;
    const file = path.join(this.segmentsDir, name + SEGMENT_SUFFIX);
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(file);
    } catch {
      return undefined;
    }
    if (this.writable) {
      try {
        const now = new Date();
        fs.utimesSync(file, now, now);
      } catch {
        // A file evicted meanwhile, or a store turned read-only: the read still counts.
      }
    }
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Whether a segment file exists (not checked; read() and the caller check it). */
  has(name: string): boolean {
    if (this.memory.has(name)) return true;
    return this.segmentsDir !== undefined && fs.existsSync(path.join(this.segmentsDir, name + SEGMENT_SUFFIX));
  }

  /** Stores a segment atomically; if the store cannot be written, keeps it in memory. */
  write(name: string, bytes: Uint8Array): void {
    if (this.writable && this.segmentsDir) {
      const file = path.join(this.segmentsDir, name + SEGMENT_SUFFIX);
      if (this.atomicWrite(file, bytes, `write segment ${name}`)) return;
    }
    this.memory.set(name, bytes);
  }

  /** Drops a segment (e.g. one found corrupt); missing files are fine. */
  remove(name: string): void {
    this.memory.delete(name);
    if (!this.segmentsDir || !this.writable) return;
    try {
      fs.unlinkSync(path.join(this.segmentsDir, name + SEGMENT_SUFFIX));
    } catch {
      // Already gone (another process collected it).
    }
  }

  /** The segment names a workspace's manifest lists (empty if none or unreadable). */
  readManifest(workspaceId: string): string[] {
    if (!this.workspacesDir) return [];
    return readManifestFile(path.join(this.workspacesDir, manifestName(workspaceId)));
  }

  /**
   * Records the segments a workspace uses now and collects those it used before but no longer
   * does (unless another workspace uses them), then enforces the size cap. Returns the number
   * of segment files removed.
   */
  commitWorkspace(workspaceId: string, names: readonly string[]): number {
    if (!this.writable || !this.workspacesDir || !this.segmentsDir) return 0;
    const own = path.join(this.workspacesDir, manifestName(workspaceId));
    const previous = readManifestFile(own);
    const current = new Set(names);
    this.atomicWrite(own, Buffer.from(JSON.stringify({ workspace: workspaceId, segments: [...current] })), 'write the workspace manifest');
    const stale = previous.filter((n) => !current.has(n));
    let removed = 0;
    if (stale.length > 0) {
      const usedElsewhere = this.namesInOtherManifests(own);
      for (const name of stale) {
        if (usedElsewhere.has(name)) continue;
        this.remove(name);
        removed++;
      }
    }
    this.removeOldTempFiles();
    return removed + this.enforceCap(current);
  }

  /** Bytes of all segment files on disk. */
  diskBytes(): number {
    return this.listSegments().reduce((n, s) => n + s.size, 0);
  }

  private enforceCap(keep: ReadonlySet<string>): number {
    const segments = this.listSegments();
    let total = segments.reduce((n, s) => n + s.size, 0);
    if (total <= this.maxBytes) return 0;
    let removed = 0;
    for (const s of segments.sort((a, b) => a.mtimeMs - b.mtimeMs)) {
      if (total <= this.maxBytes) break;
      if (keep.has(s.name)) continue;
      this.remove(s.name);
      total -= s.size;
      removed++;
    }
    if (total > this.maxBytes) {
      this.warnings.push(
        `The segment store holds ${total} bytes for this workspace, over its cap of ${this.maxBytes}; nothing the workspace uses was evicted. Raise the cap (--store-max-mb) or include fewer files.`,
      );
    }
    return removed;
  }

  private listSegments(): { name: string; size: number; mtimeMs: number }[] {
    if (!this.segmentsDir) return [];
    let entries: string[];
    try {
      entries = fs.readdirSync(this.segmentsDir);
    } catch {
      return [];
    }
    const out: { name: string; size: number; mtimeMs: number }[] = [];
    for (const entry of entries) {
      if (!entry.endsWith(SEGMENT_SUFFIX)) continue;
      try {
        const st = fs.statSync(path.join(this.segmentsDir, entry));
        out.push({ name: entry.slice(0, -SEGMENT_SUFFIX.length), size: st.size, mtimeMs: st.mtimeMs });
      } catch {
        // Removed meanwhile by another process.
      }
    }
    return out;
  }

  private namesInOtherManifests(own: string): Set<string> {
    const names = new Set<string>();
    let entries: string[] = [];
    try {
      entries = fs.readdirSync(this.workspacesDir!);
    } catch {
      return names;
    }
    for (const entry of entries) {
      const file = path.join(this.workspacesDir!, entry);
      if (!entry.endsWith('.json') || file === own) continue;
      for (const n of readManifestFile(file)) names.add(n);
    }
    return names;
  }

  private removeOldTempFiles(): void {
    for (const dir of [this.segmentsDir!, this.workspacesDir!]) {
      let entries: string[] = [];
      try {
        entries = fs.readdirSync(dir);
      } catch {
        continue;
      }
      for (const entry of entries) {
        if (!entry.endsWith('.tmp')) continue;
        const file = path.join(dir, entry);
        try {
          if (Date.now() - fs.statSync(file).mtimeMs > TEMP_MAX_AGE_MS) fs.unlinkSync(file);
        } catch {
          // Renamed or removed meanwhile.
        }
      }
    }
  }

  /** temp file + rename; false (and the store marked unwritable) if the disk refuses. */
  atomicWrite(file: string, bytes: Uint8Array, what: string): boolean {
    if (!this.writable) return false;
    const temp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      this.writeFile(temp, bytes);
      fs.renameSync(temp, file);
      return true;
    } catch (error) {
      try {
        fs.unlinkSync(temp);
      } catch {
        // Never created.
      }
      this.unwritable(error, what);
      return false;
    }
  }

  private unwritable(error: unknown, what: string): void {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    if (!UNWRITABLE.has(code)) throw error;
    this.writable = false;
    this.warnings.push(
      `The segment store ${this.dir} cannot be written (${code} on ${what}); this answer was computed without persisting segments, so the next run reads the files again. Choose a writable --store folder with free space.`,
    );
  }
}

function manifestName(workspaceId: string): string {
  return crypto.createHash('sha256').update(workspaceId).digest('hex').slice(0, 32) + '.json';
}

function readManifestFile(file: string): string[] {
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as { segments?: unknown };
    return Array.isArray(parsed.segments) ? parsed.segments.filter((s): s is string => typeof s === 'string') : [];
  } catch {
    return [];
  }
}
