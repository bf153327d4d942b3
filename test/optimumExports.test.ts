// Every graph of ../shared/formats/optimum-qwen2-tiny (a tiny random Qwen2 exported by Hugging
// Face Optimum as onnx-community repos are made: fp32, MatMulNBits q4, fp16, q4f16, onnxslim)
// against its independent reference (reference.json): model.onnx against PyTorch's greedy ids
// and text, every other graph against onnxruntime-python's greedy run of that same graph. Run
// through the engine API and through the CLI (`--onnx-file`), with the full cache, with a
// FreqKV cache that never fills (it must equal the full cache) and with one of 32 rows that
// compresses. The float16 graphs have float16 logits and KV caches.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/engine';
import type { CacheOptions } from '../src/engine/kv/createCompressor';
import { float16ToFloat32, float32ToFloat16 } from '../src/engine/floatFormats';
import { GraphBuilder, TensorType } from '../src/builder/onnxGraph';
import { SHARED, tempDir } from './helpers';

const ROOT = path.resolve(__dirname, '..');
const FOLDER = path.join(SHARED, 'formats', 'optimum-qwen2-tiny');

interface GreedyRun {
  generated_ids: number[];
  text: string;
}
interface Reference {
  decoding: string;
  torch: Record<string, GreedyRun & { prompt_ids: number[] }>;
  graphs: Record<string, { outputs: { name: string; type: string }[]; onnxruntime_python: Record<string, GreedyRun & { kv_dtype: string; prompt_last_logits_first16: number[]; prompt_last_logits_argmax: number }> }>;
}

const reference = JSON.parse(fs.readFileSync(path.join(FOLDER, 'reference.json'), 'utf8')) as Reference;
const MAX_NEW_TOKENS = Number(/max_new_tokens=(\d+)/.exec(reference.decoding)![1]);
const PROMPTS = Object.keys(reference.torch);
/** Every graph file on disk, so a graph added to the folder is tested (or fails for lack of a reference). */
const GRAPHS = fs
  .readdirSync(path.join(FOLDER, 'onnx'))
  .filter((f) => f.endsWith('.onnx'))
  .sort();

/** The right reference for a graph: PyTorch for the fp32 export, onnxruntime-python on the same graph otherwise. */
function expected(graph: string, prompt: string): GreedyRun {
  if (graph === 'model.onnx') return reference.torch[prompt]!;
  const run = reference.graphs[graph]?.onnxruntime_python[prompt];
  if (!run) throw new Error(`reference.json has no onnxruntime-python run of ${graph} on '${prompt}'`);
  return run;
}

const engines = new Map<string, Engine>();
/** The graph as exported (graphRewrite false: the same graph onnxruntime-python ran), or rewritten for speed as users load it. */
async function engineFor(graph: string, rewritten = false): Promise<Engine> {
  const key = `${graph}${rewritten ? ' rewritten' : ''}`;
  let engine = engines.get(key);
  if (!engine) {
    engine = await Engine.load({ modelDir: FOLDER, onnxFile: graph, threads: 1, graphRewrite: rewritten });
    engines.set(key, engine);
  }
  return engine;
}
afterAll(async () => {
  for (const engine of engines.values()) await engine.dispose();
});

async function greedy(graph: string, prompt: string, cache: CacheOptions = { method: 'full' }, rewritten = false) {
  const engine = await engineFor(graph, rewritten);
  for await (const event of engine.generate({ prompt, maxNewTokens: MAX_NEW_TOKENS, sampling: { temperature: 0 }, cache })) {
    if (event.kind === 'done') return event;
  }
  throw new Error('generation ended without a done event');
}

