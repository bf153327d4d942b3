// Time of one FreqKV compression at a model's cache shape: the DCT as the JavaScript loop
// (makeRoom) against one batched onnxruntime MatMul (makeRoomWith), and how far apart their rows
// are. Usage:
//   node scripts/run-ts.js scripts/compress-speed.ts [--config bench/configs/qwen2.5-0.5b.json]
//       [--capacity 2048] [--threads 0] [--repeats 3] [--json OUT]

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { parseHfConfig } from '../src/engine/model/modelConfig';
import { KvCache } from '../src/engine/kv/kvCache';
import { FreqKvCompressor } from '../src/engine/kv/freqKvCompressor';
import { defaultRecentWindow } from '../src/engine/kv/createCompressor';
import { rotarySpecOf } from '../src/engine/kv/rotary';
import { createBatchedMultiply } from '../src/engine/model/batchedMatMul';
import { createRng } from '../src/engine/random';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      config: { type: 'string', default: 'bench/configs/qwen2.5-0.5b.json' },
      capacity: { type: 'string', default: '2048' },
      threads: { type: 'string', default: '0' },
      repeats: { type: 'string', default: '3' },
      json: { type: 'string' },
    },
  });
  const config = parseHfConfig(JSON.parse(fs.readFileSync(values.config, 'utf8')), values.config);
  const N = Number(values.capacity);
  const compressor = new FreqKvCompressor({ capacity: N, sinks: 4, retain: 0.5, recent: defaultRecentWindow(N, 4) }, rotarySpecOf(config));
  const shape = { numLayers: config.numLayers, numKvHeads: config.numKvHeads, headDim: config.headDim };
  const random = createRng(1);
  const perLayer = shape.numKvHeads * N * shape.headDim;
  const keys = Array.from({ length: shape.numLayers }, () => Float32Array.from({ length: perLayer }, () => random() - 0.5));
  const vals = Array.from({ length: shape.numLayers }, () => Float32Array.from({ length: perLayer }, () => random() - 0.5));
  const full = (): KvCache => {
    const cache = new KvCache(shape, 'float32', N);
    cache.replaceRows(keys.map((k) => k.slice()), vals.map((v) => v.slice()), N);
    return cache;
  };
  const { multiply, release } = await createBatchedMultiply(Number(values.threads));
  const repeats = Number(values.repeats);
  const time = async (run: (cache: KvCache) => Promise<unknown>): Promise<{ ms: number; cache: KvCache }> => {
    let best = Infinity;
    let cache = full();
    for (let i = 0; i < repeats; i++) {
      cache = full();
      const t0 = performance.now();
      await run(cache);
      best = Math.min(best, performance.now() - t0);
    }
    return { ms: best, cache };
  };
  const js = await time(async (cache) => compressor.makeRoom(cache, 1));
  const ort = await time((cache) => compressor.makeRoomWith(cache, 1, multiply));
  let maxDiff = 0;
  let maxAbs = 0;
  for (let layer = 0; layer < shape.numLayers; layer++) {
    const a = js.cache.keys(layer);
    const b = ort.cache.keys(layer);
    for (let i = 0; i < a.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
      maxAbs = Math.max(maxAbs, Math.abs(a[i]!));
    }
  }
  await release();
  const result = {
    config: path.basename(values.config),
    capacity: N,
    compressedRows: `${N - 4 - compressor.recent} → ${compressor.keptRows}`,
    layers: shape.numLayers,
    kvHeads: shape.numKvHeads,
    headDim: shape.headDim,
    javascriptMs: js.ms,
    onnxruntimeMs: ort.ms,
    speedup: js.ms / ort.ms,
    maxAbsDifference: maxDiff,
    maxAbsValue: maxAbs,
  };
  console.log(JSON.stringify(result));
  if (values.json) {
    fs.mkdirSync(path.dirname(values.json), { recursive: true });
    fs.writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
