// The key/value cache of one conversation: for every layer, keys and values of every cache
// row, in the layout the decoder graph takes them ([kv_heads, rows, head_dim], batch 1).
//
// A row's position is its slot: row r was (or, after compression, is treated as) at position r.
// So the next token always goes to position `rows`, and positions never exceed capacity − 1.
// Compressors (FreqKV, StreamingLLM) rewrite the rows in place through `replaceRows`.
//
// Speed: a forward pass writes its `present` outputs straight into buffers the cache owns
// (`outputArrays`), two per layer and kind used in turn, each grown with headroom, so decoding
// allocates nothing and copies nothing out of onnxruntime. An array the cache hands out through
// `keys`/`values` or is given through `replaceRows` is never written again: only buffers that
// nobody outside has seen are reused.

import type { KvElementType } from '../model/modelFolder';

export interface KvShape {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
}

/** Keys or values of one layer: float32, or float16 bit patterns when the graph wants float16. */
export type KvArray = Float32Array | Uint16Array;

/** Extra rows a reusable buffer gets when it grows: 1/8 of the rows plus 64. */
const headroomRows = (rows: number): number => rows + (rows >> 3) + 64;

export class KvCache {
  private layerKeys: KvArray[];
  private layerValues: KvArray[];
  private rowCount = 0;
  /** Per layer, then keys (0) and values (1): a buffer of ours free for the next forward pass's output. */
  private readonly spare: (ArrayBuffer | undefined)[][];
  /** Buffers this cache allocated and nobody outside has seen, so it may overwrite them. */
  private readonly reusable = new WeakSet<ArrayBufferLike>();

  constructor(
    readonly shape: KvShape,
    readonly elementType: KvElementType,
    /** The most rows the cache may hold. */
    readonly capacity: number,
  ) {
    this.layerKeys = Array.from({ length: shape.numLayers }, () => this.emptyArray());
    this.layerValues = Array.from({ length: shape.numLayers }, () => this.emptyArray());
    this.spare = Array.from({ length: shape.numLayers }, () => [undefined, undefined]);
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

  /** Layer `layer`'s keys, exactly rows × kv_heads × head_dim elements. The array stays valid: the cache never writes into it again. */
  keys(layer: number): KvArray {
    const array = this.layerKeys[layer]!;
    this.reusable.delete(array.buffer);
    return array;
  }

  /** Layer `layer`'s values, as `keys`. */
  values(layer: number): KvArray {
    const array = this.layerValues[layer]!;
    this.reusable.delete(array.buffer);
    return array;
  }

  /**
   * For the decoder session only: the keys (kind 0) or values (kind 1) of a layer to feed to
   * the graph as past rows, without handing them out (so their buffer may be reused).
   */
  pastArray(layer: number, kind: 0 | 1): KvArray {
    return kind === 0 ? this.layerKeys[layer]! : this.layerValues[layer]!;
  }

  /**
   * For the decoder session only: arrays of exactly `rows` rows for every layer's keys and
   * values, in buffers of the cache's own that hold none of its current rows, for a forward
   * pass to write its `present` outputs into; then pass them to `replaceRows`.
   */
  outputArrays(rows: number): { keys: KvArray[]; values: KvArray[] } {
    const perRow = this.shape.numKvHeads * this.shape.headDim;
    const length = rows * perRow;
    const keys: KvArray[] = [];
    const values: KvArray[] = [];
    for (let layer = 0; layer < this.shape.numLayers; layer++) {
      for (const kind of [0, 1] as const) {
        let buffer = this.spare[layer]![kind];
        if (!buffer || buffer.byteLength < length * this.bytesPerElement) {
          buffer = new ArrayBuffer(Math.max(rows, Math.min(this.capacity, headroomRows(rows))) * perRow * this.bytesPerElement);
          this.reusable.add(buffer);
        }
        this.spare[layer]![kind] = undefined;
        const array = this.elementType === 'float16' ? new Uint16Array(buffer, 0, length) : new Float32Array(buffer, 0, length);
        (kind === 0 ? keys : values).push(array);
      }
    }
    return { keys, values };
  }

  /**
   * Replaces every layer's rows, e.g. with the `present` outputs of a forward pass
   * (the rows already cached followed by the new ones) or with compressed rows.
   */
  replaceRows(keys: KvArray[], values: KvArray[], rows: number): void {
    const perRow = this.shape.numKvHeads * this.shape.headDim;
    if (keys.length !== this.shape.numLayers || values.length !== this.shape.numLayers) {
      throw new Error(`KvCache.replaceRows: ${keys.length} key and ${values.length} value layers for ${this.shape.numLayers} layers`);
    }
    for (let i = 0; i < keys.length; i++) {
      if (keys[i]!.length !== rows * perRow || values[i]!.length !== rows * perRow) {
        throw new Error(`KvCache.replaceRows: layer ${i} has ${keys[i]!.length}/${values[i]!.length} elements for ${rows} rows`);
      }
    }
    for (let i = 0; i < keys.length; i++) {
      this.recycle(i, 0, this.layerKeys[i]!, keys[i]!);
      this.recycle(i, 1, this.layerValues[i]!, values[i]!);
    }
    this.layerKeys = keys;
    this.layerValues = values;
    this.rowCount = rows;
  }

  /** Keeps the buffer of a replaced array as the layer's spare if it is ours, unseen, and not the new array's. */
  private recycle(layer: number, kind: 0 | 1, old: KvArray, replacement: KvArray): void {
    if (old.buffer !== replacement.buffer && this.reusable.has(old.buffer) && old.buffer instanceof ArrayBuffer) {
      const spare = this.spare[layer]![kind];
      if (!spare || spare.byteLength < old.buffer.byteLength) this.spare[layer]![kind] = old.buffer;
    }
  }

  clear(): void {
    this.layerKeys = this.layerKeys.map(() => this.emptyArray());
    this.layerValues = this.layerValues.map(() => this.emptyArray());
    this.rowCount = 0;
  }

  private emptyArray(): KvArray {
    return this.elementType === 'float16' ? new Uint16Array(0) : new Float32Array(0);
  }
}