describe('optimum-qwen2-tiny: every graph variant against its reference', () => {
  it('the folder holds the variants onnx-community repos ship, each with a reference', () => {
    expect(GRAPHS).toEqual(expect.arrayContaining(['model.onnx', 'model_q4.onnx', 'model_fp16.onnx', 'model_q4f16.onnx']));
    for (const graph of GRAPHS) expect(Object.keys(reference.graphs), graph).toContain(graph);
  });

  for (const graph of GRAPHS) {
    it(`${graph}: the folder check reads its element types`, async () => {
      const { signature } = (await engineFor(graph)).folder;
      const declared = (name: string): string => {
        const type = reference.graphs[graph]!.outputs.find((o) => o.name === name)!.type;
        return type === 'float' ? 'float32' : type;
      };
      expect(signature.kvElementType).toBe(reference.graphs[graph]!.onnxruntime_python[PROMPTS[0]!]!.kv_dtype);
      expect(signature.kvElementType).toBe(declared('present.0.key'));
      expect(signature.logitsElementType).toBe(declared('logits'));
    });

    it(`${graph}: the prompt's last logits equal onnxruntime-python's on the same graph`, async () => {
      const engine = await engineFor(graph);
      for (const prompt of PROMPTS) {
        const ids = engine.encodePrompt({ prompt });
        expect(ids).toEqual(reference.torch[prompt]!.prompt_ids);
        const cache = engine.session.createCache(64);
        const logits = await engine.session.forward(ids, cache);
        const vocab = engine.session.vocabSize;
        const last = logits.subarray((ids.length - 1) * vocab, ids.length * vocab);
        const python = reference.graphs[graph]!.onnxruntime_python[prompt]!;
        // float16 logits are exact float16 values: within a float16 step of Python's (other
        // kernels' summation order), and not reinterpreted bits (which would be off by far more).
        const tolerance = signatureIsHalf(engine) ? 4e-3 : 1e-4;
        for (let i = 0; i < 16; i++) expect(Math.abs(last[i]! - python.prompt_last_logits_first16[i]!), `${prompt} logit ${i}`).toBeLessThan(tolerance);
        let argmax = 0;
        for (let i = 1; i < vocab; i++) if (last[i]! > last[argmax]!) argmax = i;
        expect(argmax).toBe(python.prompt_last_logits_argmax);
      }
    });

    it(`${graph}: engine API greedy ids and text equal the reference`, async () => {
      for (const prompt of PROMPTS) {
        const done = await greedy(graph, prompt);
        const want = expected(graph, prompt);
        expect(done.tokenIds, prompt).toEqual(want.generated_ids);
        // The reference decodes the continuation alone (the tokenizer's Strip drops one leading space).
        expect(done.text.replace(/^ /, ''), prompt).toBe(want.text);
      }
    });

    it(`${graph}: a FreqKV cache that never fills equals the full cache`, async () => {
      for (const prompt of PROMPTS) {
        const done = await greedy(graph, prompt, { method: 'freqkv', capacity: 128 });
        expect(done.stats.compressions).toBe(0);
        expect(done.tokenIds, prompt).toEqual(expected(graph, prompt).generated_ids);
      }
    });

    it(`${graph}: a FreqKV cache of 32 rows compresses and keeps positions below 32`, async () => {
      for (const prompt of PROMPTS) {
        const done = await greedy(graph, prompt, { method: 'freqkv', capacity: 32 });
        expect(done.stats.compressions).toBeGreaterThan(0);
        expect(done.stats.maxPosition).toBeLessThan(32);
        expect(done.stats.cacheRows).toBeLessThanOrEqual(32);
        expect(done.tokenIds).toHaveLength(MAX_NEW_TOKENS);
        // Up to the first compression the cache is the full one, so the tokens are the reference's.
        const beforeCompression = 32 - reference.torch[prompt]!.prompt_ids.length;
        expect(done.tokenIds.slice(0, beforeCompression), prompt).toEqual(expected(graph, prompt).generated_ids.slice(0, beforeCompression));
      }
    });
  }
});

