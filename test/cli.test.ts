// The `freqkv` command as a user runs it (the bundled dist/cli.js through bin/freqkv.js).

import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { STORIES_DIR, tempDir } from './helpers';

const ROOT = path.resolve(__dirname, '..');

/** Segment stores of `ask` runs that pass no --store go here, not into the user's cache folder. */
const DEFAULT_STORE = tempDir('cli-store');

function freqkv(...args: string[]): { stdout: string; stderr: string; status: number | null } {
  const result = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'freqkv.js'), ...args], { encoding: 'utf8', cwd: ROOT, timeout: 120_000, env: { ...process.env, FREQKV_STORE: DEFAULT_STORE } });
  return { stdout: result.stdout, stderr: result.stderr, status: result.status };
}

// dist/ (what `npx freqkv` runs) is built once for all test files by test/globalSetup.ts.

describe('freqkv generate', () => {
  it('greedy from BOS prints the golden text', () => {
    const { stdout, status } = freqkv('generate', '--temperature', '0', '--max-tokens', '256');
    expect(status).toBe(0);
    expect(stdout).toBe(fs.readFileSync(path.join(STORIES_DIR, 'golden-greedy-from-bos-256.txt'), 'utf8'));
  });

  it('--json prints one line with the text and the statistics', () => {
    const { stdout, status } = freqkv('generate', '--prompt', 'Tom and his dog', '--max-tokens', '20', '--seed', '4', '--json');
    expect(status).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0]!) as Record<string, unknown>;
    for (const key of ['text', 'promptTokens', 'generatedTokens', 'prefillTokensPerSecond', 'decodeTokensPerSecond', 'cacheRows', 'cacheBytes']) {
      expect(result, key).toHaveProperty(key);
    }
    expect(result.generatedTokens).toBe(20);
    expect(typeof result.text).toBe('string');
  });

  it('bad options and a bad model say what is wrong, with exit code 2', () => {
    const zero = freqkv('generate', '--max-tokens', '0');
    expect(zero.status).toBe(2);
    expect(zero.stderr).toMatch(/--max-tokens must be a whole number of at least 1/);
    const temperature = freqkv('generate', '--temperature', 'hot');
    expect(temperature.status).toBe(2);
    const missing = freqkv('generate', '--model', path.join(tempDir('cli'), 'none'));
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/does not exist/);
    const long = freqkv('generate', '--prompt', 'Once upon a time there was a dog. '.repeat(100));
    expect(long.status).toBe(2);
    expect(long.stderr).toMatch(/at most 512/);
  });
});

