// Download Model on a large folder, against the stand-in hub of the tests (test/hubServer.ts)
// on 127.0.0.1: a clean download, one with the connection dropped in the middle of the largest
// file (recovered by a Range retry in the same run), and a cancel at half-way followed by a
// resuming run. Prints one JSON object (and writes it with --json FILE). Loopback throughput
// says nothing about a real network; the figures show the cost of the local work (writing,
// hashing, checking the folder) and that resume fetches only the rest.
//
//   node scripts/run-ts.js scripts/download-bench.ts --model DIR [--variant fp32] [--json OUT]
//
// DIR is served as repo bench/model; its graph must be named as the variant says
// (onnx/model.onnx for fp32, as `freqkv convert` writes it).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { downloadModel, DownloadCancelledError, type DownloadModelOptions } from '../src/engine/model/download';
import { startHubServer } from '../test/hubServer';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { model: { type: 'string' }, variant: { type: 'string', default: 'fp32' }, json: { type: 'string' } } });
  if (!values.model) throw new Error('--model DIR is required');
  const hub = await startHubServer({ 'bench/model': values.model }, { lifetimeMs: 30 * 60_000 });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'freqkv-dlbench-'));
  const base: Omit<DownloadModelOptions, 'dest'> = { repo: 'bench/model', variant: values.variant, endpoint: hub.endpoint, retries: 3, retryDelayMs: 100 };
  try {
    const runs: Record<string, unknown>[] = [];
    const timed = async (name: string, options: DownloadModelOptions): Promise<void> => {
      const started = performance.now();
      let outcome: string = 'ok';
      let result: Awaited<ReturnType<typeof downloadModel>> | undefined;
      try {
        result = await downloadModel(options);
      } catch (error) {
        if (!(error instanceof DownloadCancelledError)) throw error;
        outcome = 'cancelled';
      }
      const seconds = (performance.now() - started) / 1000;
      // The listing and every file request that got bytes (redirects not counted).
      const requests = hub.requests.filter((r) => r.status === 200 || r.status === 206).length;
      runs.push({ name, outcome, seconds: round(seconds), bytesTotal: result?.bytesTotal, bytesFetched: result?.bytesFetched, bytesResumed: result?.bytesResumed, requests });
      process.stderr.write(`${name}: ${outcome} in ${seconds.toFixed(1)} s\n`);
      hub.requests.length = 0;
    };

    await timed('clean', { ...base, dest: path.join(work, 'clean') });
    const files = (runs[0]?.bytesTotal as number) ?? 0;
    const largest = largestFile(values.model);
    hub.behaviour.dropAfter = { path: largest.path, bytes: Math.floor(largest.size / 2), times: 1 };
    await timed('dropped-mid-file', { ...base, dest: path.join(work, 'dropped') });
    delete hub.behaviour.dropAfter;
    const controller = new AbortController();
    await timed('cancelled-half-way', {
      ...base,
      dest: path.join(work, 'cancel'),
      signal: controller.signal,
      onProgress: (p) => {
        if (p.bytesDone >= files / 2) controller.abort();
      },
    });
    await timed('resumed', { ...base, dest: path.join(work, 'cancel') });
    const report = { model: values.model, variant: values.variant, largestFile: largest, runs };
    const json = JSON.stringify(report, null, 2);
    process.stdout.write(`${json}\n`);
    if (values.json) fs.writeFileSync(values.json, `${json}\n`);
  } finally {
    await hub.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function largestFile(dir: string): { path: string; size: number } {
  let best = { path: '', size: -1 };
  for (const rel of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const stat = fs.statSync(path.join(dir, rel));
    if (stat.isFile() && stat.size > best.size) best = { path: rel.split(path.sep).join('/'), size: stat.size };
  }
  return best;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