// What users run: each graph rewritten for speed when it is loaded (model/graphRewrite.ts). A
// float32 graph's rewrite (the last-position logits slice) changes no arithmetic: exactly the
// reference. A quantized graph also gets int8 arithmetic and an int8 tied classifier. Fed the
// reference's own tokens (teacher forcing, so one near tie cannot send the runs apart), its
// logits at every step stay within REWRITE_LOGIT_TOLERANCE of the exported graph's over the whole
// vocabulary (measured: at most 0.53), the prompt's first 16 within it of onnxruntime-python's,
// and it picks the reference's token at every step where the reference's lead is wider than
// twice the measured difference. (Greedy runs of these random weights part at near ties, leads
// of 0.02 to 0.05, so a whole free-running greedy run is not expected to match.)
const REWRITE_LOGIT_TOLERANCE = 0.75;
const REWRITE_STEPS = 16;
const isQuantized = (graph: string): boolean => /q4/.test(graph);

function maxAbsDifference(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}
function argmaxAndLead(logits: Float32Array): { argmax: number; lead: number } {
  let argmax = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[argmax]!) argmax = i;
  let second = -Infinity;
  for (let i = 0; i < logits.length; i++) if (i !== argmax) second = Math.max(second, logits[i]!);
  return { argmax, lead: logits[argmax]! - second };
}

describe('optimum-qwen2-tiny: every graph as users load it (rewritten for speed)', () => {
  for (const graph of GRAPHS) {
    it(`${graph}: rewritten, ${isQuantized(graph) ? `its logits stay within ${REWRITE_LOGIT_TOLERANCE} of the exported graph's along the reference` : 'it gives exactly the reference'}`, async () => {
      const rewritten = await engineFor(graph, true);
      const exported = await engineFor(graph);
      expect(rewritten.session.graphChanges.length).toBeGreaterThan(0);
      for (const prompt of PROMPTS) {
        const want = expected(graph, prompt).generated_ids;
        if (!isQuantized(graph)) {
          expect((await greedy(graph, prompt, { method: 'full' }, true)).tokenIds, prompt).toEqual(want);
          continue;
        }
        const ids = rewritten.encodePrompt({ prompt });
        const cacheR = rewritten.session.createCache(64);
        const cacheE = exported.session.createCache(64);
        let r = await rewritten.session.forward(ids, cacheR, { logits: 'last' });
        let e = await exported.session.forward(ids, cacheE, { logits: 'last' });
        const python = reference.graphs[graph]!.onnxruntime_python[prompt]!;
        for (let i = 0; i < 16; i++) expect(Math.abs(r[i]! - python.prompt_last_logits_first16[i]!), `${prompt} logit ${i}`).toBeLessThan(REWRITE_LOGIT_TOLERANCE);
        for (let step = 0; step < REWRITE_STEPS; step++) {
          const difference = maxAbsDifference(r, e);
          expect(difference, `${prompt} step ${step}`).toBeLessThan(REWRITE_LOGIT_TOLERANCE);
          const { argmax, lead } = argmaxAndLead(e);
          expect(argmax, `${prompt} step ${step}: the exported graph follows its reference`).toBe(want[step]);
          if (lead > 2 * difference) expect(argmaxAndLead(r).argmax, `${prompt} step ${step}`).toBe(want[step]);
          r = await rewritten.session.forward([want[step]!], cacheR, { logits: 'last' });
          e = await exported.session.forward([want[step]!], cacheE, { logits: 'last' });
        }
        // FreqKV that never fills equals the full cache on the rewritten graph too.
        const full = await greedy(graph, prompt, { method: 'full' }, true);
        expect((await greedy(graph, prompt, { method: 'freqkv', capacity: 128 }, true)).tokenIds, prompt).toEqual(full.tokenIds);
      }
    });
  }
});

