// Interleaved A/B of decoder variants (model folders and session options) in one process: every
// prefill chunk and every decode step runs on each variant in turn, so all variants see the same
// machine load (the machine is shared and noisy; `freqkv bench speed` runs configurations one
// after another). The calls are DecoderSession.forward as the generator makes them: prefill in
// chunks with no logits but the last token's, then greedy decode steps. Prints tokens/s and the
// ratio to the first variant, and writes JSON. Usage:
//   node scripts/run-ts.js scripts/speed-ab.ts --variant '{"name":"base","model":"DIR","rewrite":false}' \
//       --variant '{"name":"new","model":"DIR2"}' [--contexts 512,2048] [--steps 32] [--threads 2]
//       [--chunk 128] [--json OUT]
// A variant may also carry "onnxruntime" (session options over the engine's), "threads", "chunk",
// "prefillGraph" (false: the decode graph only) and "allLogits" (prefill asks for every
// position's logits).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { inspectModelFolder } from '../src/engine/model/modelFolder';
import { DecoderSession, type SessionOptions } from '../src/engine/model/decoderSession';
import { argmax } from '../src/engine/generate/sampler';

interface Variant {
  name: string;
  model: string;
  rewrite?: SessionOptions['rewrite'];
  onnxruntime?: SessionOptions['onnxruntime'];
  threads?: number;
  chunk?: number;
  /** false: run every chunk on the decode graph even if the folder has a prefill graph. */
  prefillGraph?: boolean;
  /** Ask for every prefill token's logits (as before the classifier only ran on the last position). */
  allLogits?: boolean;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      variant: { type: 'string', multiple: true },
      contexts: { type: 'string', default: '512,2048' },
      steps: { type: 'string', default: '32' },
      threads: { type: 'string', default: '2' },
      chunk: { type: 'string', default: '128' },
      json: { type: 'string' },
    },
  });
  const variants = (values.variant ?? []).map((v) => JSON.parse(v) as Variant);
  if (variants.length === 0) throw new Error('speed-ab: give at least one --variant');
  const steps = Number(values.steps);
  const loadStart = os.loadavg();
  const sessions: DecoderSession[] = [];
  for (const v of variants) {
    const t0 = performance.now();
    sessions.push(await DecoderSession.open(inspectModelFolder(v.model), { threads: v.threads ?? Number(values.threads), rewrite: v.rewrite, onnxruntime: v.onnxruntime, prefillGraph: v.prefillGraph }));
    console.log(`${v.name}: loaded in ${(performance.now() - t0).toFixed(0)} ms; rewrite: ${sessions.at(-1)!.graphChanges.join('; ') || 'none'}`);
  }
  const rows: Record<string, unknown>[] = [];
  for (const L of values.contexts.split(',').map(Number)) {
    const vocab = sessions[0]!.vocabSize;
    const prompt = Array.from({ length: L }, (_, i) => 3 + ((i * 7919) % (vocab - 3)));
    const caches = sessions.map((s) => s.createCache(L + steps + 2));
    const prefillMs = variants.map(() => 0);
    const next = variants.map(() => 0);
    const chunks = variants.map((v) => v.chunk ?? Number(values.chunk));
    const done = variants.map(() => 0);
    // Warm-up: one short forward each (first runs allocate).
    for (let i = 0; i < sessions.length; i++) await sessions[i]!.forward(prompt.slice(0, 4), sessions[i]!.createCache(8), { logits: 'last' });
    let round = 0;
    while (done.some((d) => d < L)) {
      const order = variants.map((_, i) => i);
      if (round++ % 2 === 1) order.reverse();
      for (const i of order) {
        if (done[i]! >= L) continue;
        const chunk = prompt.slice(done[i], done[i]! + chunks[i]!);
        const last = done[i]! + chunk.length >= L;
        const t0 = performance.now();
        const logits = await sessions[i]!.forward(chunk, caches[i]!, { logits: variants[i]!.allLogits ? 'all' : last ? 'last' : 'none' });
        prefillMs[i]! += performance.now() - t0;
        done[i]! += chunk.length;
        if (last) next[i] = argmax(logits.subarray(logits.length - vocab));
      }
    }
    const decodeMs: number[][] = variants.map(() => []);
    for (let step = 0; step < steps; step++) {
      const order = variants.map((_, i) => i);
      if (step % 2 === 1) order.reverse();
      for (const i of order) {
        const t0 = performance.now();
        const logits = await sessions[i]!.forward([next[i]!], caches[i]!, { logits: 'last' });
        decodeMs[i]!.push(performance.now() - t0);
        next[i] = argmax(logits.subarray(logits.length - vocab));
      }
    }
    const load = os.loadavg()[0]!;
    variants.forEach((v, i) => {
      const row = {
        variant: v.name,
        contextTokens: L,
        prefillTokensPerSecond: (L / prefillMs[i]!) * 1000,
        decodeTokensPerSecond: 1000 / median(decodeMs[i]!),
        prefillRatio: prefillMs[0]! / prefillMs[i]!,
        decodeRatio: median(decodeMs[0]!) / median(decodeMs[i]!),
        loadAverage1m: load,
      };
      rows.push(row);
      console.log(
        `L=${L} ${v.name.padEnd(16)} prefill ${row.prefillTokensPerSecond.toFixed(1)} tok/s (×${row.prefillRatio.toFixed(2)})  decode ${row.decodeTokensPerSecond.toFixed(2)} tok/s (×${row.decodeRatio.toFixed(2)})  load ${load.toFixed(1)}`,
      );
    });
  }
  for (const s of sessions) await s.release();
  if (values.json) {
    fs.mkdirSync(path.dirname(path.resolve(values.json)), { recursive: true });
    fs.writeFileSync(values.json, `${JSON.stringify({ note: 'interleaved A/B in one process; prefill = total time of the chunks, decode = median step', loadAverageAtStart: loadStart, loadAverageAtEnd: os.loadavg(), variants, rows }, null, 2)}\n`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
