// The GGUF writer with the real reader: `freqkv convert random --gguf` writes a tiny Qwen2-shaped
// model (the Qwen tokenizer, random weights) as GGUF beside the ONNX folder of the same seed;
// llama.cpp (node-llama-cpp's prebuilt CPU binary) loads it, tokenizes like our tokenizer, and
// with f32 matrices its logits and greedy tokens match our engine's on the same weights, which
// shows the tensors, shapes, RoPE and metadata are really the same model. The Q4_0 file loads
// and generates, and its logits stay near the float model's.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dequantizeQ4_0, float16ToFloat32, float32ToFloat16, quantizeQ4_0 } from '../src/builder/gguf';
import { Engine } from '../src/engine/engine';
import { argmax } from '../src/engine/generate/sampler';
import { openLlamaCpp, type LlamaCppRuntime } from '../src/engine/bench/llamaCppProbe';
import { SHARED, tempDir } from './helpers';

const ROOT = path.resolve(__dirname, '..');
const QWEN_TOKENIZER = path.join(SHARED, 'formats', 'qwen2.5-coder-instruct');
const TINY_QWEN = {
  architectures: ['Qwen2ForCausalLM'],
  model_type: 'qwen2',
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 151936,
  max_position_embeddings: 512,
  rope_theta: 1000000.0,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
  bos_token_id: 151643,
  eos_token_id: 151645,
};

function logSoftmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  let sum = 0;
  for (const x of logits) sum += Math.exp(x - max);
  const logSum = max + Math.log(sum);
  return Float64Array.from(logits, (x) => x - logSum);
}

describe('Q4_0 and f16 encodings', () => {
  it('round-trips halves and quantizes blocks as ggml does', () => {
    for (const x of [0, 1, -2.5, 0.1, 65504, 6e-8, 1e-3]) expect(Math.abs(float16ToFloat32(float32ToFloat16(x)) - x)).toBeLessThanOrEqual(Math.abs(x) * 2 ** -11 + 6e-8);
    const values = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i * 0.7) * (i < 32 ? 1 : 0.01));
    const bytes = quantizeQ4_0(values);
    expect(bytes.length).toBe(2 * 18);
    const back = dequantizeQ4_0(bytes);
    for (let b = 0; b < 2; b++) {
      const block = values.subarray(b * 32, b * 32 + 32);
      const amax = Math.max(...Array.from(block, Math.abs));
      // The block's largest-magnitude value maps to level −8 exactly; every value is within one level (d = amax / 8).
      for (let j = 0; j < 32; j++) expect(Math.abs(back[b * 32 + j]! - block[j]!)).toBeLessThanOrEqual(amax / 8 + 1e-6);
    }
    expect(() => quantizeQ4_0(new Float32Array(31))).toThrow(/multiple of 32/);
  });
});

