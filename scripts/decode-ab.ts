// Before/after of the decode step, both in one process taking turns so both see the
// same machine load: "before" is DecoderSession.forward as it was before the decode-step work (new
// mask and position arrays every step, every `present` output allocated by onnxruntime and
// copied back), "after" is today's DecoderSession.forward. Same model, same tokens, each on its
// own onnxruntime session. (It measured the dropped variant that had onnxruntime write into
// reused cache buffers at 0.27–0.91× of "before".) Prints per-step medians and writes JSON. Usage:
//   node scripts/run-ts.js scripts/decode-ab.ts --model DIR [--model DIR …] [--contexts 256,2048]
//       [--steps 64] [--threads 1] [--json OUT]

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { inspectModelFolder, type ModelFolder } from '../src/engine/model/modelFolder';
import { DecoderSession } from '../src/engine/model/decoderSession';
import { argmax } from '../src/engine/generate/sampler';

interface PlainCache {
  keys: Float32Array[];
  values: Float32Array[];
  rows: number;
}

/** The forward pass as it was before the decode-step work (float32 caches). */
async function forwardBefore(session: ort.InferenceSession, folder: ModelFolder, tokens: number[], cache: PlainCache): Promise<Float32Array> {
  const n = tokens.length;
  const past = cache.rows;
  const { numLayers, numKvHeads, headDim } = folder.config;
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(Array.from(tokens, (t) => BigInt(t))), [1, n]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(past + n).fill(1n), [1, past + n]),
  };
  if (folder.signature.hasPositionIds) {
    const positions = new BigInt64Array(n);
    for (let i = 0; i < n; i++) positions[i] = BigInt(past + i);
    feeds.position_ids = new ort.Tensor('int64', positions, [1, n]);
  }
  for (let layer = 0; layer < numLayers; layer++) {
    feeds[`past_key_values.${layer}.key`] = new ort.Tensor('float32', cache.keys[layer]!, [1, numKvHeads, past, headDim]);
    feeds[`past_key_values.${layer}.value`] = new ort.Tensor('float32', cache.values[layer]!, [1, numKvHeads, past, headDim]);
  }
  const outputs = await session.run(feeds);
  for (let layer = 0; layer < numLayers; layer++) {
    cache.keys[layer] = outputs[`present.${layer}.key`]!.data as Float32Array;
    cache.values[layer] = outputs[`present.${layer}.value`]!.data as Float32Array;
  }
  cache.rows = past + n;
  return outputs.logits!.data as Float32Array;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', multiple: true },
      contexts: { type: 'string', default: '256,2048' },
      steps: { type: 'string', default: '64' },
      threads: { type: 'string', default: '1' },
      json: { type: 'string' },
    },
  });
  const threads = Number(values.threads);
  const steps = Number(values.steps);
  const rows: Record<string, unknown>[] = [];
  for (const dir of values.model ?? []) {
    const folder = inspectModelFolder(dir);
    if (folder.signature.kvElementType !== 'float32') throw new Error('decode-ab: float32 caches only');
    const before = await ort.InferenceSession.create(folder.onnxPath, { graphOptimizationLevel: 'all', executionMode: 'sequential', intraOpNumThreads: threads, interOpNumThreads: 1, logSeverityLevel: 3 });
    const after = await DecoderSession.open(folder, { threads });
    const vocab = folder.config.vocabSize;
    const layers = folder.config.numLayers;
    for (const L of values.contexts.split(',').map(Number)) {
      const prompt = Array.from({ length: L }, (_, i) => 3 + ((i * 7) % (vocab - 3)));
      const plain: PlainCache = { keys: Array.from({ length: layers }, () => new Float32Array(0)), values: Array.from({ length: layers }, () => new Float32Array(0)), rows: 0 };
      const cache = after.createCache(L + steps + 1);
      let a = 0;
      let b = 0;
      for (let at = 0; at < L; at += 128) {
        const chunk = prompt.slice(at, at + 128);
        const la = await forwardBefore(before, folder, chunk, plain);
        const lb = await after.forward(chunk, cache);
        a = argmax(la.subarray(la.length - vocab));
        b = argmax(lb.subarray(lb.length - vocab));
      }
      const beforeMs: number[] = [];
      const afterMs: number[] = [];
      for (let i = 0; i < steps; i++) {
        // Alternate which goes first, so neither always follows the other.
        let la: Float32Array = new Float32Array(0);
        let lb: Float32Array = new Float32Array(0);
        for (const which of i % 2 === 0 ? ['before', 'after'] : ['after', 'before']) {
          const t0 = performance.now();
          if (which === 'before') {
            la = await forwardBefore(before, folder, [a], plain);
            beforeMs.push(performance.now() - t0);
          } else {
            lb = await after.forward([b], cache);
            afterMs.push(performance.now() - t0);
          }
        }
        a = argmax(la.subarray(la.length - vocab));
        b = argmax(lb.subarray(lb.length - vocab));
      }
      const row = {
        model: path.basename(folder.dir),
        contextTokens: L,
        steps,
        threads,
        sameTokens: a === b,
        beforeMedianMs: median(beforeMs),
        afterMedianMs: median(afterMs),
        beforeTokensPerSecond: 1000 / median(beforeMs),
        afterTokensPerSecond: 1000 / median(afterMs),
        speedup: median(beforeMs) / median(afterMs),
      };
      rows.push(row);
      console.log(`${row.model} L=${L}: before ${row.beforeMedianMs.toFixed(3)} ms/step, after ${row.afterMedianMs.toFixed(3)} ms/step (×${row.speedup.toFixed(2)}), same tokens: ${row.sameTokens}`);
    }
    await before.release();
    await after.release();
  }
  if (values.json) {
    fs.mkdirSync(path.dirname(values.json), { recursive: true });
    fs.writeFileSync(values.json, `${JSON.stringify({ note: 'before/after decode step, one process, taking turns; medians', rows }, null, 2)}\n`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
