// `freqkv bench speed`: prefill and decode tokens/s, time to first token and peak
// resident memory against text length, for the full and the FreqKV cache, and for
// transformers.js on the same model folder; each configuration runs in a fresh child process
// (`freqkv bench speed-probe SPEC`, which prints one JSON line) so its maxRSS is its own.
// Writes JSON and a Markdown table with every figure beside its machine limit.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { inspectModelFolder } from '../engine/model/modelFolder';
import { probeFreqKv, type SpeedCache, type SpeedEngine, type SpeedProbeResult, type SpeedProbeSpec } from '../engine/bench/speedProbe';
import { probeTransformers } from '../engine/bench/transformersProbe';
import { speedMarkdown, speedRatios, toSpeedRow, type ModelFacts, type SpeedFailure, type SpeedRow } from '../engine/bench/speedReport';
import { MACHINE_BANDWIDTH_BYTES_PER_SECOND, MACHINE_MATMUL_FLOPS_PER_SECOND } from '../engine/bench/speedLimits';
import { intOption, UsageError } from './args';
import { embeddedModelDir, MODEL_OPTION_SPEC } from './defaultModel';
import { readTextFile } from './benchFidelity';

const ENGINES: readonly SpeedEngine[] = ['freqkv', 'transformers.js'];
const CACHES: readonly SpeedCache[] = ['full', 'freqkv'];
const PROBE_MARK = 'SPEED-PROBE ';
/** Models under 100 MB decode so fast that the default number of timed steps is larger. */
const SMALL_MODEL_BYTES = 100e6;

/** The random Qwen2.5-0.5B-shaped models of the default run: folder name and weight format. */
const QWEN_MODELS = [
  { name: 'qwen-f32', weights: 'float32' },
  { name: 'qwen-int4', weights: 'int4' },
] as const;

function repoFile(...parts: string[]): string {
  const candidates = [path.join(__dirname, '..', ...parts), path.join(__dirname, '..', '..', ...parts)];
  return candidates.find((c) => fs.existsSync(c)) ?? candidates[0]!;
}

function numberList(value: string | undefined, name: string, fallback: number[]): number[] {
  if (value === undefined) return fallback;
  const out = value.split(',').map((s) => Number(s.trim()));
  if (out.length === 0 || out.some((n) => !Number.isInteger(n) || n < 1)) throw new UsageError(`--${name} must be a comma-separated list of whole numbers (got '${value}').`);
  return out;
}

function nameList<T extends string>(value: string | undefined, name: string, allowed: readonly T[]): T[] {
  if (value === undefined) return [...allowed];
  const out = value.split(',').map((s) => s.trim());
  for (const item of out) if (!allowed.includes(item as T)) throw new UsageError(`--${name} takes ${allowed.join(', ')} (got '${item}').`);
  return out as T[];
}

/** The child side: runs one probe and prints its result as one JSON line. */
export async function runSpeedProbe(argv: string[]): Promise<number> {
  const spec = JSON.parse(argv[0] ?? '{}') as SpeedProbeSpec;
  const result = spec.engine === 'transformers.js' ? await probeTransformers(spec) : await probeFreqKv(spec);
  process.stdout.write(`${PROBE_MARK}${JSON.stringify(result)}\n`);
  return 0;
}

