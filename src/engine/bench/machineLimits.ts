// Measures this CPU's two limits for the speed benchmark: the peak int8 multiply-accumulate
// rate (prefill is compute-bound) and the streaming read bandwidth from memory (decode reads
// every weight once per token). A JavaScript loop reaches neither, and onnxruntime's own
// kernels would measure onnxruntime rather than the machine, so machineLimits.c (VNNI
// dot-product instructions; vector loads over a buffer far larger than the last-level cache) is
// compiled once with the system's C compiler (`cc -O3 -march=native -pthread`, cached under the
// temp folder by the source's hash) and run with the benchmark's thread count.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface MachineLimits {
  threads: number;
  /** int8 operations per second (one multiply-accumulate is 2 operations), all threads together. */
  int8OpsPerSecond: number;
  /** The instruction the int8 figure was measured with (e.g. 'avx512-vnni vpdpbusd'). */
  int8Instruction: string;
  /** Bytes per second read from memory by all threads together. */
  bandwidthBytesPerSecond: number;
  bandwidthBufferBytes: number;
  /** How the figures were obtained. */
  source: string;
}

/** The read buffer: 1 GiB, far beyond any last-level cache. */
const BANDWIDTH_BUFFER_MIB = 1024;
const INT8_SECONDS = 1;

function sourceFile(): string {
  const name = 'machineLimits.c';
  const candidates = [path.join(__dirname, name), path.join(__dirname, '..', 'src', 'engine', 'bench', name), path.join(__dirname, '..', '..', 'src', 'engine', 'bench', name)];
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) throw new Error(`machineLimits.c is missing (looked in ${candidates.join(', ')}); run the benchmark from a checkout of the repository.`);
  return found;
}

/** Compiles machineLimits.c (once per source version) and returns the executable. */
function compiledProbe(): string {
  const source = sourceFile();
  const text = fs.readFileSync(source);
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 16);
  const exe = path.join(os.tmpdir(), `freqkv-machine-limits-${hash}`);
  if (fs.existsSync(exe)) return exe;
  const staging = `${exe}.building-${process.pid}`;
  const compiler = process.env.CC ?? 'cc';
  const built = spawnSync(compiler, ['-O3', '-march=native', '-pthread', '-o', staging, source], { encoding: 'utf8' });
  if (built.error || built.status !== 0) {
    throw new Error(`could not compile ${source} with '${compiler}' (${built.error?.message ?? built.stderr.trim()}); install a C compiler (apt-get install gcc) or set CC.`);
  }
  fs.renameSync(staging, exe);
  return exe;
}

function runProbe(exe: string, args: string[]): Record<string, unknown> {
  const run = spawnSync(exe, args, { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`${exe} ${args.join(' ')} failed (exit ${run.status ?? run.signal}): ${run.stderr.trim()}`);
  return JSON.parse(run.stdout.trim()) as Record<string, unknown>;
}

/** Measures both limits with `threads` threads (a few seconds). */
export function measureMachineLimits(threads: number): MachineLimits {
  const exe = compiledProbe();
  const int8 = runProbe(exe, ['int8', String(threads), String(INT8_SECONDS)]);
  const bandwidth = runProbe(exe, ['bandwidth', String(threads), String(BANDWIDTH_BUFFER_MIB)]);
  return {
    threads,
    int8OpsPerSecond: int8.opsPerSecond as number,
    int8Instruction: int8.instruction as string,
    bandwidthBytesPerSecond: bandwidth.bytesPerSecond as number,
    bandwidthBufferBytes: bandwidth.bufferBytes as number,
    source: `measured by machineLimits.c on ${threads} thread(s): independent ${int8.instruction as string} instructions for ${INT8_SECONDS} s; vector reads of a ${BANDWIDTH_BUFFER_MIB} MiB buffer, best of 5 passes`,
  };
}

/** The better of two measurements of the same machine (other work on a shared machine only lowers them). */
export function bestOf(a: MachineLimits, b: MachineLimits): MachineLimits {
  return {
    ...a,
    int8OpsPerSecond: Math.max(a.int8OpsPerSecond, b.int8OpsPerSecond),
    bandwidthBytesPerSecond: Math.max(a.bandwidthBytesPerSecond, b.bandwidthBytesPerSecond),
    source: `${a.source}; the best of the measurements before the first configuration and after each text length`,
  };
}
