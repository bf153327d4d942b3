// Ours ÷ transformers.js measured so that both see the same machine load: both engines are
// loaded in one process on the same model folder and take turns, ours then theirs, on every
// prefill and every decode step (full caches, greedy, the same tokens). On a shared machine the
// separate-process figures of `freqkv bench speed` swing with other work; turns make the
// ratio fair even then. Usage:
//   node scripts/run-ts.js scripts/speed-ratio-interleaved.ts --model DIR [--model DIR …]
//       [--contexts 256,1024] [--steps 16] [--rounds 2] [--threads 0] [--json OUT]

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Engine } from '../src/engine/engine';
import { argmax } from '../src/engine/generate/sampler';
import { benchTokens } from '../src/engine/bench/speedProbe';

interface TjsTensor {
  dims: number[];
  data: unknown;
}
type TjsModel = ((inputs: Record<string, unknown>) => Promise<Record<string, TjsTensor>>) & { dispose(): Promise<unknown> };
interface Transformers {
  env: { localModelPath: string; allowRemoteModels: boolean; allowLocalModels: boolean };
  AutoModelForCausalLM: { from_pretrained(id: string, options: Record<string, unknown>): Promise<TjsModel> };
  Tensor: new (type: string, data: BigInt64Array, dims: number[]) => TjsTensor;
  DynamicCache: new (entries: Record<string, TjsTensor>) => { update(entries: Record<string, TjsTensor>): void };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', multiple: true },
      contexts: { type: 'string', default: '256,1024' },
      steps: { type: 'string', default: '16' },
      rounds: { type: 'string', default: '2' },
      threads: { type: 'string', default: '0' },
      json: { type: 'string' },
    },
  });
  const threads = Number(values.threads);
  const steps = Number(values.steps);
  const rounds = Number(values.rounds);
  const text = fs.readFileSync(path.join(__dirname, '..', '..', 'bench', 'texts', 'the-lighthouse-cat.txt'), 'utf8');
  const t = (await import('@huggingface/transformers')) as unknown as Transformers;
  t.env.allowRemoteModels = false;
  t.env.allowLocalModels = true;
  const rows: Record<string, unknown>[] = [];
  for (const dir of values.model ?? []) {
    const full = path.resolve(dir);
    const engine = await Engine.load({ modelDir: full, threads });
    t.env.localModelPath = `${path.dirname(full)}${path.sep}`;
    const theirs = await t.AutoModelForCausalLM.from_pretrained(path.basename(full), {
      local_files_only: true,
      dtype: 'fp32',
      device: 'cpu',
      session_options: { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential' },
    });
    const int64 = (v: number[]): TjsTensor => new t.Tensor('int64', BigInt64Array.from(v.map(BigInt)), [1, v.length]);
    const ones = (n: number): TjsTensor => new t.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]);
    const pastOf = (o: Record<string, TjsTensor>): Record<string, TjsTensor> =>
      Object.fromEntries(Object.entries(o).filter(([k]) => k.startsWith('present')).map(([k, v]) => [k.replace('present', 'past_key_values'), v]));
    const last = (data: Float32Array, vocab: number): number => argmax(data.subarray(data.length - vocab));
    const vocab = engine.folder.config.vocabSize;
    for (const L of values.contexts.split(',').map(Number)) {
      const ids = benchTokens(engine.tokenizer, text, L);
      const time = { oursPrefill: Infinity, theirsPrefill: Infinity, oursDecode: Infinity, theirsDecode: Infinity };
      for (let round = 0; round < rounds; round++) {
        // Prefill, ours (chunks of 128, as the generator) then theirs (one forward pass).
        const cache = engine.session.createCache(L + steps + 1);
        let t0 = performance.now();
        let logits: Float32Array = new Float32Array(0);
        for (let at = 0; at < L; at += 128) logits = await engine.session.forward(ids.slice(at, at + 128), cache, { logits: at + 128 >= L ? 'last' : 'none' });
        time.oursPrefill = Math.min(time.oursPrefill, performance.now() - t0);
        let ourToken = last(logits, vocab);
        t0 = performance.now();
        let out = await theirs({ input_ids: int64(ids), attention_mask: ones(L) });
        time.theirsPrefill = Math.min(time.theirsPrefill, performance.now() - t0);
        const past = new t.DynamicCache(pastOf(out));
        let theirToken = last(out.logits!.data as Float32Array, vocab);
        // Decode steps in turns.
        let ours = 0;
        let them = 0;
        for (let i = 0; i < steps; i++) {
          t0 = performance.now();
          ourToken = last(await engine.session.forward([ourToken], cache), vocab);
          ours += performance.now() - t0;
          t0 = performance.now();
          out = await theirs({ input_ids: int64([theirToken]), attention_mask: ones(L + i + 1), past_key_values: past });
          past.update(pastOf(out));
          theirToken = last(out.logits!.data as Float32Array, vocab);
          them += performance.now() - t0;
        }
        time.oursDecode = Math.min(time.oursDecode, ours);
        time.theirsDecode = Math.min(time.theirsDecode, them);
      }
      const row = {
        model: path.basename(full),
        contextTokens: L,
        decodeSteps: steps,
        rounds,
        oursPrefillTokensPerSecond: (L / time.oursPrefill) * 1000,
        theirsPrefillTokensPerSecond: (L / time.theirsPrefill) * 1000,
        prefillRatio: time.theirsPrefill / time.oursPrefill,
        oursDecodeTokensPerSecond: (steps / time.oursDecode) * 1000,
        theirsDecodeTokensPerSecond: (steps / time.theirsDecode) * 1000,
        decodeRatio: time.theirsDecode / time.oursDecode,
      };
      rows.push(row);
      console.log(
        `${row.model} L=${L}: prefill ours ${row.oursPrefillTokensPerSecond.toFixed(1)} theirs ${row.theirsPrefillTokensPerSecond.toFixed(1)} tok/s (×${row.prefillRatio.toFixed(2)}); decode ours ${row.oursDecodeTokensPerSecond.toFixed(1)} theirs ${row.theirsDecodeTokensPerSecond.toFixed(1)} tok/s (×${row.decodeRatio.toFixed(2)})`,
      );
    }
    await theirs.dispose();
    await engine.dispose();
  }
  if (values.json) {
    fs.mkdirSync(path.dirname(values.json), { recursive: true });
    fs.writeFileSync(values.json, `${JSON.stringify({ note: 'both engines in one process, taking turns on every prefill and decode step; best of the rounds', rows }, null, 2)}\n`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