describe('freqkv generate --cache', () => {
  it('freqkv and streaming continue a prompt longer than the context; --json has the cache statistics', () => {
    const prompt = 'Once upon a time there was a dog. '.repeat(100);
    for (const method of ['freqkv', 'streaming']) {
      const { stdout, stderr, status } = freqkv('generate', '--prompt', prompt, '--max-tokens', '600', '--cache', method, '--capacity', '128', '--sinks', '2', '--retain', '0.25', '--json');
      expect(status, stderr).toBe(0);
      const result = JSON.parse(stdout) as Record<string, number>;
      expect(result.generatedTokens).toBe(600);
      expect(result.cacheCapacity).toBe(128);
      expect(result.cacheRows).toBeLessThanOrEqual(128);
      expect(result.maxPosition).toBe(127);
      expect(result.compressions).toBeGreaterThan(0);
      expect(result.tokensSeen).toBe(result.promptTokens! + 600);
      expect(result.effectiveRatio).toBeCloseTo(result.tokensSeen! / result.cacheRows!, 10);
    }
  });

  it('bad cache options say what is wrong; a capacity past the trained context warns', () => {
    const small = freqkv('generate', '--cache', 'freqkv', '--capacity', '5', '--sinks', '4');
    expect(small.status).toBe(2);
    expect(small.stderr).toMatch(/at least sinks \+ 2 = 6/);
    const retain = freqkv('generate', '--cache', 'freqkv', '--retain', '1');
    expect(retain.status).toBe(2);
    expect(retain.stderr).toMatch(/--retain must be a number in \(0, 1\)/);
    const method = freqkv('generate', '--cache', 'lru');
    expect(method.status).toBe(2);
    expect(method.stderr).toMatch(/--cache must be one of full, freqkv, streaming/);
    const big = freqkv('generate', '--cache', 'freqkv', '--capacity', '600', '--max-tokens', '5');
    expect(big.status).toBe(0);
    expect(big.stderr).toMatch(/warning: .*larger than the model's trained context \(512\)/);
  });
});

describe('freqkv convert', () => {
  it('llama2c (int8 weights) and random (int4, float16 KV cache) write folders that generate', () => {
    const out = tempDir('convert');
    const converted = freqkv('convert', 'llama2c', '--checkpoint', path.join(STORIES_DIR, 'stories260K.bin'), '--tokenizer', path.join(STORIES_DIR, 'tok512.bin'), '--out', path.join(out, 'stories'), '--weights', 'int8');
    expect(converted.status, converted.stderr).toBe(0);
    const int8 = freqkv('generate', '--model', path.join(out, 'stories'), '--temperature', '0', '--max-tokens', '8');
    expect(int8.status).toBe(0);
    expect(int8.stdout.length).toBeGreaterThan(10);

    const configFile = path.join(out, 'config.json');
    fs.writeFileSync(configFile, JSON.stringify({ model_type: 'llama', hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 512, max_position_embeddings: 64, rms_norm_eps: 1e-5, bos_token_id: 1, eos_token_id: 2 }));
    const random = freqkv('convert', 'random', '--config', configFile, '--tokenizer', path.join(ROOT, 'models', 'stories260K'), '--out', path.join(out, 'random'), '--kv-cache', 'float16', '--weights', 'int4');
    expect(random.status, random.stderr).toBe(0);
    const generated = freqkv('generate', '--model', path.join(out, 'random'), '--max-tokens', '8', '--json');
    expect(generated.status, generated.stderr).toBe(0);
    expect(JSON.parse(generated.stdout).cacheBytes).toBe(8 * 2 * 2 * 2 * 8 * 2);
  });
});

describe('freqkv bench fidelity', () => {
  it('a tiny setting writes JSON rows, a Markdown table and SVG plots', () => {
    const out = tempDir('bench');
    const json = path.join(out, 'result.json');
    const run = freqkv('bench', 'fidelity', '--samples', '1', '--sample-tokens', '300', '--capacities', '64', '--retains', '0.5', '--recent', '0', '--out', out, '--json', json);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/samples-seed1: freqkv N=64/);
    const result = JSON.parse(fs.readFileSync(json, 'utf8')) as { rows: Record<string, unknown>[] };
    for (const key of ['method', 'capacity', 'sinks', 'retain', 'text', 'tokens', 'bytesPerToken', 'perplexity', 'kl', 'top1', 'recallLoss']) {
      expect(result.rows[0], key).toHaveProperty(key);
    }
    expect(result.rows.filter((r) => r.text === 'recall-probe').map((r) => r.method)).toEqual(['full', 'streaming', 'freqkv']);
    expect(fs.readFileSync(path.join(out, 'fidelity.md'), 'utf8')).toContain('| freqkv γ=0.5 | 64 |');
    expect(fs.readFileSync(path.join(out, 'ppl-vs-bytes-samples-seed1.svg'), 'utf8')).toMatch(/^<svg/);
  });

  it('an empty or non-UTF-8 --text file is a named error with exit code 2', () => {
    const dir = tempDir('bench-bad');
    const empty = path.join(dir, 'empty.txt');
    fs.writeFileSync(empty, '');
    const latin1 = path.join(dir, 'latin1.txt');
    fs.writeFileSync(latin1, Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0xff, 0x0a]));
    const a = freqkv('bench', 'fidelity', '--text', empty);
    expect(a.status).toBe(2);
    expect(a.stderr).toMatch(/empty\.txt is empty/);
    const b = freqkv('bench', 'fidelity', '--text', latin1);
    expect(b.status).toBe(2);
    expect(b.stderr).toMatch(/latin1\.txt is not valid UTF-8/);
    const c = freqkv('bench', 'fidelity', '--text', path.join(dir, 'none.txt'));
    expect(c.status).toBe(2);
    expect(c.stderr).toMatch(/does not exist/);
    const d = freqkv('bench', 'nonesuch');
    expect(d.status).toBe(2);
    expect(d.stderr).toMatch(/fidelity, speed or workspace/);
  });
});

