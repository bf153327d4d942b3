// The segmented workspace cache (docs/architecture.md, "Two ways to fill the cache", item 2):
// the engine-level API the CLI and the extension's worker call.
//
//   const segments = new WorkspaceSegmentCache(session, tokenizer, folder, settings);
//   await segments.update(files, onProgress, signal);   // prefills only new or changed files
//   const assembled = await segments.assemble(question); // [prefix | segments | ] in one KvCache
//   … generate from assembled.cache with assembled.questionIds as the prompt
//
// Each file is stored once per (model, settings, path, content) in a SegmentStore; update()
// re-reads the store, checks every segment it will use (a corrupt or stale one is rebuilt) and
// collects the segments of files that are gone. assemble() scores the files against the question
// (BM25), shares the budget among them by score (allocate.ts), rebuilds each segment at its
// share of rows from its first DCT coefficients, and places the rows at consecutive slots with
// keys rotated to those slots. The question's tokens are left for the generator to prefill.

import { createHash } from 'node:crypto';
import { FreqKvError } from '../errors';
import { copyRows, fromFloat32, toFloat32 } from '../kv/compressor';
import type { KvCache } from '../kv/kvCache';
import { rotarySpecOf, rotateRows, type RotarySpec } from '../kv/rotary';
import type { DecoderSession } from '../model/decoderSession';
import type { ModelFolder } from '../model/modelFolder';
import type { ModelTokenizer } from '../tokenizer/modelTokenizer';
import { IngestCancelledError } from '../workspace/ingest';
import { recentTurns, segmentText, splitAskPrompt, type PriorTurn } from '../workspace/prompt';
import { allocateRows, type AllocationOptions } from './allocate';
import type { CodecName, SegmentBlock, SegmentCodec } from './codec';
import { createSegmentCodec, RvqCodec, SegmentCodecError, type CodecState } from './codecRegistry';
import { modelIdentity } from './modelIdentity';
import { RelevanceIndex } from './relevance';
import { buildSegment, type SegmentPrefillSettings } from './segmentBuilder';
import { decodeSegmentFile, encodeSegmentFile, SEGMENT_FORMAT_VERSION, SegmentCorruptError, type SegmentFileContents, type SegmentHeader } from './segmentFile';
import { SegmentStore } from './segmentStore';
import { inverseDct } from './spectrum';

/** Settings the segmented mode cannot work with (a capacity too small for the prefix and sinks). */
export class SegmentSettingsError extends FreqKvError {}

/** A segment had to be rebuilt but its file's text is no longer what was indexed. */
class SegmentTextGoneError extends FreqKvError {}

export interface SegmentCacheSettings {
  codec: CodecName;
  /** The codec's calibration state: the RVQ codebooks (loadOrCalibrateCodecState), required for 'rvq'. */
  codecState?: CodecState;
  /** N: the cache files are prefilled in and questions are answered in. */
  capacity: number;
  /** FreqKV settings for files longer than the cache (sinks counted after the prefix). */
  sinks: number;
  retain: number;
  recent: number;
  /** Tokens per forward pass while prefilling files (default 128). */
  prefillChunk?: number;
  /** The store folder; undefined keeps segments in memory only. */
  storeDir?: string;
  /** The store's size cap in bytes. */
  maxStoreBytes?: number;
  /** Names this workspace in the store, e.g. its absolute root path (one manifest per workspace, model and settings). */
  workspaceId: string;
  /** Writes store files (default fs.writeFileSync); tests inject a full disk through it. */
  writeFile?: (file: string, bytes: Uint8Array) => void;
  /**
   * Bytes of rebuilt rows kept between assemblies (default REBUILT_ROWS_CACHE_BYTES; 0: none):
   * a file assembled again at the same rows skips decoding and the inverse DCT.
   */
  rebuiltRowsCacheBytes?: number;
}

