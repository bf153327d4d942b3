// `freqkv bench speed`: prefill and decode tokens/s, time to first token and peak resident
// memory against text length, for the full and the FreqKV cache, beside two peers:
// transformers.js on the same model folder, and llama.cpp (node-llama-cpp's prebuilt binary) on a
// GGUF of the same weights. Each configuration runs in a fresh child process
// (`freqkv bench speed-probe SPEC`, which prints one JSON line) so its maxRSS is its own; with
// --rounds R the engines take R turns one after the other at each length, so each round's ratio
// compares runs under nearly the same machine load. The run measures this CPU's int8 compute rate
// and memory bandwidth (machineLimits.ts) and writes JSON and a Markdown table with every figure
// beside its limit.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { inspectModelFolder, type ModelFolder } from '../engine/model/modelFolder';
import { probeFreqKv, type SpeedCache, type SpeedEngine, type SpeedProbeResult, type SpeedProbeSpec } from '../engine/bench/speedProbe';
import { probeTransformers } from '../engine/bench/transformersProbe';
import { probeLlamaCpp } from '../engine/bench/llamaCppProbe';
import { medianRatios, speedMarkdown, speedRatios, toSpeedRow, withLimits, type ModelFacts, type SpeedFailure, type SpeedLimits, type SpeedRow } from '../engine/bench/speedReport';
import { MACHINE_BANDWIDTH_BYTES_PER_SECOND, MACHINE_MATMUL_FLOPS_PER_SECOND } from '../engine/bench/speedLimits';
import { bestOf, measureMachineLimits, type MachineLimits } from '../engine/bench/machineLimits';
import { intOption, UsageError } from './args';
import { embeddedModelDir, MODEL_OPTION_SPEC } from './defaultModel';
import { readTextFile } from './benchFidelity';

const ENGINES: readonly SpeedEngine[] = ['freqkv', 'transformers.js', 'llama.cpp'];
/** Without --engines: ours and transformers.js (llama.cpp needs a GGUF: --gguf or --shapes). */
const DEFAULT_ENGINES: readonly SpeedEngine[] = ['freqkv', 'transformers.js'];
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

function nameList<T extends string>(value: string | undefined, name: string, allowed: readonly T[], fallback: readonly T[] = allowed): T[] {
  if (value === undefined) return [...fallback];
  const out = value.split(',').map((s) => s.trim());
  for (const item of out) if (!allowed.includes(item as T)) throw new UsageError(`--${name} takes ${allowed.join(', ')} (got '${item}').`);
  return out as T[];
}

/** The child side: runs one probe and prints its result as one JSON line. */
export async function runSpeedProbe(argv: string[]): Promise<number> {
  const spec = JSON.parse(argv[0] ?? '{}') as SpeedProbeSpec;
  const probe = { 'transformers.js': probeTransformers, 'llama.cpp': probeLlamaCpp, freqkv: probeFreqKv }[spec.engine];
  const result = await probe(spec);
  process.stdout.write(`${PROBE_MARK}${JSON.stringify(result)}\n`);
  return 0;
}

/**
 * Runs this CLI's `convert random` into `dir` unless a model folder built with the same
 * arguments is there (the arguments are recorded beside it), e.g. after the builder changed.
 */