describe('freqkv ask and summarize', () => {
  const write = (root: string, rel: string, content: string | Uint8Array): void => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), content);
  };

  it('ask --mode sequential --json on a workspace longer than the context: files, skips and compressions', () => {
    const root = tempDir('ask');
    write(root, '.gitignore', 'ignored.txt\n');
    write(root, 'ignored.txt', 'x\n');
    write(root, 'src/story.ts', `// A story.\n${'// Once upon a time there was a dog.\n'.repeat(80)}export const story = 1;\n`);
    write(root, 'README.md', '# Dogs\nA project about a dog and a cat.\n');
    write(root, 'logo.png', new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0]));
    const { stdout, stderr, status } = freqkv('ask', '--mode', 'sequential', '--workspace', root, '--max-tokens', '16', '--seed', '1', '--json', 'What', 'is', 'this?');
    expect(status, stderr).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0]!) as Record<string, unknown> & { files: { path: string; tokens: number }[]; skipped: { path: string; reason: string }[] };
    for (const key of ['text', 'stopReason', 'promptTokens', 'generatedTokens', 'cacheRows', 'cacheBytes', 'compressions', 'effectiveRatio', 'prefillTokensPerSecond', 'decodeTokensPerSecond', 'filesIncluded', 'filesSkipped', 'workspaceTokens', 'timeToFirstTokenMs', 'files', 'skipped']) {
      expect(result, key).toHaveProperty(key);
    }
    expect(result.filesIncluded).toBe(3);
    expect(result.files.map((f) => f.path).sort()).toEqual(['.gitignore', 'README.md', 'src/story.ts']);
    expect(result.skipped).toEqual(expect.arrayContaining([{ path: 'ignored.txt', reason: 'gitignore' }, { path: 'logo.png', reason: 'binary' }]));
    expect(result.filesSkipped).toBe(2);
    expect(result.workspaceTokens as number).toBeGreaterThan(512);
    expect(result.promptTokens as number).toBeGreaterThan(512);
    expect(result.compressions as number).toBeGreaterThan(0);
    expect(result.generatedTokens).toBe(16);
    expect(result.timeToFirstTokenMs as number).toBeGreaterThan(0);
  });

  it('summarize a file longer than the context compresses the cache', () => {
    const file = path.join(tempDir('sum'), 'long.txt');
    fs.writeFileSync(file, 'Once upon a time there was a dog. '.repeat(60));
    const { stdout, stderr, status } = freqkv('summarize', '--max-tokens', '8', '--json', file);
    expect(status, stderr).toBe(0);
    const result = JSON.parse(stdout) as Record<string, number>;
    expect(result.filesIncluded).toBe(1);
    expect(result.promptTokens).toBeGreaterThan(512);
    expect(result.compressions).toBeGreaterThan(0);
    // Without --json, the text goes to stdout and the statistics to stderr.
    const plain = freqkv('summarize', '--max-tokens', '8', file);
    expect(plain.status).toBe(0);
    expect(plain.stderr).toMatch(/compressions; first token after/);
  });

  it('a missing or binary file to summarize and an empty workspace are clear errors (exit 2)', () => {
    const dir = tempDir('bad');
    const missing = freqkv('summarize', path.join(dir, 'none.txt'));
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/none\.txt does not exist/);
    write(dir, 'blob.bin', new Uint8Array([1, 2, 0, 3]));
    const binary = freqkv('summarize', path.join(dir, 'blob.bin'));
    expect(binary.status).toBe(2);
    expect(binary.stderr).toMatch(/binary file/);
    write(dir, 'latin1.txt', new Uint8Array([0x63, 0x61, 0x66, 0xe9]));
    expect(freqkv('summarize', path.join(dir, 'latin1.txt')).stderr).toMatch(/not valid UTF-8/);
    const empty = freqkv('ask', '--workspace', tempDir('empty'), 'Why?');
    expect(empty.status).toBe(2);
    expect(empty.stderr).toMatch(/No files to read .*the folder is empty.*--workspace DIR/);
    const onlyBinary = freqkv('ask', '--workspace', dir, '--exclude', '*.txt', 'Why?');
    expect(onlyBinary.status).toBe(2);
    expect(onlyBinary.stderr).toMatch(/1 binary/);
    const noQuestion = freqkv('ask', '--workspace', dir);
    expect(noQuestion.status).toBe(2);
    expect(noQuestion.stderr).toMatch(/ask needs a question/);
  });
});

