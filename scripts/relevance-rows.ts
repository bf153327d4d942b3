// The rows the segmented cache gives each file of the small web framework in test/ (the
// implementation of res.type, its test, and the rest) for the question about how res.type picks
// the Content-Type, on the embedded model: the end-to-end measure of the relevance ranking and
// the allocation together.
//   node scripts/run-ts.js scripts/relevance-rows.ts [--model DIR] [--capacity N] [--json OUT]

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Engine } from '../src/engine/engine';
import { WorkspaceSegmentCache } from '../src/engine/segments/workspaceSegmentCache';
import { ingestDirectory } from '../src/engine/workspace/ingest';
import { CONTENT_TYPE_QUESTION, writeWebFramework } from '../test/webFrameworkFixture';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { model: { type: 'string', default: 'models/stories260K' }, capacity: { type: 'string' }, json: { type: 'string' } } });
  const capacity = Number(values.capacity ?? 512);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'freqkv-web-framework-'));
  const store = fs.mkdtempSync(path.join(os.tmpdir(), 'freqkv-relevance-rows-'));
  writeWebFramework(root);
  const { files } = await ingestDirectory(root);
  const engine = await Engine.load({ modelDir: values.model, threads: 1 });
  try {
    const segments = new WorkspaceSegmentCache(engine.session, engine.tokenizer, engine.folder, { codec: 'float32', capacity, sinks: 4, retain: 0.5, recent: Math.floor(capacity / 2), storeDir: store, workspaceId: root });
    await segments.update(files);
    const assembled = await segments.assemble(CONTENT_TYPE_QUESTION);
    const rows = [...assembled.files].reverse().map((f, rank) => ({ rank: rank + 1, path: f.path, score: Number(f.score.toFixed(3)), rows: f.rows, storedRows: f.storedRows }));
    console.log(`question: ${CONTENT_TYPE_QUESTION}; capacity ${capacity}, ${assembled.segmentBudget} rows for ${files.length} files`);
    for (const r of rows) console.log(`${r.rank}\t${r.path}\t${r.rows} of ${r.storedRows} rows\tscore ${r.score}`);
    if (values.json) {
      fs.mkdirSync(path.dirname(path.resolve(values.json)), { recursive: true });
      fs.writeFileSync(values.json, `${JSON.stringify({ question: CONTENT_TYPE_QUESTION, capacity, segmentBudget: assembled.segmentBudget, files: rows }, null, 2)}\n`);
    }
  } finally {
    await engine.dispose();
    fs.rmSync(store, { recursive: true, force: true });
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
