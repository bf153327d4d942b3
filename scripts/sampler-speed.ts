// Time per draw of the sampler against the sort-everything reference it replaced, on
// a Qwen2.5-sized vocabulary (151,936) with peaked (trained-model-like) and flat (random-model)
// logits. Prints a table and writes JSON. Usage:
//   node scripts/run-ts.js scripts/sampler-speed.ts [--vocab 151936] [--draws 40] [--json OUT]

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Sampler, type SamplingOptions } from '../src/engine/generate/sampler';
import { createRng } from '../src/engine/random';
import { referenceSample } from '../test/referenceSampler';

const { values } = parseArgs({ options: { vocab: { type: 'string', default: '151936' }, draws: { type: 'string', default: '40' }, json: { type: 'string' } } });
const vocab = Number(values.vocab);
const draws = Number(values.draws);
const random = createRng(1);
const logits: Record<string, Float32Array> = {
  // A trained model's next-token logits: a few strong candidates over a long Gaussian tail.
  peaked: Float32Array.from({ length: vocab }, (_, i) => (i % 9973 === 0 ? 12 + 4 * random() : 3 * (random() + random() + random() - 1.5))),
  // A random-weight model: nearly uniform.
  flat: Float32Array.from({ length: vocab }, () => 0.1 * random()),
};
const settings: Record<string, SamplingOptions> = {
  'T 0.8, top-p 0.9 (the CLI default)': { temperature: 0.8, topP: 0.9 },
  'T 1, top-k 40': { temperature: 1, topK: 40 },
  'T 1 (no cut)': { temperature: 1 },
};
const rows: Record<string, unknown>[] = [];
for (const [shape, row] of Object.entries(logits)) {
  for (const [name, options] of Object.entries(settings)) {
    const sampler = new Sampler(options, createRng(5), vocab);
    const reference = createRng(5);
    let same = 0;
    const t0 = performance.now();
    const ours: number[] = [];
    for (let i = 0; i < draws; i++) ours.push(sampler.sample(row));
    const oursMs = (performance.now() - t0) / draws;
    const t1 = performance.now();
    for (let i = 0; i < draws; i++) if (referenceSample(options, reference, row) === ours[i]) same++;
    const referenceMs = (performance.now() - t1) / draws;
    rows.push({ vocab, logits: shape, setting: name, draws, oursMsPerDraw: oursMs, referenceMsPerDraw: referenceMs, speedup: referenceMs / oursMs, identicalDraws: same });
    console.log(`${shape.padEnd(7)} ${name.padEnd(36)} ours ${oursMs.toFixed(2).padStart(7)} ms/draw   sort-everything ${referenceMs.toFixed(2).padStart(7)} ms/draw   ${(referenceMs / oursMs).toFixed(1)}×   identical ${same}/${draws}`);
  }
}
if (values.json) {
  fs.mkdirSync(path.dirname(values.json), { recursive: true });
  fs.writeFileSync(values.json, `${JSON.stringify({ rows }, null, 2)}\n`);
}