/**
 * 256 MiB of rebuilt rows: at the Qwen2.5-0.5B shape (24,576 bytes a row) about 10,900 rows, the
 * ~30 files of a warm answer once the budget holds every indexed file at its stored rows.
 */
export const REBUILT_ROWS_CACHE_BYTES = 256 * 1024 * 1024;

/** A segment's rows rebuilt at some resolution, keys still un-rotated (pre-RoPE); per layer [heads, rows, dim]. */
interface RebuiltRows {
  L: number;
  keys: Float32Array[];
  values: Float32Array[];
  /** Kept in the rebuilt-rows cache: rotate a copy, never the arrays themselves. */
  cached: boolean;
}

export interface WorkspaceFileEntry {
  path: string;
  text: string;
}

export interface UpdateProgress {
  filesDone: number;
  filesTotal: number;
  /** Segments prefilled so far in this update. */
  built: number;
  tokensPrefilled: number;
}

export interface UpdateReport {
  files: number;
  /** Segments prefilled (new, changed, corrupt or evicted files). */
  built: number;
  /** Segments found in the store and used as they are. */
  reused: number;
  /** Of `built`, segments whose stored file was corrupt or stale. */
  rebuiltCorrupt: number;
  /** Segment files collected (files deleted or changed since the last update, or evicted by the cap). */
  removed: number;
  /** Tokens of every file's segment text. */
  workspaceTokens: number;
  tokensPrefilled: number;
  ms: number;
  /** Whether the segments persist on disk. */
  persisted: boolean;
  warnings: string[];
}

export interface AssembleOptions extends AllocationOptions {
  /** Rows for prefix, segments and question, and the capacity of the cache made (default: the capacity). */
  budget?: number;
  /** Rows left free for the answer before FreqKV compresses (default 64). */
  reserveRows?: number;
  /** A path ranked above every other file (e.g. the file a command is about). */
  focus?: string;
  /**
   * Rows for the segments, instead of budget − prefix − question − reserve (at most budget −
   * prefix): e.g. to compare with another cache at equal rows. The question then compresses
   * the cache as it is prefilled if it does not fit.
   */
  segmentRows?: number;
  /** Slot order by path (files not named go first, least relevant first); default: by relevance. */
  order?: readonly string[];
  /**
   * The conversation's earlier turns: they go into the question's suffix (after the files, so
   * the stored segments are reused as they are), and their questions count towards relevance,
   * so a follow-up ("and its tests?") keeps the files the earlier question was about.
   */
  history?: readonly PriorTurn[];
}

export interface IncludedSegment {
  path: string;
  score: number;
  /** Tokens of the file's segment text. */
  tokens: number;
  /** L: rows stored (full resolution). */
  storedRows: number;
  /** Rows used in this cache. */
  rows: number;
  /** The slot of its first row. */
  firstSlot: number;
}

export interface DroppedSegment {
  path: string;
  tokens: number;
  reason: string;
}

export interface AssembledCache {
  cache: KvCache;
  /** The prompt to prefill after the cache: the question and what follows it. */
  questionIds: number[];
  prefixRows: number;
  /** Segment rows budgeted (budget − prefix − question − reserve). */
  segmentBudget: number;
  /** In slot order (least relevant first, so the most relevant sit next to the question). */
  files: IncludedSegment[];
  dropped: DroppedSegment[];
  /** Tokens the cache rows stand for: the prefix plus every included file's tokens. */
  tokensRepresented: number;
  assembleMs: number;
  warnings: string[];
}

/** A stored segment as an index records it: the file, its content hash and the segment's name and size. */
export interface SegmentRef {
  path: string;
  name: string;
  contentHash: string;
  tokens: number;
  rows: number;
}

interface Entry extends SegmentRef {
  text: string;
}

export const DEFAULT_RESERVE_ROWS = 64;