describe('GGUF of a random model, loaded by llama.cpp', () => {
  let dir: string;
  let llama: LlamaCppRuntime;
  const convert = (args: string[]): void => {
    const run = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'freqkv.js'), 'convert', 'random', '--config', path.join(dir, 'tiny.json'), '--tokenizer', QWEN_TOKENIZER, '--seed', '5', ...args], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
  };

  beforeAll(async () => {
    dir = tempDir('gguf');
    fs.writeFileSync(path.join(dir, 'tiny.json'), JSON.stringify(TINY_QWEN));
    convert(['--out', path.join(dir, 'onnx-f32'), '--gguf', path.join(dir, 'tiny-f32.gguf'), '--gguf-type', 'f32']);
    convert(['--gguf', path.join(dir, 'tiny-q4_0.gguf')]);
    llama = await openLlamaCpp();
  }, 120_000);
  afterAll(async () => {
    await llama?.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('f32: the same tokens, logits and greedy continuation as our engine on the same weights', async () => {
    const ours = await Engine.load({ modelDir: path.join(dir, 'onnx-f32'), threads: 2 });
    const theirs = await llama.loadModel(path.join(dir, 'tiny-f32.gguf'), { contextSize: 128, threads: 2 });
    try {
      const text = 'def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)';
      const ids = ours.tokenizer.encode(text, { addSpecialTokens: false });
      expect(theirs.tokenize(text)).toEqual(ids);

      const vocab = TINY_QWEN.vocab_size;
      const cache = ours.session.createCache(64);
      const ourLogits = (await ours.session.forward(ids, cache, { logits: 'last' })).slice(-vocab);
      const ourLogProbabilities = logSoftmax(ourLogits);
      const theirLogProbabilities = await theirs.logProbabilitiesAfter(ids);
      expect(theirLogProbabilities.size).toBe(vocab);
      let maxDiff = 0;
      for (const [token, logP] of theirLogProbabilities) maxDiff = Math.max(maxDiff, Math.abs(logP - ourLogProbabilities[token]!));
      // The logits are spread (not a constant the check would pass on), and both engines agree to float32 rounding.
      expect(ourLogits.reduce((a, b) => Math.max(a, b)) - ourLogits.reduce((a, b) => Math.min(a, b))).toBeGreaterThan(0.3);
      expect(maxDiff).toBeLessThan(2e-3);

      // Greedy continuation, token by token, fed back on both sides.
      const ourTokens: number[] = [];
      let next = argmax(ourLogits);
      for (let i = 0; i < 8; i++) {
        ourTokens.push(next);
        next = argmax((await ours.session.forward([next], cache, { logits: 'last' })).slice(-vocab));
      }
      expect(await theirs.greedy(ids, 8)).toEqual(ourTokens);
    } finally {
      await theirs.dispose();
      await ours.dispose();
    }
  }, 120_000);

  it('bench speed takes turns with llama.cpp on the GGUF and reports per-round ratios and measured limits', () => {
    const json = path.join(dir, 'speed.json');
    const markdown = path.join(dir, 'speed.md');
    const args = ['bench', 'speed', '--model', path.join(dir, 'onnx-f32'), '--gguf', path.join(dir, 'tiny-q4_0.gguf'), '--engines', 'freqkv,llama.cpp', '--caches', 'full'];
    const run = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'freqkv.js'), ...args, '--contexts', '64', '--decode-steps', '8', '--rounds', '2', '--threads', '2', '--json', json, '--markdown', markdown], {
      encoding: 'utf8',
      cwd: ROOT,
      timeout: 170_000,
    });
    expect(run.status, run.stderr).toBe(0);
    const result = JSON.parse(fs.readFileSync(json, 'utf8')) as {
      machine: Record<string, number>;
      rows: Record<string, unknown>[];
      ratios: Record<string, unknown>[];
      medianRatios: Record<string, unknown>[];
    };
    // Turns in order: ours, llama.cpp, ours, llama.cpp.
    expect(result.rows.map((r) => `${r.engine as string}#${r.round as number}`)).toEqual(['freqkv#0', 'llama.cpp#0', 'freqkv#1', 'llama.cpp#1']);
    for (const row of result.rows) {
      for (const key of ['prefillTokensPerSecond', 'decodeTokensPerSecond', 'peakRssBytes', 'prefillComputeFraction', 'decodeBandwidthFraction', 'loadAverage1m', 'loadAverage1mAfter']) expect(row[key] as number, key).toBeGreaterThan(0);
    }
    const llamaRow = result.rows.find((r) => r.engine === 'llama.cpp')!;
    expect(llamaRow.weightBytes).toBe(fs.statSync(path.join(dir, 'tiny-q4_0.gguf')).size);
    expect(result.ratios.map((r) => [r.peer, r.round])).toEqual([
      ['llama.cpp', 0],
      ['llama.cpp', 1],
    ]);
    expect(result.medianRatios).toHaveLength(1);
    expect(result.machine.computeOpsPerSecond).toBeGreaterThan(1e10);
    expect(fs.readFileSync(markdown, 'utf8')).toMatch(/Ours ÷ llama\.cpp[\s\S]*median of 2/);
  }, 180_000);

  it('q4_0: loads, generates, and its logits stay near the float model', async () => {
    const f32 = await llama.loadModel(path.join(dir, 'tiny-f32.gguf'), { contextSize: 128, threads: 2 });
    const q4 = await llama.loadModel(path.join(dir, 'tiny-q4_0.gguf'), { contextSize: 128, threads: 2 });
    try {
      // 18 bytes per 32 weights instead of 128 (the tokenizer section, about 6 MB, is the same in both).
      expect(fs.statSync(path.join(dir, 'tiny-q4_0.gguf')).size).toBeLessThan(fs.statSync(path.join(dir, 'tiny-f32.gguf')).size / 3);
      const ids = q4.tokenize('The lighthouse keeper had a cat.');
      const exact = await f32.logProbabilitiesAfter(ids);
      const quantized = await q4.logProbabilitiesAfter(ids);
      let maxDiff = 0;
      let low = 0;
      let high = -Infinity;
      for (const [token, logP] of exact) {
        maxDiff = Math.max(maxDiff, Math.abs(logP - quantized.get(token)!));
        low = Math.min(low, logP);
        high = Math.max(high, logP);
      }
      // 4-bit weights move the log-probabilities, but by a fraction of their spread, not at random.
      expect(maxDiff).toBeGreaterThan(0);
      expect(maxDiff).toBeLessThan(0.5 * (high - low));
      expect(await q4.greedy(ids, 4)).toHaveLength(4);
    } finally {
      await q4.dispose();
      await f32.dispose();
    }
  }, 120_000);
});
