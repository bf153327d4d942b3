import { RelevanceIndex, questionNames } from '../src/engine/segments/relevance';
import { ingestDirectory } from '../src/engine/workspace/ingest';
async function main(): Promise<void> {
  const { files } = await ingestDirectory(process.argv[2]!);
  const index = new RelevanceIndex(files);
  const q = process.argv[3]!;
  console.log([...questionNames(q)]);
  const s = [...index.scoreByPath(q)].sort((a, b) => b[1] - a[1]).slice(0, 6);
  for (const [p, v] of s) console.log(v.toFixed(2), p, (index.definitionsOf(p) ?? []).filter((k) => questionNames(q).has(k)));
}
void main();