export class WorkspaceSegmentCache {
  readonly store: SegmentStore;
  readonly codec: SegmentCodec;
  readonly modelId: string;
  readonly settingsId: string;
  readonly prefixIds: number[];
  private readonly rotary: RotarySpec;
  private readonly prefill: SegmentPrefillSettings;
  private entries: Entry[] = [];
  private index: RelevanceIndex | undefined;
  /** Notes from assemble-time rebuilds, reported with the next result. */
  private readonly notes: string[] = [];
  /** Rebuilt rows by segment name and rows, least recently used first, their bytes and the assembly that last used them. */
  private readonly rebuiltRows = new Map<string, RebuiltRows & { bytes: number; assembly: number }>();
  private rebuiltBytes = 0;
  private assemblies = 0;
  /** Files assembled from kept rebuilt rows, over this cache's life. */
  rebuiltRowsHits = 0;

  constructor(
    private readonly session: DecoderSession,
    private readonly tokenizer: ModelTokenizer,
    folder: ModelFolder,
    readonly settings: SegmentCacheSettings,
  ) {
    this.codec = createSegmentCodec(settings.codec, settings.codecState);
    this.store = new SegmentStore(settings.storeDir, { maxBytes: settings.maxStoreBytes, writeFile: settings.writeFile });
    this.rotary = rotarySpecOf(folder.config);
    const { prefix, chat } = splitAskPrompt(tokenizer, '');
    const bos = tokenizer.bosTokenId ?? folder.bosTokenId;
    this.prefixIds = chat ? tokenizer.encode(prefix, { addSpecialTokens: false }) : bos === undefined ? [] : [bos];
    const P = this.prefixIds.length;
    const sinks = settings.sinks;
    if (settings.capacity < P + sinks + 2 + 1) {
      throw new SegmentSettingsError(
        `The cache capacity ${settings.capacity} is too small for the segmented mode: the prompt prefix takes ${P} rows and each file needs ${sinks} sinks and 3 more rows. Raise --capacity to at least ${P + sinks + 3}, or use --mode sequential.`,
      );
    }
    const recent = Math.max(0, Math.min(settings.recent, settings.capacity - P - sinks - 2));
    this.prefill = { capacity: settings.capacity, sinks, retain: settings.retain, recent, chunk: settings.prefillChunk ?? 128 };
    this.modelId = modelIdentity(folder);
    // The codebooks' fingerprint: recalibrated codebooks make every segment encoded with the old ones stale.
    const codebooks = this.codec instanceof RvqCodec ? this.codec.fingerprint : undefined;
    this.settingsId = sha256(JSON.stringify({ v: SEGMENT_FORMAT_VERSION, codec: settings.codec, codebooks, prefix: this.prefixIds, ...this.prefill, chunk: undefined })).slice(0, 32);
  }

  /** The files currently known (after the last update). */
  get files(): readonly { path: string; tokens: number; rows: number }[] {
    return this.entries;
  }

  /**
   * Brings the segments in line with `files` (the whole workspace): prefills the new and changed
   * ones, checks the stored ones, collects those of files no longer present.
   */
  async update(files: readonly WorkspaceFileEntry[], onProgress?: (p: UpdateProgress) => void, signal?: AbortSignal): Promise<UpdateReport> {
    const started = performance.now();
    const notesBefore = this.notes.length;
    const entries: Entry[] = [];
    let built = 0;
    let reused = 0;
    let rebuiltCorrupt = 0;
    let tokensPrefilled = 0;
    let workspaceTokens = 0;
    for (const file of files) {
      if (signal?.aborted) throw new IngestCancelledError(`Building workspace segments was cancelled after ${entries.length} of ${files.length} files.`);
      const contentHash = this.contentHashOf(file);
      const name = this.segmentName(file.path, contentHash);
      const partial = { path: file.path, text: file.text, name, contentHash };
      let entry: Entry | undefined;
      const stored = this.readStored(partial);
      if (stored.contents) {
        entry = { ...partial, tokens: stored.contents.header.tokens, rows: stored.contents.header.rows };
        reused++;
      } else {
        if (stored.corrupt) rebuiltCorrupt++;
        entry = await this.buildAndStore(partial);
        built++;
        tokensPrefilled += entry.tokens;
      }
      workspaceTokens += entry.tokens;
      entries.push(entry);
      onProgress?.({ filesDone: entries.length, filesTotal: files.length, built, tokensPrefilled });
    }
    this.entries = entries;
    this.index = undefined;
    const removed = this.store.commitWorkspace(`${this.settings.workspaceId}\n${this.modelId}\n${this.settingsId}`, entries.map((e) => e.name));
    const warnings = [...this.store.warnings, ...this.notes.slice(notesBefore)];
    return { files: entries.length, built, reused, rebuiltCorrupt, removed, workspaceTokens, tokensPrefilled, ms: performance.now() - started, persisted: this.store.persisting, warnings };
  }

