// The sampler, checked against probabilities computed here from the softmax definition.

import { describe, expect, it } from 'vitest';
import { Sampler, argmax, type SamplingOptions } from '../src/engine/generate/sampler';
import { createRng } from '../src/engine/random';
import { referenceSample } from './referenceSampler';

const logits = Float32Array.from([1.0, 3.0, 2.0, 3.0, -1.0]);

function softmax(x: number[], temperature: number): number[] {
  const max = Math.max(...x);
  const e = x.map((v) => Math.exp((v - max) / temperature));
  const total = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / total);
}

function frequencies(sampler: Sampler, input: Float32Array, draws: number, context: number[] = []): number[] {
  const counts = new Array<number>(input.length).fill(0);
  for (let i = 0; i < draws; i++) counts[sampler.sample(input, context)]!++;
  return counts.map((c) => c / draws);
}

describe('Sampler', () => {
  it('greedy takes the first of equal maxima, as llama2.c does', () => {
    expect(argmax(logits)).toBe(1);
    expect(new Sampler({ temperature: 0 }, createRng(1), 5).sample(logits)).toBe(1);
  });

  it('temperature sampling follows the softmax', () => {
    for (const temperature of [0.5, 1, 2]) {
      const observed = frequencies(new Sampler({ temperature }, createRng(7), 5), logits, 20_000);
      const expected = softmax(Array.from(logits), temperature);
      observed.forEach((p, i) => expect(Math.abs(p - expected[i]!), `T=${temperature} token ${i}`).toBeLessThan(0.015));
    }
  });

  it('top-k keeps the k most likely tokens', () => {
    const observed = frequencies(new Sampler({ temperature: 1, topK: 2 }, createRng(3), 5), logits, 5000);
    expect(observed[0]).toBe(0);
    expect(observed[2]).toBe(0);
    expect(observed[4]).toBe(0);
    expect(observed[1]! + observed[3]!).toBe(1);
  });

  it('top-p keeps the smallest set that reaches p', () => {
    const probs = softmax(Array.from(logits), 1);
    // Tokens 1 and 3 (equal) hold probs[1] * 2 of the mass; with p just below that, only they remain.
    const p = probs[1]! * 2 - 1e-6;
    const observed = frequencies(new Sampler({ temperature: 1, topP: p }, createRng(5), 5), logits, 5000);
    expect(observed[0]! + observed[2]! + observed[4]!).toBe(0);
    // With p just above it, token 2 joins.
    const wider = frequencies(new Sampler({ temperature: 1, topP: p + 2e-6 }, createRng(5), 5), logits, 5000);
    expect(wider[2]).toBeGreaterThan(0);
    expect(wider[0]! + wider[4]!).toBe(0);
  });

  it('the repetition penalty divides positive and multiplies negative logits of seen tokens', () => {
    const sampler = new Sampler({ temperature: 0, repetitionPenalty: 2 }, createRng(1), 5);
    // Seen: token 1 (3 → 1.5) and token 3 (3 → 1.5): token 2 (2.0) wins.
    expect(sampler.sample(logits, [1, 3])).toBe(2);
    const observed = frequencies(new Sampler({ temperature: 1, repetitionPenalty: 2 }, createRng(9), 5), logits, 20_000, [4]);
    const expected = softmax([1, 3, 2, 3, -2], 1);
    observed.forEach((p, i) => expect(Math.abs(p - expected[i]!)).toBeLessThan(0.015));
  });

  it('draws exactly what sorting the whole vocabulary draws, for the same seed', () => {
    const shapes: Record<string, (r: () => number) => number> = {
      peaked: (r) => 12 * (r() - 0.5) ** 3 * 8,
      flat: (r) => 0.05 * r(),
      ties: (r) => Math.round(4 * r()) / 2,
    };
    const settings: SamplingOptions[] = [
      { temperature: 1 },
      { temperature: 0.8, topP: 0.9 },
      { temperature: 0.7, topP: 0.5, repetitionPenalty: 1.3 },
      { temperature: 1.5, topK: 40 },
      { temperature: 1, topK: 1 },
      { temperature: 0.9, topK: 200, topP: 0.6 },
    ];
    let checked = 0;
    for (const vocab of [5, 3000, 20_000]) {
      for (const [name, shape] of Object.entries(shapes)) {
        const values = createRng(vocab);
        const rows = Array.from({ length: 4 }, () => Float32Array.from({ length: vocab }, () => shape(values)));
        for (const options of settings) {
          const ours = new Sampler(options, createRng(11), vocab);
          const reference = createRng(11);
          const context = [0, 2, vocab - 1];
          for (let draw = 0; draw < (vocab > 5000 ? 12 : 60); draw++) {
            const row = rows[draw % rows.length]!;
            expect(ours.sample(row, context), `${name} vocab ${vocab} ${JSON.stringify(options)} draw ${draw}`).toBe(referenceSample(options, reference, row, context));
            checked++;
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(1000);
  });

  it('rejects impossible settings', () => {
    expect(() => new Sampler({ temperature: -1 }, createRng(1), 5)).toThrow(/temperature/);
    expect(() => new Sampler({ temperature: 1, topP: 0 }, createRng(1), 5)).toThrow(/top-p/);
    expect(() => new Sampler({ temperature: 1, topK: 1.5 }, createRng(1), 5)).toThrow(/top-k/);
  });
});
