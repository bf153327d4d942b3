// Picks the next token from a row of logits. Randomness comes in from outside (a seeded
// generator), so the same seed gives the same text.

export interface SamplingOptions {
  /** 0 means greedy (argmax); otherwise logits are divided by it before the softmax. */
  temperature: number;
  /** Keep only the k most likely tokens (0 = off). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p (1 = off). */
  topP?: number;
  /** > 1 makes tokens already in the context less likely (as in CTRL / Hugging Face). */
  repetitionPenalty?: number;
}

/** Tokens with a probability (relative to the most likely one) at or above these are sorted first; lower ones only if needed. */
const THRESHOLDS = [1e-3, 1e-7, 1e-12, 1e-20, 0];
/** Ids are packed below the sort key; vocabularies up to 2^20 tokens. */
const ID_BITS = 2 ** 20;

export class Sampler {
  private readonly scratch: Float32Array;
  /** exp((x − max) / T) per token. */
  private readonly weights: Float64Array;
  /** Sort keys: descending logit, then ascending id, as one float64 each. */
  private readonly keys: Float64Array;
  private readonly bits = new Float32Array(1);
  private readonly bitsAsInt = new Uint32Array(this.bits.buffer);

  constructor(
    private readonly options: SamplingOptions,
    private readonly random: () => number,
    vocabSize: number,
  ) {
    if (!(options.temperature >= 0)) throw new RangeError(`temperature must be >= 0 (got ${options.temperature})`);
    if (options.topP !== undefined && !(options.topP > 0 && options.topP <= 1)) throw new RangeError(`top-p must be in (0, 1] (got ${options.topP})`);
    if (options.topK !== undefined && !(Number.isInteger(options.topK) && options.topK >= 0)) throw new RangeError(`top-k must be a whole number >= 0 (got ${options.topK})`);
    if (options.repetitionPenalty !== undefined && !(options.repetitionPenalty > 0)) throw new RangeError(`repetition penalty must be > 0 (got ${options.repetitionPenalty})`);
    if (vocabSize > ID_BITS) throw new RangeError(`the sampler handles vocabularies up to ${ID_BITS} tokens (got ${vocabSize})`);
    this.scratch = new Float32Array(vocabSize);
    this.weights = new Float64Array(vocabSize);
    this.keys = new Float64Array(vocabSize);
  }

  /**
   * logits [vocab] (not modified); context = the token ids seen so far, for the repetition penalty.
   *
   * The draw is the one of sorting every token by logit (ties by id), cutting to top-k, taking
   * the softmax at the temperature, cutting to the smallest prefix reaching top-p, and walking
   * that prefix with one random number. It sorts only as much as that needs: top-k by a bounded
   * selection, otherwise the tokens above a probability threshold (lowered until the cut and the
   * walk fall inside them), with the sum over the whole vocabulary taken in id order.
   */
  sample(logits: Float32Array, context: readonly number[] = []): number {
    const x = this.scratch;
    x.set(logits.subarray(0, x.length));
    const penalty = this.options.repetitionPenalty ?? 1;
    if (penalty !== 1) {
      for (const id of new Set(context)) {
        const v = x[id]!;
        x[id] = v > 0 ? v / penalty : v * penalty;
      }
    }
    if (this.options.temperature === 0) return argmax(x);
    const T = this.options.temperature;
    const topK = this.options.topK ?? 0;
    const topP = this.options.topP ?? 1;
    const w = this.weights;

    if (topK > 0 && topK < x.length) {
      // The k best, sorted; everything else is left out, so every sum is the full sort's.
      const order = this.sortedIds(this.bestK(topK));
      const max = x[order[0]!]!;
      let total = 0;
      for (const id of order) total += w[id] = Math.exp((x[id]! - max) / T);
      return this.walk(order.subarray(0, this.cut(order, total, topP) ?? order.length));
    }

    let max = -Infinity;
    for (let i = 0; i < x.length; i++) if (x[i]! > max) max = x[i]!;
    let total = 0;
    for (let i = 0; i < x.length; i++) total += w[i] = Math.exp((x[i]! - max) / T);
    if (topP < 1) {
      // Sort the likely tokens; if the top-p cut is not among them, sort more.
      for (const threshold of THRESHOLDS) {
        const order = this.sortedIds(this.idsAbove(threshold));
        const keep = this.cut(order, total, topP);
        if (keep !== undefined || threshold === 0) return this.walk(order.subarray(0, keep ?? order.length));
      }
    }
    // No cut: one random number, then the walk over as much of the sorted vocabulary as it needs.
    const r = this.random() * total;
    for (const threshold of THRESHOLDS) {
      const order = this.sortedIds(this.idsAbove(threshold));
      let left = r;
      for (let i = 0; i < order.length; i++) {
        left -= w[order[i]!]!;
        if (left <= 0) return order[i]!;
      }
      if (threshold === 0) return order[order.length - 1]!;
    }
    throw new Error('Sampler: unreachable');
  }