describe('freqkv ask --mode segmented (the segment store)', () => {
  const workspace = (files: number): string => {
    const root = tempDir('seg-ws');
    for (let i = 0; i < files; i++) fs.writeFileSync(path.join(root, `story${i}.txt`), `Story ${i}. Once upon a time there was a dog named Max${i}. He liked to run in the park.\n`.repeat(1 + (i % 3)));
    fs.writeFileSync(path.join(root, 'dragon.md'), 'The old dragon slept in a dark cave under the hill.\n');
    return root;
  };
  const run = (...args: string[]): Promise<{ stdout: string; stderr: string; status: number | null }> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'freqkv.js'), ...args], { cwd: ROOT });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (status) => resolve({ stdout, stderr, status }));
    });
  type AskJson = { mode: string; files: { path: string; rows: number; storedRows: number; tokens: number }[]; segmentsBuilt: number; segmentsReused: number; persisted: boolean; warnings: string[]; dropped: unknown[]; tokensSeen: number };

  it('lists each file with its resolution, and a second run prefills nothing', () => {
    const root = workspace(5);
    const store = tempDir('seg-store');
    const first = freqkv('ask', '--workspace', root, '--store', store, '--max-tokens', '4', '--json', 'Where did the dragon sleep?');
    expect(first.status, first.stderr).toBe(0);
    const a = JSON.parse(first.stdout) as AskJson;
    expect(a.mode).toBe('segmented');
    expect(a.files.map((f) => f.path).sort()).toEqual(['dragon.md', 'story0.txt', 'story1.txt', 'story2.txt', 'story3.txt', 'story4.txt']);
    expect(a.files[a.files.length - 1]!.path).toBe('dragon.md');
    expect(a.files.every((f) => f.rows > 0 && f.rows <= f.storedRows && f.tokens > 0)).toBe(true);
    expect([a.segmentsBuilt, a.segmentsReused, a.persisted]).toEqual([6, 0, true]);
    expect(a.tokensSeen).toBeGreaterThan(a.files.reduce((n, f) => n + f.tokens, 0));
    const second = JSON.parse(freqkv('ask', '--workspace', root, '--store', store, '--max-tokens', '4', '--json', 'Who is Max?').stdout) as AskJson;
    expect([second.segmentsBuilt, second.segmentsReused]).toEqual([0, 6]);
  });

  it('--codec int8 and --codec rvq work end to end; a second run reuses the segments and the saved codebooks', () => {
    const root = workspace(2);
    const store = tempDir('seg-store');
    type CodecJson = AskJson & { codec: string; codecCalibrated: boolean; codecStateFile: string | null };
    const ask = (codec: string): CodecJson => {
      const result = freqkv('ask', '--workspace', root, '--store', store, '--codec', codec, '--max-tokens', '4', '--json', 'Where did the dragon sleep?');
      expect(result.status, result.stderr).toBe(0);
      return JSON.parse(result.stdout) as CodecJson;
    };
    const int8 = [ask('int8'), ask('int8')];
    expect(int8.map((r) => [r.codec, r.segmentsBuilt, r.segmentsReused, r.codecCalibrated, r.codecStateFile])).toEqual([
      ['int8', 3, 0, false, null],
      ['int8', 0, 3, false, null],
    ]);
    const first = ask('rvq');
    expect([first.codec, first.segmentsBuilt, first.codecCalibrated, first.warnings]).toEqual(['rvq', 3, true, []]);
    expect(first.codecStateFile!.startsWith(path.join(store, 'v1', 'codecs'))).toBe(true);
    const savedAt = fs.statSync(first.codecStateFile!).mtimeMs;
    const second = ask('rvq');
    expect([second.segmentsBuilt, second.segmentsReused, second.codecCalibrated, second.codecStateFile]).toEqual([0, 3, false, first.codecStateFile]);
    expect(fs.statSync(first.codecStateFile!).mtimeMs).toBe(savedAt);
    // Each codec keeps its own segments: 3 files × 2 codecs.
    expect(fs.readdirSync(path.join(store, 'v1', 'segments')).filter((f) => f.endsWith('.seg'))).toHaveLength(6);
  });

  it('two processes sharing one store both answer, and leave it consistent', async () => {
    const root = workspace(40);
    const store = tempDir('seg-store');
    const args = ['ask', '--workspace', root, '--store', store, '--max-tokens', '4', '--json', 'Who is Max?'];
    const [a, b] = await Promise.all([run(...args), run(...args)]);
    expect(a.status, a.stderr).toBe(0);
    expect(b.status, b.stderr).toBe(0);
    expect((JSON.parse(a.stdout) as AskJson).files).toHaveLength(41);
    expect((JSON.parse(b.stdout) as AskJson).files).toHaveLength(41);
    const segments = fs.readdirSync(path.join(store, 'v1', 'segments'));
    expect(segments.filter((f) => f.endsWith('.seg'))).toHaveLength(41);
    expect(segments.filter((f) => !f.endsWith('.seg'))).toEqual([]);
    // Every stored segment is whole: a third run rebuilds nothing.
    const third = JSON.parse(freqkv(...args).stdout) as AskJson;
    expect([third.segmentsBuilt, third.segmentsReused]).toEqual([0, 41]);
  });

  it('an unwritable store answers without persisting and says so; bad --mode and --codec are usage errors', () => {
    const root = workspace(2);
    const file = path.join(tempDir('seg-ro'), 'file');
    fs.writeFileSync(file, 'x');
    const result = freqkv('ask', '--workspace', root, '--store', path.join(file, 'store'), '--max-tokens', '4', '--json', 'Why?');
    expect(result.status, result.stderr).toBe(0);
    const json = JSON.parse(result.stdout) as AskJson;
    expect(json.persisted).toBe(false);
    expect(json.warnings.join('\n')).toMatch(/cannot be written \(ENOTDIR.*without persisting/);
    const plain = freqkv('ask', '--workspace', root, '--store', path.join(file, 'store'), '--max-tokens', '4', 'Why?');
    expect(plain.status).toBe(0);
    expect(plain.stderr).toMatch(/warning: The segment store .* cannot be written/);
    expect(freqkv('ask', '--workspace', root, '--mode', 'parallel', 'Why?').stderr).toMatch(/--mode must be one of segmented, sequential/);
    expect(freqkv('ask', '--workspace', root, '--codec', 'zip', 'Why?').status).toBe(2);
    const tiny = freqkv('ask', '--workspace', root, '--store', tempDir('seg-store'), '--capacity', '7', 'Why?');
    expect(tiny.status).toBe(2);
    expect(tiny.stderr).toMatch(/too small for the segmented mode.*--mode sequential/);
  });

  it('works on a model with a float16 cache', () => {
    const out = tempDir('seg-f16');
    const configFile = path.join(out, 'config.json');
    fs.writeFileSync(configFile, JSON.stringify({ model_type: 'llama', hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 512, max_position_embeddings: 128, rms_norm_eps: 1e-5, bos_token_id: 1, eos_token_id: 2 }));
    expect(freqkv('convert', 'random', '--config', configFile, '--tokenizer', path.join(ROOT, 'models', 'stories260K'), '--out', path.join(out, 'm'), '--kv-cache', 'float16').status).toBe(0);
    const result = freqkv('ask', '--model', path.join(out, 'm'), '--workspace', workspace(12), '--store', tempDir('seg-store'), '--max-tokens', '4', '--json', 'Who is Max?');
    expect(result.status, result.stderr).toBe(0);
    const json = JSON.parse(result.stdout) as AskJson & { cacheRows: number };
    expect(json.cacheRows).toBeLessThanOrEqual(128);
    expect(json.files.length + json.dropped.length).toBe(13);
  });
});