  /** The content hash a segment is stored under: of the file's segment text (its header included). */
  contentHashOf(file: WorkspaceFileEntry): string {
    return sha256(segmentText(file));
  }

  /** The store name of a file's segment for this model and these settings. */
  segmentName(path: string, contentHash: string): string {
    return sha256(`${this.modelId}\n${this.settingsId}\n${path}\n${contentHash}`).slice(0, 40);
  }

  /** Tokens of a file's segment text (what prefilling it costs). */
  countTokens(file: WorkspaceFileEntry): number {
    return this.tokenizer.encode(segmentText(file), { addSpecialTokens: false }).length;
  }

  /** The stored segment of a file with this content, read and checked once; undefined if none (or corrupt: removed). */
  storedRef(path: string, contentHash: string): SegmentRef | undefined {
    const name = this.segmentName(path, contentHash);
    if (!this.store.has(name)) return undefined;
    const stored = this.readStored({ path, name, contentHash });
    return stored.contents ? { path, name, contentHash, tokens: stored.contents.header.tokens, rows: stored.contents.header.rows } : undefined;
  }

  /** Prefills one file and stores its segment (the workspace index's unit of work); `signal` stops it between chunks. */
  async indexFile(file: WorkspaceFileEntry, signal?: AbortSignal): Promise<SegmentRef> {
    const contentHash = this.contentHashOf(file);
    const { text: _text, ...ref } = await this.buildAndStore({ path: file.path, text: file.text, name: this.segmentName(file.path, contentHash), contentHash }, signal);
    return ref;
  }

  /** Assembles the cache for a question from the files of the last update. */
  async assemble(question: string, options: AssembleOptions = {}): Promise<AssembledCache> {
    this.index ??= new RelevanceIndex(this.entries);
    // Follow-up questions: the earlier questions count towards relevance too.
    const scores = this.index.score([...recentTurns(options.history).map((t) => t.question), question].join('\n'));
    const byPath = new Map(this.entries.map((e) => [e.path, e.text]));
    return this.assembleFrom(question, this.entries, scores, options, async (p) => byPath.get(p));
  }

