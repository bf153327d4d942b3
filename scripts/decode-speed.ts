// Decode speed at a given cache length: prefill N tokens, then time single-token decode steps.
// Prints a table and writes JSON. Usage (see README):
//   node scripts/run-ts.js scripts/decode-speed.ts --model DIR [--model DIR …] [--contexts 256,2048] [--steps 32] [--json OUT]

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { inspectModelFolder } from '../src/engine/model/modelFolder';
import { DecoderSession } from '../src/engine/model/decoderSession';
import { argmax } from '../src/engine/generate/sampler';
import { createRng } from '../src/engine/random';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', multiple: true },
      contexts: { type: 'string', default: '256,2048' },
      steps: { type: 'string', default: '32' },
      threads: { type: 'string', default: '0' },
      json: { type: 'string' },
    },
  });
  const contexts = values.contexts.split(',').map(Number);
  const steps = Number(values.steps);
  const rows: Record<string, unknown>[] = [];
  for (const dir of values.model ?? []) {
    const folder = inspectModelFolder(dir);
    const session = await DecoderSession.open(folder, { threads: Number(values.threads) });
    const vocab = folder.config.vocabSize;
    for (const context of contexts) {
      const cache = session.createCache(context + steps + 1);
      const random = createRng(context);
      const prompt = Array.from({ length: context }, () => Math.floor(random() * vocab));
      const p0 = performance.now();
      let logits: Float32Array = new Float32Array(0);
      for (let at = 0; at < context; at += 256) logits = await session.forward(prompt.slice(at, at + 256), cache);
      const prefillMs = performance.now() - p0;
      let token = argmax(logits.subarray(logits.length - vocab));
      const d0 = performance.now();
      for (let i = 0; i < steps; i++) {
        logits = await session.forward([token], cache);
        token = argmax(logits.subarray(logits.length - vocab));
      }
      const decodeMs = performance.now() - d0;
      const row = {
        model: path.basename(dir),
        weightsBytes: folder.bytesOnDisk,
        contextTokens: context,
        prefillTokensPerSecond: (context / prefillMs) * 1000,
        decodeTokensPerSecond: (steps / decodeMs) * 1000,
        cacheBytes: cache.bytes,
        peakRssBytes: process.memoryUsage().rss,
      };
      rows.push(row);
      console.log(
        `${row.model.padEnd(24)} context ${String(context).padStart(6)}  prefill ${row.prefillTokensPerSecond.toFixed(1).padStart(9)} tok/s  decode ${row.decodeTokensPerSecond.toFixed(1).padStart(9)} tok/s  cache ${(row.cacheBytes / 1e6).toFixed(2)} MB`,
      );
    }
    await session.release();
  }
  if (values.json) {
    fs.mkdirSync(path.dirname(values.json), { recursive: true });
    fs.writeFileSync(values.json, `${JSON.stringify({ rows }, null, 2)}\n`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