describe('freqkv bench workspace', () => {
  it('--quick writes JSON and Markdown with timing, bytes per token and the fidelity table', () => {
    const root = tempDir('bench-ws');
    fs.writeFileSync(path.join(root, 'a.txt'), 'Once upon a time there was a dog named Max. He liked to run in the park.\n');
    fs.writeFileSync(path.join(root, 'b.md'), '# Cats\nThe cat slept in the sun all day long.\n');
    const out = path.join(tempDir('bench-ws-out'), 'ws.json');
    const questions = path.join(tempDir('bench-ws-q'), 'questions.json');
    fs.writeFileSync(questions, JSON.stringify([{ question: 'Where did the cat sleep?', implementation: 'b.md' }, { question: 'Who is Bob?', implementation: 'gone.txt' }]));
    const result = freqkv('bench', 'workspace', '--quick', '--workspace', root, '--json', out, '--expect', 'a.txt', '--questions', questions);
    expect(result.status, result.stderr).toBe(0);
    type Expected = { path: string; rows: number | null; storedRows: number | null; atHalf: boolean; status: string } | null;
    const json = JSON.parse(fs.readFileSync(out, 'utf8')) as {
      files: number;
      timing: {
        coldIngestMs: number;
        warmTimeToFirstTokenMs: number;
        editedFileTokensPrefilled: number;
        sequentialTimeToFirstTokenMs: number;
        cold: { expected: Expected };
        editedFile: string;
        edited: { expected: Expected };
        questions: { question: string; expected: Expected }[];
      };
      disk: { codecs: { codec: string; bytesPerToken: number }[] };
      fidelity: { rows: { probe: string; method: string; budget: number | null; perplexity: number; kl: number | null }[] };
    };
    expect(json.files).toBe(2);
    expect(json.timing.coldIngestMs).toBeGreaterThan(0);
    expect(json.timing.warmTimeToFirstTokenMs).toBeGreaterThan(0);
    expect(json.timing.editedFileTokensPrefilled).toBeGreaterThan(0);
    expect(json.timing.sequentialTimeToFirstTokenMs).toBeGreaterThan(0);
    // Every ask reports its expected file; two small files fit at full resolution. A question whose file is not in the workspace is not asked.
    expect(json.timing.cold.expected).toMatchObject({ path: 'a.txt', status: 'in the cache', atHalf: true });
    expect(json.timing.cold.expected!.rows).toBe(json.timing.cold.expected!.storedRows);
    expect(json.timing.edited.expected).toMatchObject({ path: json.timing.editedFile, atHalf: true });
    expect(json.timing.questions.map((q) => [q.question, q.expected?.path, q.expected?.atHalf])).toEqual([['Where did the cat sleep?', 'b.md', true]]);
    const perToken = Object.fromEntries(json.disk.codecs.map((c) => [c.codec, c.bytesPerToken]));
    expect(Object.keys(perToken)).toEqual(['float32', 'int8', 'rvq']);
    expect(perToken.float32!).toBeGreaterThan(perToken.int8!);
    expect(perToken.int8!).toBeGreaterThan(perToken.rvq!);
    expect(perToken.rvq!).toBeGreaterThan(0);
    const methods = new Set(json.fidelity.rows.map((r) => `${r.probe}:${r.method}`));
    for (const m of ['continuation:sequential-full', 'continuation:sequential-freqkv', 'continuation:segmented-float32', 'continuation:segmented-int8', 'continuation:segmented-rvq', 'recall:segmented-rvq']) expect(methods).toContain(m);
    for (const r of json.fidelity.rows) expect(r.perplexity).toBeGreaterThan(1);
    // At full budget FreqKV never compresses: identical to the reference.
    expect(json.fidelity.rows.find((r) => r.probe === 'continuation' && r.method === 'sequential-freqkv' && r.budget === 512)!.kl).toBeLessThan(1e-6);
    const md = fs.readFileSync(out.replace(/\.json$/, '.md'), 'utf8');
    expect(md).toMatch(/warm time to first token/);
    expect(md).toMatch(/\| question 1 \| Where did the cat sleep\? \| `b\.md` \| \d+ \/ \d+ \| yes \|/);
    expect(md).toMatch(/\| segmented-float32 \| 512 \|/);
  });
});
