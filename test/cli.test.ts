// The `freqkv` command as a user runs it (the bundled dist/cli.js through bin/freqkv.js).

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { STORIES_DIR, tempDir } from './helpers';

const ROOT = path.resolve(__dirname, '..');

function freqkv(...args: string[]): { stdout: string; stderr: string; status: number | null } {
  const result = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'freqkv.js'), ...args], { encoding: 'utf8', cwd: ROOT, timeout: 120_000 });
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
    expect(d.stderr).toMatch(/fidelity or speed/);
  });
});

describe('freqkv ask and summarize', () => {
  const write = (root: string, rel: string, content: string | Uint8Array): void => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), content);
  };

  it('ask --json on a workspace longer than the context: files, skips and compressions', () => {
    const root = tempDir('ask');
    write(root, '.gitignore', 'ignored.txt\n');
    write(root, 'ignored.txt', 'x\n');
    write(root, 'src/story.ts', `// A story.\n${'// Once upon a time there was a dog.\n'.repeat(80)}export const story = 1;\n`);
    write(root, 'README.md', '# Dogs\nA project about a dog and a cat.\n');
    write(root, 'logo.png', new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0]));
    const { stdout, stderr, status } = freqkv('ask', '--workspace', root, '--max-tokens', '16', '--seed', '1', '--json', 'What', 'is', 'this?');
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