/** Builds a random Qwen2.5-0.5B-shaped model folder with this CLI's `convert random`, if it is missing. */
function ensureQwenModel(dir: string, weights: string, log: (m: string) => void): boolean {
  if (fs.existsSync(path.join(dir, 'onnx', 'model.onnx'))) return true;
  const tokenizer = repoFile('..', 'shared', 'formats', 'qwen2.5-coder-instruct');
  const config = repoFile('bench', 'configs', 'qwen2.5-0.5b.json');
  if (!fs.existsSync(tokenizer)) {
    log(`skipping ${dir}: the Qwen tokenizer files (${tokenizer}) are missing`);
    return false;
  }
  log(`building ${dir} (${weights})`);
  const args = [process.argv[1]!, 'convert', 'random', '--config', config, '--tokenizer', tokenizer, '--out', dir, '--seed', '1', '--weights', weights];
  const built = spawnSync(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  return built.status === 0;
}

export async function runBenchSpeed(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...MODEL_OPTION_SPEC,
      model: { type: 'string', multiple: true },
      contexts: { type: 'string' },
      'decode-steps': { type: 'string' },
      engines: { type: 'string' },
      caches: { type: 'string' },
      capacity: { type: 'string' },
      threads: { type: 'string' },
      'prefill-chunk': { type: 'string' },
      'one-forward-limit': { type: 'string' },
      'models-dir': { type: 'string' },
      text: { type: 'string' },
      json: { type: 'string' },
      markdown: { type: 'string' },
      quick: { type: 'boolean', default: false },
      append: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const quick = values.quick ?? false;
  const contexts = numberList(values.contexts, 'contexts', quick ? [256, 1024] : [256, 1024, 4096, 16384]);
  const decodeStepsOption = values['decode-steps'] === undefined ? undefined : intOption(values['decode-steps'], 'decode-steps', 32, 1);
  const engines = nameList(values.engines, 'engines', ENGINES);
  const caches = nameList(values.caches, 'caches', CACHES);
  const threads = intOption(values.threads, 'threads', 0, 0);
  const prefillChunk = values['prefill-chunk'] === undefined ? undefined : intOption(values['prefill-chunk'], 'prefill-chunk', 128, 1);
  const oneForwardLimit = intOption(values['one-forward-limit'], 'one-forward-limit', 4096, 1);
  const textFile = values.text ?? repoFile('bench', 'texts', 'the-lighthouse-cat.txt');
  const text = readTextFile(textFile);
  const jsonOut = values.json ?? path.join('bench-results', 'speed.json');
  const markdownOut = values.markdown ?? path.join('bench-results', 'speed.md');

  const started = performance.now();
  // Other work on the machine slows every figure: the 1, 5 and 15 minute load averages are recorded.
  const loadAtStart = os.loadavg();
  const log = (message: string): void => {
    process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1)} s] ${message}\n`);
  };
  let modelDirs = values.model ?? [];
  if (modelDirs.length === 0) {
    modelDirs = [embeddedModelDir()];
    if (!quick) {
      const modelsDir = values['models-dir'] ?? path.join(os.tmpdir(), 'bench-models');
      for (const { name, weights } of QWEN_MODELS) {
        const dir = path.join(modelsDir, name);
        if (ensureQwenModel(dir, weights, log)) modelDirs.push(dir);
      }
    }
  }

  const rows: SpeedRow[] = [];
  const failures: SpeedFailure[] = [];
  const notes: string[] = [];
  // --append: keep the rows of an earlier run in the same JSON file (e.g. one model per run);
  // a configuration measured again replaces its earlier row.
  if (values.append && fs.existsSync(jsonOut)) {
    const earlier = JSON.parse(fs.readFileSync(jsonOut, 'utf8')) as { rows?: SpeedRow[]; failures?: SpeedFailure[]; notes?: string[] };
    rows.push(...(earlier.rows ?? []));
    failures.push(...(earlier.failures ?? []));
    notes.push(...(earlier.notes ?? []).filter((n) => !n.startsWith('Rows marked')));
  }
  /** Writes the JSON and Markdown so far (after every configuration, so a cut-short run keeps what it measured). */
  const write = (): void => {
    const allNotes = rows.some((r) => r.beyondTrainedContext)
      ? [...notes, 'Rows marked "capacity > trained context": the full cache was made larger than the model was trained for (the engine warns); the text is meaningless to the model there, but the speed is what it is.']
      : notes;
    const ratios = speedRatios(rows);
    const result = {
      machine: {
        platform: `${os.platform()} ${os.arch()}`,
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        totalMemoryBytes: os.totalmem(),
        node: process.version,
        threads,
        loadAverageAtStart: loadAtStart,
        loadAverageAtEnd: os.loadavg(),
        bandwidthBytesPerSecond: MACHINE_BANDWIDTH_BYTES_PER_SECOND,
        matmulFlopsPerSecond: MACHINE_MATMUL_FLOPS_PER_SECOND,
        limitsSource: "figures measured once for these machines (one-thread memory bandwidth, 2-thread onnxruntime float32 MatMul), not re-measured by this run",
      },
      settings: { contexts, decodeSteps: decodeStepsOption ?? 'per model (see notes)', engines, caches, text: path.basename(textFile), quick, prefillChunk: prefillChunk ?? 'default', oneForwardLimit },
      seconds: (performance.now() - started) / 1000,
      notes: allNotes,
      rows,
      ratios,
      failures,
    };
    for (const file of [jsonOut, markdownOut]) fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    fs.writeFileSync(jsonOut, `${JSON.stringify(result, null, 2)}\n`);
    const header = `# Speed benchmark\n\n${result.machine.cpus} × ${result.machine.cpuModel}, ${result.machine.platform}, Node ${result.machine.node}, ${threads === 0 ? 'one intra-op thread per core' : `${threads} intra-op threads`}; text: ${result.settings.text} repeated to L tokens; run took ${result.seconds.toFixed(0)} s.\n\n`;
    fs.writeFileSync(markdownOut, header + speedMarkdown(rows, ratios, failures, allNotes));
  };
  for (const dir of modelDirs) {
    const folder = inspectModelFolder(dir, { onnxFile: values['onnx-file'] });
    // Both engines run the graph chosen here (by --onnx-file, the download, or the default).
    const onnxFile = path.relative(folder.dir, folder.onnxPath);
    const { config } = folder;
    const bytesPerElement = folder.signature.kvElementType === 'float16' ? 2 : 4;
    const facts: ModelFacts = {
      name: path.basename(folder.dir),
      config,
      weightBytes: folder.bytesOnDisk,
      cacheBytesPerRow: config.numLayers * 2 * config.numKvHeads * config.headDim * bytesPerElement,
    };
    const freqkvCapacity = intOption(values.capacity, 'capacity', Math.min(config.maxPositionEmbeddings, 2048), 8);
    // A small model's decode step takes about a millisecond: time more of them.
    const decodeSteps = decodeStepsOption ?? (folder.bytesOnDisk < SMALL_MODEL_BYTES ? (quick ? 64 : 256) : quick ? 8 : 32);
    const note = notes.findIndex((n) => n.startsWith(`${facts.name}: `));
    if (note >= 0) notes.splice(note, 1);
    notes.push(
      `${facts.name}: trained context ${config.maxPositionEmbeddings}; FreqKV cache N = ${freqkvCapacity} rows (S = 4, γ = 0.5, recent window N/2); the full cache holds max(trained context, L + steps + 1) rows; ${decodeSteps} decode steps after the prefill.`,
    );
    for (const L of contexts) {
      for (const engine of engines) {
        for (const cache of engine === 'transformers.js' ? (['full'] as const) : caches) {
          const spec: SpeedProbeSpec = { engine, modelDir: folder.dir, onnxFile, cache, contextTokens: L, decodeSteps, threads, text, freqkvCapacity, prefillChunk, oneForwardLimit };
          const load1m = os.loadavg()[0]!;
          const child = spawnSync(process.execPath, [process.argv[1]!, 'bench', 'speed-probe', JSON.stringify(spec)], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
          const line = (child.stdout ?? '').split('\n').find((l) => l.startsWith(PROBE_MARK));
          if (child.status !== 0 || !line) {
            const error = `exit ${child.status ?? child.signal}: ${(child.stderr ?? '').trim().split('\n').slice(-3).join(' ')}`;
            failures.push({ engine, model: facts.name, cache, contextTokens: L, error });
            log(`${facts.name} ${engine} ${cache} L=${L}: FAILED ${error}`);
            write();
            continue;
          }
          const row = toSpeedRow(JSON.parse(line.slice(PROBE_MARK.length)) as SpeedProbeResult, facts);
          row.loadAverage1m = load1m;
          const same = (r: { engine: string; model: string; cache: string; contextTokens: number }): boolean => r.engine === engine && r.model === facts.name && r.cache === cache && r.contextTokens === L;
          if (rows.some(same)) rows.splice(rows.findIndex(same), 1);
          if (failures.some(same)) failures.splice(failures.findIndex(same), 1);
          rows.push(row);
          write();
          log(
            `${facts.name} ${engine.padEnd(15)} ${cache.padEnd(6)} L=${String(L).padStart(5)}  prefill ${row.prefillTokensPerSecond.toFixed(1)} tok/s (${(100 * row.prefillComputeFraction).toFixed(1)} % of limit)  decode ${row.decodeTokensPerSecond.toFixed(1)} tok/s (${(100 * row.decodeBandwidthFraction).toFixed(1)} %)  TTFT ${row.timeToFirstTokenMs.toFixed(0)} ms  RSS ${(row.peakRssBytes / 1e6).toFixed(0)} MB`,
          );
        }
      }
    }
  }
  write();
  log(`wrote ${path.resolve(jsonOut)} and ${path.resolve(markdownOut)}`);
  return failures.length > 0 ? 1 : 0;
}