  /**
   * Assembles the cache for a question from stored segments and their relevance scores (in the
   * same order). A segment found missing or corrupt is rebuilt from `textOf(path)`; a file whose
   * text is gone by then is left out (named in `dropped`).
   */
  async assembleFrom(
    question: string,
    segments: readonly SegmentRef[],
    scores: number[],
    options: AssembleOptions,
    textOf: (path: string) => Promise<string | undefined>,
  ): Promise<AssembledCache> {
    const started = performance.now();
    const notesBefore = this.notes.length;
    this.assemblies++;
    const capacity = this.settings.capacity;
    const parts = splitAskPrompt(this.tokenizer, question, options.history);
    const questionIds = this.tokenizer.encode(parts.suffix, { addSpecialTokens: false });
    const P = this.prefixIds.length;
    const reserve = options.reserveRows ?? DEFAULT_RESERVE_ROWS;
    const budget = Math.min(options.budget ?? capacity, capacity);
    const segmentBudget = Math.min(options.segmentRows ?? Infinity, Math.max(0, budget - P - (options.segmentRows === undefined ? questionIds.length + reserve : 0)));
    const entries = segments.map((e) => ({ ...e }));
    if (options.focus !== undefined) {
      const at = entries.findIndex((e) => e.path === options.focus);
      // Twice the best score: a clear lead, so allocateRows gives it at least half its rows.
      if (at >= 0) scores[at] = 2 * scores.reduce((m, x) => Math.max(m, x), 0) + 1;
    }
    const allocation = allocateRows(
      entries.map((e, i) => ({ storedRows: e.rows, score: scores[i]! })),
      segmentBudget,
      options,
    );
    const minRows = options.minRows ?? 4;
    const dropped: DroppedSegment[] = allocation.dropped.map((i) => ({
      path: entries[i]!.path,
      tokens: entries[i]!.tokens,
      reason: `the ${segmentBudget} rows left for files (capacity ${budget} − prefix ${P} − question ${questionIds.length} − reserve ${reserve}) cannot give all ${entries.length} files their minimum of ${minRows} rows; the least relevant were left out (raise --capacity or include fewer files)`,
    }));
    const chosen = entries
      .map((_, i) => i)
      .filter((i) => allocation.rows[i]! > 0)
      .sort((a, b) => scores[a]! - scores[b]! || (entries[b]!.path < entries[a]!.path ? -1 : 1));
    if (options.order) {
      const rank = new Map(options.order.map((p, k) => [p, k]));
      const at = (i: number): number => rank.get(entries[i]!.path) ?? -1;
      chosen.sort((a, b) => at(a) - at(b));
    }

    const cache = this.session.createCache(budget);
    if (P > 0) await this.session.forward(this.prefixIds, cache, { logits: 'none' });
    const { numLayers, numKvHeads: heads, headDim: dim } = cache.shape;
    const total = P + chosen.reduce((n, i) => n + allocation.rows[i]!, 0);
    const keys = Array.from({ length: numLayers }, () => new Float32Array(heads * total * dim));
    const values = Array.from({ length: numLayers }, () => new Float32Array(heads * total * dim));
    if (P > 0) {
      for (let layer = 0; layer < numLayers; layer++) {
        copyRows(toFloat32(cache.keys(layer)), P, 0, P, keys[layer]!, total, 0, heads, dim);
        copyRows(toFloat32(cache.values(layer)), P, 0, P, values[layer]!, total, 0, heads, dim);
      }
    }
    const files: IncludedSegment[] = [];
    let slot = P;
    let tokensRepresented = P;
    for (const i of chosen) {
      const entry = entries[i]!;
      const rows = allocation.rows[i]!;
      let rebuilt: RebuiltRows;
      try {
        rebuilt = await this.rebuildRows(entry, rows, textOf);
      } catch (error) {
        if (!(error instanceof SegmentTextGoneError)) throw error;
        dropped.push({ path: entry.path, tokens: entry.tokens, reason: error.message });
        continue;
      }
      const { L } = rebuilt;
      const positions = Float64Array.from({ length: rows }, (_, j) => slot + j);
      // Every layer's keys rotated to their slots together (each row's angles once).
      const rotated = rebuilt.cached ? rebuilt.keys.map((k) => k.slice()) : rebuilt.keys;
      rotateRows(this.rotary, rotated, heads, rows, positions, 1);
      for (let layer = 0; layer < numLayers; layer++) {
        copyRows(rotated[layer]!, rows, 0, rows, keys[layer]!, total, slot, heads, dim);
        copyRows(rebuilt.values[layer]!, rows, 0, rows, values[layer]!, total, slot, heads, dim);
      }
      files.push({ path: entry.path, score: scores[i]!, tokens: entry.tokens, storedRows: L, rows, firstSlot: slot });
      slot += rows;
      tokensRepresented += entry.tokens;
    }
    cache.replaceRows(
      keys.map((k) => fromFloat32(k, cache)),
      values.map((v) => fromFloat32(v, cache)),
      total,
    );
    const warnings = [...this.store.warnings, ...this.notes.slice(notesBefore)];
    return { cache, questionIds, prefixRows: P, segmentBudget, files, dropped, tokensRepresented, assembleMs: performance.now() - started, warnings };
  }