describe('optimum-qwen2-tiny: FreqKV on a float16 cache', () => {
  it('model_fp16.onnx with a 32-row FreqKV cache gives the ids model.onnx gives with one (their full-cache runs agree)', async () => {
    for (const prompt of PROMPTS) {
      // The float16 cache is widened, transformed and narrowed at every compression; done
      // wrong (bits read as numbers, bad rounding) the runs part within a few tokens.
      expect(reference.graphs['model_fp16.onnx']!.onnxruntime_python[prompt]!.generated_ids).toEqual(reference.torch[prompt]!.generated_ids);
      const half = await greedy('model_fp16.onnx', prompt, { method: 'freqkv', capacity: 32 });
      const single = await greedy('model.onnx', prompt, { method: 'freqkv', capacity: 32 });
      expect(half.stats.compressions).toBeGreaterThan(2);
      expect(half.stats.compressions).toBe(single.stats.compressions);
      expect(half.tokenIds, prompt).toEqual(single.tokenIds);
    }
  });
});

function signatureIsHalf(engine: Engine): boolean {
  return engine.folder.signature.logitsElementType === 'float16';
}

describe('optimum-qwen2-tiny through the CLI', () => {
  for (const graph of GRAPHS) {
    it(`freqkv generate --onnx-file ${graph} --temperature 0 --json prints the reference, with no deprecation warning`, () => {
      for (const prompt of PROMPTS) {
        // --throw-deprecation: a deprecation warning (such as DEP0005 from the graph reader) kills the run.
        const args = ['--throw-deprecation', path.join(ROOT, 'bin', 'freqkv.js'), 'generate', '--model', FOLDER, '--onnx-file', graph, '--graph-rewrite', 'off'];
        args.push('--prompt', prompt, '--max-tokens', String(MAX_NEW_TOKENS), '--temperature', '0', '--json');
        const run = spawnSync(process.execPath, args, { encoding: 'utf8', cwd: ROOT, timeout: 120_000 });
        expect(run.stderr).not.toMatch(/Deprecation|DEP0/);
        expect(run.status, run.stderr).toBe(0);
        const result = JSON.parse(run.stdout) as { text: string; tokenIds: number[]; onnxFile: string };
        expect(result.onnxFile).toBe(path.join(FOLDER, 'onnx', graph));
        expect(result.tokenIds, prompt).toEqual(expected(graph, prompt).generated_ids);
        expect(result.text.replace(/^ /, ''), prompt).toBe(expected(graph, prompt).text);
      }
    });
  }

  it('ask on model_fp16.onnx (segment store and compressed sequential cache, float16 rows) answers as on model.onnx', () => {
    const workspace = tempDir('f16-ws');
    fs.copyFileSync(path.join(ROOT, 'bench', 'texts', 'the-lighthouse-cat.txt'), path.join(workspace, 'the-lighthouse-cat.txt'));
    const store = tempDir('f16-store');
    const ask = (graph: string, mode: string): { text: string; compressions: number } => {
      const args = [path.join(ROOT, 'bin', 'freqkv.js'), 'ask', '--model', FOLDER, '--onnx-file', graph, '--mode', mode, '--workspace', workspace, '--store', store];
      args.push('--capacity', '256', '--max-tokens', '30', '--temperature', '0', '--json', 'Where is the cat?');
      const run = spawnSync(process.execPath, args, { encoding: 'utf8', cwd: ROOT, timeout: 120_000 });
      expect(run.status, run.stderr).toBe(0);
      return JSON.parse(run.stdout) as { text: string; compressions: number };
    };
    for (const mode of ['segmented', 'sequential']) {
      const single = ask('model.onnx', mode);
      const half = ask('model_fp16.onnx', mode);
      expect(half.text, mode).toBe(single.text);
      expect(half.compressions).toBe(single.compressions);
      if (mode === 'sequential') expect(half.compressions).toBeGreaterThan(0);
    }
  });

  it('without --onnx-file the folder of six graphs runs model.onnx, says so, and names the others', () => {
    const run = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'freqkv.js'), 'generate', '--model', FOLDER, '--prompt', PROMPTS[0]!, '--max-tokens', '5', '--temperature', '0', '--json'], {
      encoding: 'utf8',
      cwd: ROOT,
      timeout: 120_000,
    });
    expect(run.status, run.stderr).toBe(0);
    expect((JSON.parse(run.stdout) as { onnxFile: string }).onnxFile).toBe(path.join(FOLDER, 'onnx', 'model.onnx'));
    expect(run.stderr).toMatch(/holds 6 graphs .*onnx\/model_q4f16\.onnx.*; using onnx\/model\.onnx, the default\. Choose another with --onnx-file/);
  });

  it('a missing --onnx-file is an error that lists the graphs there, with exit code 2', () => {
    const run = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'freqkv.js'), 'generate', '--model', FOLDER, '--onnx-file', 'model_int8.onnx'], { encoding: 'utf8', cwd: ROOT, timeout: 120_000 });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/has no graph model_int8\.onnx .*Graphs in the folder: onnx\/model\.onnx, onnx\/model_fp16\.onnx, .*onnx\/model_slim_q4\.onnx; name one of them with --onnx-file/);
  });
});

