// StreamingLLM (Xiao et al., "Efficient Streaming Language Models with Attention Sinks",
// arXiv 2309.17453; docs/kv-compression.md §3): S sink rows plus the most recent rows. When the next
// rows would not fit in N, the oldest non-sink rows are dropped so that exactly N rows remain
// after appending, and the kept keys are re-rotated from their old slots to their new ones.

import { copyRows, fromFloat32, toFloat32, type KvCompressor } from './compressor';
import type { KvCache } from './kvCache';
import { moveRows, type RotarySpec } from './rotary';

export class StreamingCompressor implements KvCompressor {
  readonly name = 'streaming';

  constructor(
    readonly capacity: number,
    readonly sinks: number,
    private readonly rotary: RotarySpec,
  ) {}

  /**
   * At most half the evictable span per forward pass (ours), so a prefill chunk always
   * attends to at least half a window of recent rows; and never past N while the cache is
   * not yet full.
   */
  maxChunk(cache: KvCache): number {
    const half = Math.max(1, Math.floor((this.capacity - this.sinks) / 2));
    return cache.rows < this.capacity ? Math.min(half, this.capacity - cache.rows) : half;
  }

  makeRoom(cache: KvCache, incoming: number): boolean {
    const n = cache.rows;
    if (n + incoming <= this.capacity) return false;
    const S = Math.min(this.sinks, n);
    const recent = this.capacity - this.sinks - incoming;
    if (recent < 0) {
      throw new RangeError(`StreamingCompressor: ${incoming} incoming rows do not fit next to ${this.sinks} sinks in ${this.capacity} rows`);
    }
    const keep = Math.min(recent, n - S);
    const from = n - keep;
    const outRows = S + keep;
    const { numLayers, numKvHeads: heads, headDim: dim } = cache.shape;
    const keys: Float32Array[] = [];
    const values: Float32Array[] = [];
    for (let layer = 0; layer < numLayers; layer++) {
      for (const isKey of [true, false]) {
        const all = toFloat32(isKey ? cache.keys(layer) : cache.values(layer));
        const out = new Float32Array(heads * outRows * dim);
        copyRows(all, n, 0, S, out, outRows, 0, heads, dim);
        copyRows(all, n, from, keep, out, outRows, S, heads, dim);
        (isKey ? keys : values).push(out);
      }
    }
    moveRows(this.rotary, keys, heads, outRows, S, keep, from, S);
    cache.replaceRows(
      keys.map((k) => fromFloat32(k, cache)),
      values.map((v) => fromFloat32(v, cache)),
      outRows,
    );
    return true;
  }
}