  /** The token ids of the sequential prompt for the same files in the given order (for comparisons). */
  sequentialIds(paths: readonly string[], question: string): number[] {
    const byPath = new Map(this.entries.map((e) => [e.path, e]));
    const ids = [...this.prefixIds];
    for (const p of paths) ids.push(...this.tokenizer.encode(segmentText(byPath.get(p)!), { addSpecialTokens: false }));
    ids.push(...this.tokenizer.encode(splitAskPrompt(this.tokenizer, question).suffix, { addSpecialTokens: false }));
    return ids;
  }

  /** A stored segment that matches, or why there is none (missing, or corrupt/stale and removed). */
  private readStored(entry: Pick<Entry, 'path' | 'name' | 'contentHash'>): { contents?: SegmentFileContents; corrupt: boolean } {
    const bytes = this.store.read(entry.name);
    if (!bytes) return { corrupt: false };
    try {
      const contents = decodeSegmentFile(bytes, `segment ${entry.name} (${entry.path})`);
      const h = contents.header;
      if (h.model !== this.modelId || h.settings !== this.settingsId || h.path !== entry.path || h.contentHash !== entry.contentHash || h.codec !== this.codec.name) {
        throw new SegmentCorruptError(`segment ${entry.name} (${entry.path}) belongs to another model, setting or content; it will be rebuilt.`);
      }
      return { contents, corrupt: false };
    } catch (error) {
      if (!(error instanceof SegmentCorruptError)) throw error;
      this.notes.push(error.message);
      this.store.remove(entry.name);
      return { corrupt: true };
    }
  }

  private async buildAndStore(partial: Omit<Entry, 'tokens' | 'rows'>, signal?: AbortSignal): Promise<Entry> {
    const ids = this.tokenizer.encode(segmentText(partial), { addSpecialTokens: false });
    const segment = await buildSegment(this.session, this.rotary, this.prefixIds, ids, this.prefill, signal);
    const { numLayers, numKvHeads, headDim } = this.session.createCache(1).shape;
    const blocks: Uint8Array[] = [];
    for (let layer = 0; layer < numLayers; layer++) {
      blocks.push(this.codec.encode({ rows: segment.rows, numKvHeads, headDim, data: segment.keys[layer]! }, 'key', layer));
      blocks.push(this.codec.encode({ rows: segment.rows, numKvHeads, headDim, data: segment.values[layer]! }, 'value', layer));
    }
    const header: SegmentHeader = {
      version: SEGMENT_FORMAT_VERSION,
      model: this.modelId,
      settings: this.settingsId,
      path: partial.path,
      contentHash: partial.contentHash,
      tokens: segment.tokens,
      rows: segment.rows,
      sourceRows: segment.sourceRows,
      numLayers,
      numKvHeads,
      headDim,
      codec: this.codec.name,
      blockBytes: [],
    };
    this.store.write(partial.name, encodeSegmentFile(header, blocks));
    return { ...partial, tokens: segment.tokens, rows: segment.rows };
  }

  /** Bytes of rebuilt rows kept between assemblies. */
  get rebuiltRowsBytes(): number {
    return this.rebuiltBytes;
  }

  /** Forgets the rebuilt rows kept between assemblies (their memory is freed). */
  dropRebuiltRows(): void {
    this.rebuiltRows.clear();
    this.rebuiltBytes = 0;
  }

