// Ranks a workspace's files against questions whose answer lives in one known file, with the
// relevance index the segmented cache uses, and prints where that file and the best-ranked test
// file land. Files are read as `ask` reads them (ingestDirectory with its default rules).
//   node scripts/run-ts.js scripts/relevance-ranks.ts [--workspace DIR] [--json OUT]
// The default questions are about this repository; run it on a snapshot of it (e.g. `git archive`)
// so that the questions themselves, in this script, do not take part.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { isTestPath, RelevanceIndex } from '../src/engine/segments/relevance';
import { ingestDirectory } from '../src/engine/workspace/ingest';

const QUESTIONS: { question: string; implementation: string }[] = [
  { question: 'How does the sampler apply top-p?', implementation: 'src/engine/generate/sampler.ts' },
  { question: 'How does allocateRows share the budget among files?', implementation: 'src/engine/segments/allocate.ts' },
  { question: 'How are keys rotated to their slot positions?', implementation: 'src/engine/kv/rotary.ts' },
  { question: 'How does decodeSegmentFile detect a corrupt segment?', implementation: 'src/engine/segments/segmentFile.ts' },
  { question: 'What does the FreqKV compressor do when the cache is full?', implementation: 'src/engine/kv/freqKvCompressor.ts' },
  { question: 'Which paths does the WorkspaceFilter exclude?', implementation: 'src/engine/workspace/filter.ts' },
  { question: 'How does the tokenizer apply the chat template?', implementation: 'src/engine/tokenizer/modelTokenizer.ts' },
  { question: 'How does rotateRows rotate keys to new positions?', implementation: 'src/engine/kv/rotary.ts' },
  { question: 'How does the engine worker handle a cancel request?', implementation: 'src/worker/engineWorker.ts' },
  { question: 'How does classifyContent decide that a file is binary?', implementation: 'src/engine/workspace/ingest.ts' },
  { question: 'How does the segment store evict segments over its size cap?', implementation: 'src/engine/segments/segmentStore.ts' },
  { question: 'How does the download retry a failed request?', implementation: 'src/engine/model/download/fetchFile.ts' },
  { question: 'How is a llama2c checkpoint converted?', implementation: 'src/builder/llama2cCheckpoint.ts' },
];

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { workspace: { type: 'string' }, json: { type: 'string' } } });
  const root = path.resolve(values.workspace ?? '.');
  const { files } = await ingestDirectory(root);
  const built = performance.now();
  const index = new RelevanceIndex(files);
  const buildMs = performance.now() - built;
  const results = [];
  let scoreMs = 0;
  for (const { question, implementation } of QUESTIONS) {
    const started = performance.now();
    const scores = index.score(question);
    scoreMs += performance.now() - started;
    const ranked = files.map((f, i) => ({ path: f.path, score: scores[i]! })).sort((a, b) => b.score - a.score || (a.path < b.path ? -1 : 1));
    const rankOf = (p: string | undefined): number | undefined => (p === undefined ? undefined : ranked.findIndex((r) => r.path === p) + 1);
    const firstTest = ranked.find((r) => isTestPath(r.path))?.path;
    // The first file's score over the second's: allocateRows gives a clear leader (1.5 by default) at least half its rows.
    const lead = ranked.length > 1 && ranked[1]!.score > 0 ? Number((ranked[0]!.score / ranked[1]!.score).toFixed(2)) : null;
    const row = { question, implementation, implementationRank: rankOf(implementation), lead, top: ranked.slice(0, 3).map((r) => r.path), firstTest, firstTestRank: rankOf(firstTest) };
    results.push(row);
    console.log(`${row.implementationRank}\t${question}\t${implementation}\t(top: ${row.top.join(', ')}, lead ×${lead}; first test file ${firstTest} at ${row.firstTestRank})`);
  }
  const timing = { buildMs: Math.round(buildMs), scoreMsPerQuestion: Number((scoreMs / QUESTIONS.length).toFixed(2)), indexJsonBytes: JSON.stringify(index.toJSON?.() ?? null).length };
  console.log(`${files.length} files: index built in ${timing.buildMs} ms, ${timing.scoreMsPerQuestion} ms per question, ${timing.indexJsonBytes} bytes as JSON`);
  if (values.json) {
    fs.mkdirSync(path.dirname(path.resolve(values.json)), { recursive: true });
    fs.writeFileSync(values.json, `${JSON.stringify({ workspace: root, files: files.length, ...timing, results }, null, 2)}\n`);
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
