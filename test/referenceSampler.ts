// The sampler as it was before partial selection: sort the whole vocabulary by logit for every draw. Kept
// as the reference the faster Sampler must match draw for draw (test/sampler.test.ts), and as
// the "before" of scripts/sampler-speed.ts.

import type { SamplingOptions } from '../src/engine/generate/sampler';
import { argmax } from '../src/engine/generate/sampler';

export function referenceSample(options: SamplingOptions, random: () => number, logits: Float32Array, context: readonly number[] = []): number {
  const x = Float32Array.from(logits);
  const penalty = options.repetitionPenalty ?? 1;
  if (penalty !== 1) {
    for (const id of new Set(context)) {
      const v = x[id]!;
      x[id] = v > 0 ? v / penalty : v * penalty;
    }
  }
  if (options.temperature === 0) return argmax(x);
  let order = Array.from({ length: x.length }, (_, i) => i).sort((a, b) => x[b]! - x[a]!);
  const topK = options.topK ?? 0;
  if (topK > 0 && topK < order.length) order = order.slice(0, topK);
  const max = x[order[0]!]!;
  const probs = order.map((id) => Math.exp((x[id]! - max) / options.temperature));
  const total = probs.reduce((a, b) => a + b, 0);
  const topP = options.topP ?? 1;
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
  let r = random() * mass;
  for (let i = 0; i < keep; i++) {
    r -= probs[i]!;
    if (r <= 0) return order[i]!;
  }
  return order[keep - 1]!;
}
