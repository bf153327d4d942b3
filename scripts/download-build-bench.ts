// Download Model's build variant on a model of a real shape, against the stand-in hub of the
// tests (test/hubServer.ts) on 127.0.0.1: random weights of CONFIG written as bf16 safetensors
// with the Qwen2.5 tokenizer (buildSourceRepo), served as repo bench/source; then, each in its own
// process under /usr/bin/time (wall seconds and peak RSS of that process alone):
//   download  `freqkv download --variant VARIANT` (fetch, hash checks, convert, folder check, install)
//   rerun     the same command again (nothing fetched, nothing built)
//   convert   `freqkv convert safetensors` on the same folder (the builder alone: the peer)
// Prints one JSON object (and writes it with --json FILE). Loopback throughput says nothing about
// a real network.
//
//   node scripts/run-ts.js scripts/download-build-bench.ts --config bench/configs/qwen2.5-0.5b.json
//     [--tokenizer ../shared/formats/qwen2.5-coder-instruct] [--variant build-int4] [--json OUT]

import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { parseHfConfig } from '../src/engine/model/modelConfig';
import { buildSourceRepo, startHubServer } from '../test/hubServer';

const ROOT = path.resolve(__dirname, '..', '..');

interface Timed {
  seconds: number;
  peakRssMB: number;
  stdout: string;
}

function timed(args: string[]): Promise<Timed> {
  return new Promise((resolve, reject) => {
    execFile('/usr/bin/time', ['-f', 'TIME %e %M', process.execPath, path.join(ROOT, 'bin', 'freqkv.js'), ...args], { cwd: ROOT, maxBuffer: 1 << 26 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`${args.join(' ')} failed: ${stderr}`));
      const match = /TIME ([\d.]+) (\d+)/.exec(stderr);
      if (!match) return reject(new Error(`no /usr/bin/time figures in: ${stderr}`));
      resolve({ seconds: Number(match[1]), peakRssMB: Math.round(Number(match[2]) / 1024), stdout });
    });
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { config: { type: 'string' }, tokenizer: { type: 'string', default: path.join(ROOT, '..', 'shared', 'formats', 'qwen2.5-coder-instruct') }, variant: { type: 'string', default: 'build-int4' }, json: { type: 'string' } },
  });
  if (!values.config) throw new Error('--config FILE is required');
  const config = parseHfConfig(JSON.parse(fs.readFileSync(values.config, 'utf8')) as unknown, values.config);
  const source = await buildSourceRepo({ config, tokenizerDir: values.tokenizer });
  const sourceBytes = fs.readdirSync(source).reduce((sum, f) => sum + fs.statSync(path.join(source, f)).size, 0);
  const hub = await startHubServer({ 'bench/source': source }, { lifetimeMs: 60 * 60_000 });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'freqkv-dlbuild-bench-'));
  try {
    const out = path.join(work, 'model');
    const download = await timed(['download', '--variant', values.variant, '--repo', 'bench/source', '--endpoint', hub.endpoint, '--out', out, '--json']);
    const result = JSON.parse(download.stdout) as { build?: { seconds: number; files: { path: string; size: number }[] }; bytesFetched: number };
    const rerun = await timed(['download', '--variant', values.variant, '--repo', 'bench/source', '--endpoint', hub.endpoint, '--out', out, '--json']);
    const weights = values.variant === 'build-int8' ? 'int8' : 'int4';
    const convert = await timed(['convert', 'safetensors', '--input', source, '--out', path.join(work, 'converted'), '--weights', weights]);
    const report = {
      config: values.config,
      variant: values.variant,
      sourceMB: Math.round(sourceBytes / 1e6),
      builtMB: Math.round((result.build?.files ?? []).reduce((sum, f) => sum + f.size, 0) / 1e6),
      fetchedMB: Math.round(result.bytesFetched / 1e6),
      download: { seconds: download.seconds, peakRssMB: download.peakRssMB, buildSeconds: result.build?.seconds },
      rerun: { seconds: rerun.seconds, peakRssMB: rerun.peakRssMB, alreadyPresent: (JSON.parse(rerun.stdout) as { alreadyPresent: boolean }).alreadyPresent },
      convert: { seconds: convert.seconds, peakRssMB: convert.peakRssMB },
      downloadOverConvert: { seconds: +(download.seconds / convert.seconds).toFixed(2), peakRss: +(download.peakRssMB / convert.peakRssMB).toFixed(2) },
      loadAverage: os.loadavg().map((l) => +l.toFixed(2)),
      cpus: os.cpus().length,
      node: process.version,
      date: new Date().toISOString(),
    };
    const text = JSON.stringify(report, null, 2);
    console.log(text);
    if (values.json) {
      fs.mkdirSync(path.dirname(values.json), { recursive: true });
      fs.writeFileSync(values.json, `${text}\n`);
    }
  } finally {
    await hub.close();
    fs.rmSync(work, { recursive: true, force: true });
    // buildSourceRepo's folder is a fresh temporary directory of its own.
    fs.rmSync(source, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
