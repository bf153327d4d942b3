// The key/value cache of one conversation: for every layer, keys and values of every cache
// row, in the layout the decoder graph takes them ([kv_heads, rows, head_dim], batch 1).
//
// A row's position is its slot: row r was (or, after compression, is treated as) at position r.
// So the next token always goes to position `rows`, and positions never exceed capacity − 1.
// Compressors (FreqKV, StreamingLLM) rewrite the rows in place through `replaceRows`.

import type { KvElementType } from '../model/modelFolder';

export interface KvShape {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
}

/** Keys or values of one layer: float32, or float16 bit patterns when the graph wants float16. */
export type KvArray = Float32Array | Uint16Array;

export class KvCache {
  private layerKeys: KvArray[];
  private layerValues: KvArray[];
  private rowCount = 0;

  constructor(
    readonly shape: KvShape,
    readonly elementType: KvElementType,
    /** The most rows the cache may hold. */
    readonly capacity: number,
  ) {
    this.layerKeys = Array.from({ length: shape.numLayers }, () => this.emptyArray());
    this.layerValues = Array.from({ length: shape.numLayers }, () => this.emptyArray());
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

  keys(layer: number): KvArray {
    return this.layerKeys[layer]!;
  }

  values(layer: number): KvArray {
    return this.layerValues[layer]!;
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
    this.layerKeys = keys;
    this.layerValues = values;
    this.rowCount = rows;
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