describe('float16 conversion against onnxruntime (Cast)', () => {
  const work = tempDir('f16cast');
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  async function cast(from: number, to: number, type: 'float16' | 'float32', data: Uint16Array | Float32Array): Promise<ort.Tensor> {
    const g = new GraphBuilder('cast');
    g.input('x', from, ['n']);
    g.opNamed('y', 'Cast', ['x'], { to });
    g.output('y', to, ['n']);
    const file = path.join(work, `cast-${from}-${to}.onnx`);
    g.save(file, { opsets: [{ domain: '', version: 17 }], producer: 'test' });
    const session = await ort.InferenceSession.create(file);
    try {
      return (await session.run({ x: new ort.Tensor(type, data, [data.length]) })).y!;
    } finally {
      await session.release();
    }
  }

  it('widening every float16 bit pattern (subnormals, ±0, ±Infinity, NaN) gives what onnxruntime gives', async () => {
    const bits = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const ours = float16ToFloat32(bits, new Float32Array(65536));
    const theirs = (await cast(TensorType.FLOAT16, TensorType.FLOAT, 'float16', bits)).data as Float32Array;
    const mismatches: number[] = [];
    for (let i = 0; i < 65536; i++) if (!Object.is(ours[i], theirs[i]) && !(Number.isNaN(ours[i]) && Number.isNaN(theirs[i]))) mismatches.push(i);
    expect(mismatches).toEqual([]);
    expect(ours[0x0001]).toBe(2 ** -24);
    expect(ours[0x03ff]).toBe(1023 * 2 ** -24);
    expect(ours[0x7c00]).toBe(Infinity);
    expect(ours[0xfc00]).toBe(-Infinity);
    expect(Object.is(ours[0x8000], -0)).toBe(true);
    expect(Number.isNaN(ours[0x7e00])).toBe(true);
  });

  it('narrowing float32 (ties, subnormals, overflow, NaN) gives the bits onnxruntime gives', async () => {
    const specials = [0, -0, 1, -1, 65504, 65519.99, 65520, 1e6, -1e6, Infinity, -Infinity, NaN, 2 ** -24, 2 ** -25, 2 ** -25 * 1.0001, 3 * 2 ** -25, 2 ** -14, 2 ** -14 - 2 ** -25, 1 + 2 ** -11, 1 + 3 * 2 ** -11];
    const spread = Array.from({ length: 4000 }, (_, i) => Math.sin(i * 12.9898) * 2 ** ((i % 40) - 28));
    const xs = Float32Array.from([...specials, ...spread]);
    const ours = float32ToFloat16(xs, new Uint16Array(xs.length));
    const theirs = (await cast(TensorType.FLOAT, TensorType.FLOAT16, 'float32', xs)).data as Uint16Array;
    const isNaNBits = (b: number): boolean => (b & 0x7c00) === 0x7c00 && (b & 0x3ff) !== 0;
    const mismatches: string[] = [];
    for (let i = 0; i < xs.length; i++) if (ours[i] !== theirs[i] && !(isNaNBits(ours[i]!) && isNaNBits(theirs[i]!))) mismatches.push(`${xs[i]}: ${ours[i]} vs ${theirs[i]}`);
    expect(mismatches).toEqual([]);
  });
});
