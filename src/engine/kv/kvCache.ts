// The key/value cache of one conversation: for every layer, keys and values of every cache
// row, in the layout the decoder graph takes them ([kv_heads, rows, head_dim], batch 1).
//
// A row's position is its slot: row r was (or, after compression, is treated as) at position r.
// So the next token always goes to position `rows`, and positions never exceed capacity − 1.
// Compressors (FreqKV, StreamingLLM) rewrite the rows through `replaceRows`; a forward pass
// appends its rows (`appendRows`) or, for graphs that output the whole cache, replaces them.

import type { KvElementType } from '../model/modelFolder';

export interface KvShape {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
}

/** Keys or values of one layer: float32, or float16 bit patterns when the graph wants float16. */
export type KvArray = Float32Array | Uint16Array;

export class KvCache {
  // Each layer's rows live in a buffer [kv_heads, stride, head_dim] with stride >= rows: rows
  // are appended in place (appendRows) and the buffer grows by a quarter when full, so a decode
  // step writes one row instead of copying the cache. replaceRows installs compact arrays
  // (stride = rows).
  private keyBuffers: KvArray[];
  private valueBuffers: KvArray[];
  private bufferRows = 0;
  private rowCount = 0;
  /** Compact copies handed out by keys()/values() while stride > rows, until the next change. */
  private compactKeys: (KvArray | undefined)[] = [];
  private compactValues: (KvArray | undefined)[] = [];

  constructor(
    readonly shape: KvShape,
    readonly elementType: KvElementType,
    /** The most rows the cache may hold. */
    readonly capacity: number,
  ) {
    this.keyBuffers = Array.from({ length: shape.numLayers }, () => this.newArray(0));
    this.valueBuffers = Array.from({ length: shape.numLayers }, () => this.newArray(0));
  }

  get rows(): number {
    return this.rowCount;
  }

  /** The slot position of the next row appended. */
  get nextPosition(): number {
    return this.rowCount;
  }

  get bytesPerElement(): number {
    return this.elementType === 'float16' ? 2 : 4;
  }

  /** Bytes one cache row takes over all layers, keys and values. */
  get bytesPerRow(): number {
    const { numLayers, numKvHeads, headDim } = this.shape;
    return numLayers * 2 * numKvHeads * headDim * this.bytesPerElement;
  }

  /** Bytes the cache holds now. */
  get bytes(): number {
    return this.rowCount * this.bytesPerRow;
  }

  /** One layer's keys as [kv_heads, rows, head_dim] (a view or a copy: read it, do not keep it across changes). */
  keys(layer: number): KvArray {
    return this.compact(layer, this.keyBuffers, this.compactKeys);
  }

  values(layer: number): KvArray {
    return this.compact(layer, this.valueBuffers, this.compactValues);
  }

  /**
   * The buffers as they are, [kv_heads, stride, head_dim] per layer, rows [0, rows) filled and
   * the rest unused: what a graph that masks unused rows reads without a copy.
   */
  buffers(): { keys: readonly KvArray[]; values: readonly KvArray[]; stride: number } {
    return { keys: this.keyBuffers, values: this.valueBuffers, stride: this.bufferRows };
  }

  /**
   * Replaces every layer's rows, e.g. with the `present` outputs of a forward pass
   * (the rows already cached followed by the new ones) or with compressed rows.
   */
  replaceRows(keys: KvArray[], values: KvArray[], rows: number): void {
    const perRow = this.shape.numKvHeads * this.shape.headDim;
    this.checkLayers(keys, values, rows * perRow, rows);
    this.keyBuffers = keys;
    this.valueBuffers = values;
    this.bufferRows = rows;
    this.rowCount = rows;
    this.dropCompactCopies();
  }

  /** Appends `rows` rows to every layer: keys[layer] and values[layer] are [kv_heads, rows, head_dim]. */
  appendRows(keys: KvArray[], values: KvArray[], rows: number): void {
    const { numKvHeads, headDim } = this.shape;
    this.checkLayers(keys, values, rows * numKvHeads * headDim, rows);
    const needed = this.rowCount + rows;
    if (needed > this.bufferRows) this.grow(Math.max(needed, Math.ceil((needed * 1.25) / 64) * 64));
    const stride = this.bufferRows;
    for (let layer = 0; layer < keys.length; layer++) {
      for (const [from, to] of [[keys[layer]!, this.keyBuffers[layer]!], [values[layer]!, this.valueBuffers[layer]!]] as const) {
        for (let h = 0; h < numKvHeads; h++) {
          to.set(from.subarray(h * rows * headDim, (h + 1) * rows * headDim), (h * stride + this.rowCount) * headDim);
        }
      }
    }
    this.rowCount = needed;
    this.dropCompactCopies();
  }

  clear(): void {
    this.keyBuffers = this.keyBuffers.map(() => this.newArray(0));
    this.valueBuffers = this.valueBuffers.map(() => this.newArray(0));
    this.bufferRows = 0;
    this.rowCount = 0;
    this.dropCompactCopies();
  }

  /** New buffers of `stride` rows (at least the rows held), the rows copied over. */
  private grow(stride: number): void {
    const { numKvHeads, headDim } = this.shape;
    const rows = this.rowCount;
    const move = (old: KvArray): KvArray => {
      const next = this.newArray(numKvHeads * stride * headDim);
      for (let h = 0; h < numKvHeads; h++) next.set(old.subarray(h * this.bufferRows * headDim, (h * this.bufferRows + rows) * headDim), h * stride * headDim);
      return next;
    };
    this.keyBuffers = this.keyBuffers.map(move);
    this.valueBuffers = this.valueBuffers.map(move);
    this.bufferRows = stride;
  }

  private compact(layer: number, buffers: KvArray[], copies: (KvArray | undefined)[]): KvArray {
    const buffer = buffers[layer]!;
    if (this.bufferRows === this.rowCount) return buffer;
    const cached = copies[layer];
    if (cached) return cached;
    const { numKvHeads, headDim } = this.shape;
    const out = this.newArray(numKvHeads * this.rowCount * headDim);
    for (let h = 0; h < numKvHeads; h++) out.set(buffer.subarray(h * this.bufferRows * headDim, (h * this.bufferRows + this.rowCount) * headDim), h * this.rowCount * headDim);
    copies[layer] = out;
    return out;
  }

  private dropCompactCopies(): void {
    this.compactKeys = [];
    this.compactValues = [];
  }

  private checkLayers(keys: KvArray[], values: KvArray[], elements: number, rows: number): void {
    if (keys.length !== this.shape.numLayers || values.length !== this.shape.numLayers) {
      throw new Error(`KvCache: ${keys.length} key and ${values.length} value layers for ${this.shape.numLayers} layers`);
    }
    for (let i = 0; i < keys.length; i++) {
      if (keys[i]!.length !== elements || values[i]!.length !== elements) {
        throw new Error(`KvCache: layer ${i} has ${keys[i]!.length}/${values[i]!.length} elements for ${rows} rows`);
      }
    }
  }

  private newArray(length: number): KvArray {
    return this.elementType === 'float16' ? new Uint16Array(length) : new Float32Array(length);
  }
}
