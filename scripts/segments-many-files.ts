// A workspace of many small files through the segment cache: writes N files (default 10,000)
// into a temp folder, ingests it from disk, prefills every file into a fresh store with progress,
// then runs a warm update and one assembly. Prints progress and figures and writes JSON with the
// times and the peak resident memory (sampled every 100 files). Usage (see README):
//   node scripts/run-ts.js scripts/segments-many-files.ts [--files 10000] [--json OUT] [--threads N]

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Engine } from '../src/engine/engine';
import { WorkspaceSegmentCache } from '../src/engine/segments/workspaceSegmentCache';
import { ingestDirectory } from '../src/engine/workspace/ingest';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { files: { type: 'string', default: '10000' }, json: { type: 'string' }, threads: { type: 'string', default: '0' }, model: { type: 'string', default: 'models/stories260K' } } });
  const count = Number(values.files);
  const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'freqkv-many-'));
  const root = path.join(temp, 'ws');
  for (let i = 0; i < count; i++) {
    const dir = path.join(root, `pkg${i % 100}`);
    if (i < 100) fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `file${i}.ts`), `// File ${i}.\nexport const value${i} = ${i};\n`);
  }
  let peakRss = process.memoryUsage().rss;
  const sample = (): void => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  };
  const started = performance.now();
  const engine = await Engine.load({ modelDir: values.model, threads: Number(values.threads) });
  try {
    const t0 = performance.now();
    const ingest = await ingestDirectory(root, { onProgress: (p) => p.filesSeen % 100 === 0 && sample() });
    const ingestMs = performance.now() - t0;
    console.error(`ingested ${ingest.files.length} files in ${(ingestMs / 1000).toFixed(1)} s`);
    const settings = { codec: 'float32' as const, capacity: 512, sinks: 4, retain: 0.5, recent: 256, storeDir: path.join(temp, 'store'), workspaceId: root };
    const cold = await new WorkspaceSegmentCache(engine.session, engine.tokenizer, engine.folder, settings).update(ingest.files, (p) => {
      if (p.filesDone % 100 === 0) sample();
      if (p.filesDone % 1000 === 0) console.error(`segments: ${p.filesDone}/${p.filesTotal} files, ${p.tokensPrefilled} tokens prefilled, rss ${(process.memoryUsage().rss / 1024 ** 2).toFixed(0)} MB, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    });
    const segments = new WorkspaceSegmentCache(engine.session, engine.tokenizer, engine.folder, settings);
    const warm = await segments.update(ingest.files, (p) => p.filesDone % 100 === 0 && sample());
    const assembled = await segments.assemble('What is value42?');
    sample();
    const storeBytes = segments.store.diskBytes();
    const result = {
      files: count,
      ingestMs,
      coldUpdateMs: cold.ms,
      built: cold.built,
      workspaceTokens: cold.workspaceTokens,
      tokensPerSecond: (cold.tokensPrefilled / cold.ms) * 1000,
      warmUpdateMs: warm.ms,
      reused: warm.reused,
      assembleMs: assembled.assembleMs,
      assembledRows: assembled.cache.rows,
      filesInCache: assembled.files.length,
      filesDropped: assembled.dropped.length,
      mostRelevant: assembled.files.at(-1)?.path ?? null,
      storeBytes,
      peakRssBytes: peakRss,
      totalMs: performance.now() - started,
    };
    console.log(JSON.stringify(result, null, 2));
    if (values.json) fs.writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await engine.dispose();
    fs.rmSync(temp, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