  /**
   * A segment's rows at `rows` rows (inverse DCT of its first `rows` coefficients), keys pre-RoPE:
   * from the rebuilt-rows cache, or decoded and rebuilt and cached if room can be made without
   * evicting rows this assembly used: an assembly larger than the cache then keeps its first part
   * for the next one, instead of each file evicting the one the next assembly needs first.
   */
  private async rebuildRows(entry: SegmentRef, rows: number, textOf: (path: string) => Promise<string | undefined>): Promise<RebuiltRows> {
    const key = `${entry.name}:${rows}`;
    const hit = this.rebuiltRows.get(key);
    if (hit) {
      this.rebuiltRows.delete(key);
      this.rebuiltRows.set(key, hit);
      hit.assembly = this.assemblies;
      this.rebuiltRowsHits++;
      return hit;
    }
    const { L, decoded } = await this.decodeSegment(entry, rows, textOf);
    const { numKvHeads: heads, headDim: dim } = decoded[0]!;
    const keys: Float32Array[] = [];
    const values: Float32Array[] = [];
    for (let k = 0; k < decoded.length; k += 2) {
      keys.push(inverseDct(decoded[k]!.data, heads, rows, dim, L));
      values.push(inverseDct(decoded[k + 1]!.data, heads, rows, dim, L));
    }
    const bytes = 8 * keys.length * heads * rows * dim;
    const limit = this.settings.rebuiltRowsCacheBytes ?? REBUILT_ROWS_CACHE_BYTES;
    for (const [k, old] of this.rebuiltRows) {
      if (this.rebuiltBytes + bytes <= limit) break;
      if (old.assembly === this.assemblies) continue;
      this.rebuiltRows.delete(k);
      this.rebuiltBytes -= old.bytes;
    }
    if (this.rebuiltBytes + bytes > limit) return { L, keys, values, cached: false };
    const rebuilt = { L, keys, values, cached: true, bytes, assembly: this.assemblies };
    this.rebuiltRows.set(key, rebuilt);
    this.rebuiltBytes += bytes;
    return rebuilt;
  }

  /**
   * The first `rows` rows of every block of a segment, decoded; a segment whose blocks the codec
   * refuses (written by another codec version or codebooks) is rebuilt once.
   */
  private async decodeSegment(entry: SegmentRef, rows: number, textOf: (path: string) => Promise<string | undefined>): Promise<{ L: number; decoded: SegmentBlock[] }> {
    const decodeAll = (contents: SegmentFileContents): SegmentBlock[] => contents.blocks.map((bytes, k) => this.codec.decode(bytes, k % 2 === 0 ? 'key' : 'value', k >> 1, rows));
    const contents = await this.contentsFor(entry, textOf);
    try {
      return { L: contents.header.sourceRows, decoded: decodeAll(contents) };
    } catch (error) {
      if (!(error instanceof SegmentCodecError)) throw error;
      this.notes.push(`segment of ${entry.path} could not be decoded (${error.message}); it was rebuilt.`);
      this.store.remove(entry.name);
      const again = await this.contentsFor(entry, textOf);
      return { L: again.header.sourceRows, decoded: decodeAll(again) };
    }
  }

  /** The segment's contents; rebuilt if its file went missing or bad since update(). */
  private async contentsFor(entry: SegmentRef, textOf: (path: string) => Promise<string | undefined>): Promise<SegmentFileContents> {
    const stored = this.readStored(entry);
    if (stored.contents) return stored.contents;
    const text = await textOf(entry.path);
    if (text === undefined || this.contentHashOf({ path: entry.path, text }) !== entry.contentHash) {
      throw new SegmentTextGoneError(`its segment was ${stored.corrupt ? 'corrupt' : 'missing'} and the file changed or vanished since it was indexed; it is indexed again in the background`);
    }
    this.notes.push(`segment of ${entry.path} was ${stored.corrupt ? 'corrupt' : 'missing'} when the cache was assembled; it was rebuilt.`);
    const rebuilt = await this.buildAndStore({ ...entry, text });
    Object.assign(entry, { tokens: rebuilt.tokens, rows: rebuilt.rows });
    const again = this.readStored(entry);
    if (!again.contents) throw new SegmentCorruptError(`segment of ${entry.path} could not be read back after it was rebuilt.`);
    return again.contents;
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