  /** The smallest prefix of `order` whose probabilities reach top-p; undefined if `order` does not reach it. */
  private cut(order: Uint32Array, total: number, topP: number): number | undefined {
    if (topP >= 1) return order.length;
    const w = this.weights;
    let cumulative = 0;
    for (let i = 0; i < order.length; i++) {
      cumulative += w[order[i]!]! / total;
      if (cumulative >= topP) return i + 1;
    }
    return undefined;
  }

  /** Draws from the kept tokens (sorted) in proportion to their weights. */
  private walk(kept: Uint32Array): number {
    const w = this.weights;
    let mass = 0;
    for (let i = 0; i < kept.length; i++) mass += w[kept[i]!]!;
    let r = this.random() * mass;
    for (let i = 0; i < kept.length; i++) {
      r -= w[kept[i]!]!;
      if (r <= 0) return kept[i]!;
    }
    return kept[kept.length - 1]!;
  }

  /** The sort key of token `id`: ascending key = descending logit, then ascending id. */
  private key(id: number): number {
    this.bits[0] = this.scratch[id]! + 0; // −0 sorts as +0
    const b = this.bitsAsInt[0]!;
    const ordered = b & 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0; // ascending with the float
    return (0xffffffff - ordered) * ID_BITS + id;
  }

  private sortedIds(keys: Float64Array): Uint32Array {
    keys.sort();
    const ids = new Uint32Array(keys.length);
    for (let i = 0; i < keys.length; i++) ids[i] = keys[i]! % ID_BITS;
    return ids;
  }

  /** Sort keys of the tokens whose weight is at least `threshold` (all of them at 0). */
  private idsAbove(threshold: number): Float64Array {
    const w = this.weights;
    let n = 0;
    for (let i = 0; i < w.length; i++) if (w[i]! >= threshold) this.keys[n++] = this.key(i);
    return this.keys.subarray(0, n);
  }

  /** Sort keys of the k tokens with the smallest keys (the k best), by a bounded max-heap. */
  private bestK(k: number): Float64Array {
    const heap = this.keys.subarray(0, k);
    for (let i = 0; i < k; i++) heap[i] = this.key(i);
    const siftDown = (start: number): void => {
      let i = start;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let top = i;
        if (l < k && heap[l]! > heap[top]!) top = l;
        if (r < k && heap[r]! > heap[top]!) top = r;
        if (top === i) return;
        const t = heap[i]!;
        heap[i] = heap[top]!;
        heap[top] = t;
        i = top;
      }
    };
    for (let i = (k >> 1) - 1; i >= 0; i--) siftDown(i);
    for (let id = k; id < this.scratch.length; id++) {
      const key = this.key(id);
      if (key < heap[0]!) {
        heap[0] = key;
        siftDown(0);
      }
    }
    return heap;
  }
}

/** Index of the largest value; the first one on ties, as llama2.c does. */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < x.length; i++) {
    if (x[i]! > bestValue) {
      bestValue = x[i]!;
      best = i;
    }
  }
  return best;
}
