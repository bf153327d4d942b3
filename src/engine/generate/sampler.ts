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

export class Sampler {
  private readonly scratch: Float32Array;

  constructor(
    private readonly options: SamplingOptions,
    private readonly random: () => number,
    vocabSize: number,
  ) {
    if (!(options.temperature >= 0)) throw new RangeError(`temperature must be >= 0 (got ${options.temperature})`);
    if (options.topP !== undefined && !(options.topP > 0 && options.topP <= 1)) throw new RangeError(`top-p must be in (0, 1] (got ${options.topP})`);
    if (options.topK !== undefined && !(Number.isInteger(options.topK) && options.topK >= 0)) throw new RangeError(`top-k must be a whole number >= 0 (got ${options.topK})`);
    if (options.repetitionPenalty !== undefined && !(options.repetitionPenalty > 0)) throw new RangeError(`repetition penalty must be > 0 (got ${options.repetitionPenalty})`);
    this.scratch = new Float32Array(vocabSize);
  }

  /** logits [vocab] (not modified); context = the token ids seen so far, for the repetition penalty. */
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

    // Candidates sorted by logit, cut by top-k, then softmax at the temperature, then top-p.
    let order = Array.from({ length: x.length }, (_, i) => i).sort((a, b) => x[b]! - x[a]!);
    const topK = this.options.topK ?? 0;
    if (topK > 0 && topK < order.length) order = order.slice(0, topK);
    const max = x[order[0]!]!;
    const probs = order.map((id) => Math.exp((x[id]! - max) / this.options.temperature));
    const total = probs.reduce((a, b) => a + b, 0);
    const topP = this.options.topP ?? 1;
    let keep = order.length;
    if (topP < 1) {
      let cumulative = 0;
      for (let i = 0; i < order.length; i++) {
        cumulative += probs[i]! / total;
        if (cumulative >= topP) {
          keep = i + 1;
          break;
        }
      }
    }
    let mass = 0;
    for (let i = 0; i < keep; i++) mass += probs[i]!;
    let r = this.random() * mass;
    for (let i = 0; i < keep; i++) {
      r -= probs[i]!;
      if (r <= 0) return order[i]!;
    }
    return order[keep - 1]!;
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