function convertRandom(dir: string, args: string[], log: (m: string) => void, unrecorded: string[] = []): boolean {
  const record = `${dir}.convert-args.json`;
  const recorded = fs.existsSync(record) ? fs.readFileSync(record, 'utf8') : '';
  if (fs.existsSync(path.join(dir, 'onnx', 'model.onnx')) && recorded === JSON.stringify(args)) return true;
  log(`building ${dir}: convert random ${[...args, ...unrecorded].join(' ')}`);
  const built = spawnSync(process.execPath, [process.argv[1]!, 'convert', 'random', ...args, ...unrecorded, '--out', dir], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (built.status !== 0) return false;
  fs.writeFileSync(record, JSON.stringify(args));
  return true;
}

/** Builds a random Qwen2.5-0.5B-shaped model folder with this CLI's `convert random`, if it is missing. */
function ensureQwenModel(dir: string, weights: string, log: (m: string) => void): boolean {
  const tokenizer = repoFile('..', 'shared', 'formats', 'qwen2.5-coder-instruct');
  const config = repoFile('bench', 'configs', 'qwen2.5-0.5b.json');
  if (!fs.existsSync(tokenizer)) {
    log(`skipping ${dir}: the Qwen tokenizer files (${tokenizer}) are missing`);
    return false;
  }
  return convertRandom(dir, ['--config', config, '--tokenizer', tokenizer, '--seed', '1', '--weights', weights], log);
}

/**
 * The folder transformers.js runs for `dir`: transformers.js feeds back `present` outputs (the
 * whole cache), so for a graph that outputs only new rows (the builder's default) it runs a
 * twin built with the same arguments and --kv-outputs present. Undefined: no twin can be made.
 */
function transformersFolder(folder: ModelFolder, log: (m: string) => void): string | undefined {
  const { dir } = folder;
  if (folder.signature.kvOutputs === 'present') return dir;
  const record = `${dir}.convert-args.json`;
  if (!fs.existsSync(record)) return undefined;
  const args = [...(JSON.parse(fs.readFileSync(record, 'utf8')) as string[]), '--kv-outputs', 'present'];
  const twin = `${dir}-present`;
  return convertRandom(twin, args, log) ? twin : undefined;
}

/**
 * Our int4 model folders for the speed benchmark, named by what differs from the builder's
 * defaults: 'int4' (block 32, the block of llama.cpp's Q4_0; int8 tied classifier), with '-c4'
 * an int4 tied classifier (as the Q4_0 GGUF stores it), with '-bN' quantization blocks of N.
 */
export function int4VariantArgs(variant: string): string[] {
  const match = /^int4((?:-c4|-b\d+)*)$/.exec(variant);
  if (!match) throw new UsageError(`--int4-variants: '${variant}' is not int4, int4-c4, int4-bN or int4-c4-bN.`);
  const args: string[] = [];
  for (const part of match[1]!.split('-').filter(Boolean)) {
    if (part === 'c4') args.push('--tied-classifier', 'int4');
    else args.push('--quant-block-size', part.slice(1));
  }
  return args;
}

/**
 * A bench/configs shape as our int4 model folder and a Q4_0 GGUF of the same seeded weights
 * (one `convert random` run writes both), built into `modelsDir` if missing.
 */
function ensureShapeModels(shape: string, modelsDir: string, log: (m: string) => void, variant = 'int4'): { dir: string; gguf: string } {
  const config = repoFile('bench', 'configs', `${shape}.json`);
  if (!fs.existsSync(config)) {
    const known = fs.readdirSync(path.dirname(config)).map((f) => path.basename(f, '.json'));
    throw new UsageError(`--shapes: no bench/configs/${shape}.json (known: ${known.join(', ')}).`);
  }
  const dir = path.join(modelsDir, `${shape}-${variant}`);
  const gguf = path.join(modelsDir, `${shape}-q4_0.gguf`);
  const tokenizer = repoFile('..', 'shared', 'formats', 'qwen2.5-coder-instruct');
  if (!fs.existsSync(tokenizer)) throw new UsageError(`--shapes needs the Qwen tokenizer files (${tokenizer}).`);
  const args = ['--config', config, '--tokenizer', tokenizer, '--seed', '1', '--weights', 'int4', ...int4VariantArgs(variant)];
  // The GGUF (always Q4_0: block 32, the tied matrix in Q4_0 too) is written with the first folder of this shape built.
  const ggufArgs = fs.existsSync(gguf) ? [] : ['--gguf', gguf, '--gguf-type', 'q4_0'];
  if (!convertRandom(dir, args, log, ggufArgs) || !fs.existsSync(gguf)) throw new Error(`building the ${shape} models failed`);
  return { dir, gguf };
}

/** Measures the machine's limits, or falls back to the earlier constants (with the reason) when it cannot. */
function machineLimits(threads: number, log: (m: string) => void): MachineLimits | { fallback: string } {
  try {
    const limits = measureMachineLimits(threads);
    log(`machine limits (${threads} threads): int8 ${(limits.int8OpsPerSecond / 1e9).toFixed(0)} GOP/s (${limits.int8Instruction}), read bandwidth ${(limits.bandwidthBytesPerSecond / 1e9).toFixed(1)} GB/s`);
    return limits;
  } catch (error) {
    log(`could not measure the machine limits: ${(error as Error).message}`);
    return { fallback: (error as Error).message };
  }
}

function speedLimitsOf(measured: MachineLimits | { fallback: string }): SpeedLimits {
  return 'fallback' in measured
    ? { computeOpsPerSecond: MACHINE_MATMUL_FLOPS_PER_SECOND, computeLabel: 'FLOP/s (float32 MatMul, not measured)', bandwidthBytesPerSecond: MACHINE_BANDWIDTH_BYTES_PER_SECOND }
    : { computeOpsPerSecond: measured.int8OpsPerSecond, computeLabel: 'int8 op/s (measured)', bandwidthBytesPerSecond: measured.bandwidthBytesPerSecond };
}

export async function runBenchSpeed(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...MODEL_OPTION_SPEC,
      model: { type: 'string', multiple: true },
      gguf: { type: 'string', multiple: true },
      shapes: { type: 'string' },
      rounds: { type: 'string' },
      contexts: { type: 'string' },
      'decode-steps': { type: 'string' },
      engines: { type: 'string' },
      caches: { type: 'string' },
      capacity: { type: 'string' },
      threads: { type: 'string' },
      'prefill-chunk': { type: 'string' },
      'one-forward-limit': { type: 'string' },
      'models-dir': { type: 'string' },
      'int4-variants': { type: 'string' },
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
  const engines = nameList(values.engines, 'engines', ENGINES, DEFAULT_ENGINES);
  const rounds = intOption(values.rounds, 'rounds', 1, 1);
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
  const modelsDir = values['models-dir'] ?? path.join(os.tmpdir(), 'bench-models');
  // Each model folder with, for llama.cpp, the GGUF of the same weights (--gguf pairs with --model in order).
  const models: { dir: string; gguf?: string }[] = (values.model ?? []).map((dir, i) => ({ dir, gguf: values.gguf?.[i] }));
  if ((values.gguf?.length ?? 0) > models.length) throw new UsageError('--gguf pairs with --model in order: give each GGUF its model folder (the tokens come from its tokenizer).');
  // --int4-variants int4,int4-c4: one int4 folder per variant for each shape (default: int4).
  const variants = values['int4-variants'] === undefined ? ['int4'] : values['int4-variants'].split(',').map((v) => v.trim());
  variants.forEach(int4VariantArgs);
  for (const shape of values.shapes === undefined ? [] : values.shapes.split(',').map((x) => x.trim())) {
    for (const variant of variants) models.push(ensureShapeModels(shape, modelsDir, log, variant));
  }
  if (models.length === 0) {
    models.push({ dir: embeddedModelDir() });
    if (!quick) {
      for (const { name, weights } of QWEN_MODELS) {
        const dir = path.join(modelsDir, name);
        if (ensureQwenModel(dir, weights, log)) models.push({ dir });
      }
    }
  }
  const limitThreads = threads === 0 ? os.cpus().length : threads;
  // Other work on a shared machine only lowers a measurement: the limits are measured again after
  // every text length and the best figures so far apply to every row.
  let measuredLimits = machineLimits(limitThreads, log);
  const remeasureLimits = (): void => {
    if ('fallback' in measuredLimits) return;
    const again = machineLimits(limitThreads, log);
    if (!('fallback' in again)) measuredLimits = bestOf(measuredLimits, again);
  };

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
    const limits = speedLimitsOf(measuredLimits);
    const limited = rows.map((r) => withLimits(r, limits));
    const ratios = speedRatios(limited);
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
        bandwidthBytesPerSecond: limits.bandwidthBytesPerSecond,
        computeOpsPerSecond: limits.computeOpsPerSecond,
        computeLabel: limits.computeLabel,
        limits: 'fallback' in measuredLimits ? undefined : measuredLimits,
        limitsSource:
          'fallback' in measuredLimits
            ? `not measured (${measuredLimits.fallback}): earlier figures for these machines, 38 GB/s memory bandwidth and 340 GFLOP/s of 2-thread onnxruntime float32 MatMul`
            : measuredLimits.source,
      },
      settings: { contexts, decodeSteps: decodeStepsOption ?? 'per model (see notes)', engines, caches, rounds, text: path.basename(textFile), quick, prefillChunk: prefillChunk ?? 'default', oneForwardLimit },
      seconds: (performance.now() - started) / 1000,
      notes: allNotes,
      rows: limited,
      ratios,
      medianRatios: medianRatios(ratios),
      failures,
    };
    for (const file of [jsonOut, markdownOut]) fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    fs.writeFileSync(jsonOut, `${JSON.stringify(result, null, 2)}\n`);
    const command = `npx freqkv bench speed ${argv.join(' ')}`;
    const header = `# Speed benchmark\n\n\`${command}\`\n\n${result.machine.cpus} × ${result.machine.cpuModel}, ${result.machine.platform}, Node ${result.machine.node}, ${threads === 0 ? 'one thread per core' : `${threads} threads`} per engine; text: ${result.settings.text} repeated to L tokens; 1-minute load average ${result.machine.loadAverageAtStart[0]!.toFixed(1)} at the start, ${result.machine.loadAverageAtEnd[0]!.toFixed(1)} at the end; run took ${result.seconds.toFixed(0)} s.\n\n`;
    fs.writeFileSync(markdownOut, header + speedMarkdown(limited, ratios, failures, allNotes, limits));
  };
  for (const { dir, gguf } of models) {
    const folder = inspectModelFolder(dir, { onnxFile: values['onnx-file'] });
    // Our engine and transformers.js run the graph chosen here (by --onnx-file, the download, or the default).
    const onnxFile = path.relative(folder.dir, folder.onnxPath);
    const { config } = folder;
    const bytesPerElement = folder.signature.kvElementType === 'float16' ? 2 : 4;
    const name = path.basename(folder.dir);
    const cacheBytesPerRow = (bytes: number): number => config.numLayers * 2 * config.numKvHeads * config.headDim * bytes;
    const factsOf = (engine: SpeedEngine): ModelFacts =>
      // llama.cpp reads the GGUF's weights and keeps an f16 cache.
      engine === 'llama.cpp' && gguf
        ? { name, config, weightBytes: fs.statSync(gguf).size, cacheBytesPerRow: cacheBytesPerRow(2) }
        : { name, config, weightBytes: folder.bytesOnDisk, prefillWeightBytes: folder.prefillBytesOnDisk || undefined, cacheBytesPerRow: cacheBytesPerRow(bytesPerElement) };
    // transformers.js runs this folder or its present-form twin (built once, here).
    const transformersDir = engines.includes('transformers.js') ? transformersFolder(folder, log) : undefined;
    const freqkvCapacity = intOption(values.capacity, 'capacity', Math.min(config.maxPositionEmbeddings, 2048), 8);
    // A small model's decode step takes about a millisecond: time more of them.
    const decodeSteps = decodeStepsOption ?? (folder.bytesOnDisk < SMALL_MODEL_BYTES ? (quick ? 64 : 256) : quick ? 8 : 32);
    const note = notes.findIndex((n) => n.startsWith(`${name}: `));
    if (note >= 0) notes.splice(note, 1);
    notes.push(
      `${name}: trained context ${config.maxPositionEmbeddings}; FreqKV cache N = ${freqkvCapacity} rows (S = 4, γ = 0.5, recent window N/2); the full cache holds max(trained context, L + steps + 1) rows; ${decodeSteps} decode steps after the prefill${gguf ? `; llama.cpp runs ${path.basename(gguf)}, the same weights in Q4_0` : ''}.`,
    );
    for (const L of contexts) {
      for (let round = 0; round < rounds; round++) {
        for (const engine of engines) {
          if (engine === 'llama.cpp' && !gguf) {
            failures.push({ engine, model: name, cache: 'full', contextTokens: L, error: 'no GGUF for this model: pass --gguf FILE after its --model, or use --shapes' });
            continue;
          }
          const engineDir = engine === 'transformers.js' ? transformersDir : folder.dir;
          if (!engineDir) {
            failures.push({ engine, model: name, cache: 'full', contextTokens: L, error: 'transformers.js feeds back present outputs, and this graph outputs only new rows (new_key_values): convert the model again with --kv-outputs present for it' });
            continue;
          }
          for (const cache of engine === 'freqkv' ? caches : (['full'] as const)) {
            const spec: SpeedProbeSpec = { engine, modelDir: engineDir, onnxFile: engineDir === folder.dir ? onnxFile : undefined, cache, contextTokens: L, decodeSteps, threads, text, freqkvCapacity, prefillChunk, oneForwardLimit, ggufFile: gguf };
            const load1m = os.loadavg()[0]!;
            const child = spawnSync(process.execPath, [process.argv[1]!, 'bench', 'speed-probe', JSON.stringify(spec)], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
            const line = (child.stdout ?? '').split('\n').find((l) => l.startsWith(PROBE_MARK));
            const same = (r: { engine: string; model: string; cache: string; contextTokens: number; round?: number }): boolean =>
              r.engine === engine && r.model === name && r.cache === cache && r.contextTokens === L && (r.round ?? 0) === round;
            if (child.status !== 0 || !line) {
              const error = `exit ${child.status ?? child.signal}: ${(child.stderr ?? '').trim().split('\n').slice(-3).join(' ')}`;
              failures.push({ engine, model: name, cache, contextTokens: L, error });
              log(`${name} ${engine} ${cache} L=${L}: FAILED ${error}`);
              write();
              continue;
            }
            const row = toSpeedRow(JSON.parse(line.slice(PROBE_MARK.length)) as SpeedProbeResult, factsOf(engine), speedLimitsOf(measuredLimits));
            row.loadAverage1m = load1m;
            row.loadAverage1mAfter = os.loadavg()[0]!;
            if (rounds > 1) row.round = round;
            if (rows.some(same)) rows.splice(rows.findIndex(same), 1);
            if (failures.some(same)) failures.splice(failures.findIndex(same), 1);
            rows.push(row);
            write();
            log(
              `${name} ${engine.padEnd(15)} ${cache.padEnd(6)} L=${String(L).padStart(5)}${rounds > 1 ? ` round ${round + 1}` : ''}  prefill ${row.prefillTokensPerSecond.toFixed(1)} tok/s (${(100 * row.prefillComputeFraction).toFixed(1)} % of limit)  decode ${row.decodeTokensPerSecond.toFixed(1)} tok/s (${(100 * row.decodeBandwidthFraction).toFixed(1)} %)  TTFT ${row.timeToFirstTokenMs.toFixed(0)} ms  RSS ${(row.peakRssBytes / 1e6).toFixed(0)} MB  load ${load1m.toFixed(1)} → ${row.loadAverage1mAfter.toFixed(1)}`,
            );
          }
        }
      }
      remeasureLimits();
    }
  }
  write();
  log(`wrote ${path.resolve(jsonOut)} and ${path.resolve(markdownOut)}`);
  return failures.length > 0 ? 1 : 0;
}
