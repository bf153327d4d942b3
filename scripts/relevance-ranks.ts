// Ranks a workspace's files against questions whose answer lives in one known file, with the
// relevance index the segmented cache uses, and prints where that file and the best-ranked test
// file land. Files are read as `ask` reads them (ingestDirectory with its default rules).
//   node scripts/run-ts.js scripts/relevance-ranks.ts [--workspace DIR] [--json OUT] [--rounds N]
// The questions are about this repository (bench/questions/this-repository.json, which `freqkv
// bench workspace` asks too); run it on a snapshot of it (e.g. `git archive`). The questions'
// own file is left out of the ranking. It also times building the
// index and scoring a question against plain BM25 through minisearch (what relevance was before
// definitions), built and run alternately in the same process: the medians of --rounds rounds.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import MiniSearch from 'minisearch';
import { isTestPath, RelevanceIndex, tokenizeForSearch } from '../src/engine/segments/relevance';
import { ingestDirectory } from '../src/engine/workspace/ingest';
import { readQuestions, REPOSITORY_QUESTIONS, repositoryQuestionsPath } from '../src/cli/benchQuestions';

const QUESTIONS = readQuestions(repositoryQuestionsPath());

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { workspace: { type: 'string' }, json: { type: 'string' }, rounds: { type: 'string', default: '5' } } });
  const root = path.resolve(values.workspace ?? '.');
  const { files } = await ingestDirectory(root, { exclude: [REPOSITORY_QUESTIONS] });
  const index = new RelevanceIndex(files);
  const results = [];
  for (const { question, implementation } of QUESTIONS) {
    const scores = index.score(question);
    const ranked = files.map((f, i) => ({ path: f.path, score: scores[i]! })).sort((a, b) => b.score - a.score || (a.path < b.path ? -1 : 1));
    const rankOf = (p: string | undefined): number | undefined => (p === undefined ? undefined : ranked.findIndex((r) => r.path === p) + 1);
    const firstTest = ranked.find((r) => isTestPath(r.path))?.path;
    // The first file's score over the second's: allocateRows gives a clear leader (1.5 by default) at least half its rows.
    const lead = ranked.length > 1 && ranked[1]!.score > 0 ? Number((ranked[0]!.score / ranked[1]!.score).toFixed(2)) : null;
    const row = { question, implementation, implementationRank: rankOf(implementation), lead, top: ranked.slice(0, 3).map((r) => r.path), firstTest, firstTestRank: rankOf(firstTest) };
    results.push(row);
    console.log(`${row.implementationRank}\t${question}\t${implementation}\t(top: ${row.top.join(', ')}, lead ×${lead}; first test file ${firstTest} at ${row.firstTestRank})`);
  }
  const timing = timeAgainstMiniSearch(files, Number(values.rounds));
  const indexJsonBytes = JSON.stringify(index.toJSON()).length;
  console.log(
    `${files.length} files: build ${timing.buildMs} ms (minisearch ${timing.peerBuildMs} ms), ${timing.scoreMs} ms per question (minisearch ${timing.peerScoreMs} ms); index ${indexJsonBytes} bytes as JSON`,
  );
  if (values.json) {
    fs.mkdirSync(path.dirname(path.resolve(values.json)), { recursive: true });
    fs.writeFileSync(values.json, `${JSON.stringify({ workspace: root, files: files.length, indexJsonBytes, timing, results }, null, 2)}\n`);
  }
}

/** Median build and per-question times of RelevanceIndex and of plain minisearch BM25, built and run alternately. */
function timeAgainstMiniSearch(files: readonly { path: string; text: string }[], rounds: number): { buildMs: number; peerBuildMs: number; scoreMs: number; peerScoreMs: number } {
  const median = (xs: number[]): number => Number(xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!.toFixed(2));
  const time = (f: () => void): number => {
    const started = performance.now();
    f();
    return performance.now() - started;
  };
  const build: number[] = [];
  const peerBuild: number[] = [];
  const score: number[] = [];
  const peerScore: number[] = [];
  for (let round = 0; round < rounds; round++) {
    let index: RelevanceIndex | undefined;
    let peer: MiniSearch | undefined;
    build.push(time(() => (index = new RelevanceIndex(files))));
    peerBuild.push(
      time(() => {
        peer = new MiniSearch({ fields: ['path', 'content'], tokenize: tokenizeForSearch, processTerm: (t: string) => t });
        peer.addAll(files.map((f, id) => ({ id, path: f.path, content: f.text })));
      }),
    );
    score.push(time(() => QUESTIONS.forEach(({ question }) => index!.scoreByPath(question))) / QUESTIONS.length);
    peerScore.push(time(() => QUESTIONS.forEach(({ question }) => peer!.search(question, { combineWith: 'OR', boost: { path: 2 } }))) / QUESTIONS.length);
  }
  return { buildMs: median(build), peerBuildMs: median(peerBuild), scoreMs: median(score), peerScoreMs: median(peerScore) };
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
