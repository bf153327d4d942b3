// `freqkv bench speed --quick` through the CLI on the embedded model: every configuration runs
// in its own child process (ours with the full and the FreqKV cache, and transformers.js), and
// the JSON and Markdown it writes have the documented shape with positive figures.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EMBEDDED_MODEL, tempDir } from './helpers';
import { int4VariantArgs } from '../src/cli/benchSpeed';

const ROOT = path.resolve(__dirname, '..');

describe('freqkv bench speed', () => {
  it('--quick writes rows for both engines and caches, ratios, and limits', () => {
    const dir = tempDir('speed');
    const json = path.join(dir, 'speed.json');
    const markdown = path.join(dir, 'speed.md');
    const run = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'freqkv.js'), 'bench', 'speed', '--quick', '--model', EMBEDDED_MODEL, '--contexts', '256,700', '--json', json, '--markdown', markdown], {
      encoding: 'utf8',
      cwd: ROOT,
      timeout: 120_000,
    });
    expect(run.status, run.stderr).toBe(0);
    const result = JSON.parse(fs.readFileSync(json, 'utf8')) as {
      machine: Record<string, unknown>;
      rows: Record<string, unknown>[];
      ratios: Record<string, unknown>[];
      failures: unknown[];
    };
    // The run measured this machine's limits (machineLimits.c): a real read bandwidth and int8 rate.
    expect(result.machine.bandwidthBytesPerSecond as number).toBeGreaterThan(1e9);
    expect(result.machine.computeOpsPerSecond as number).toBeGreaterThan(1e10);
    expect(result.machine.computeLabel).toMatch(/int8 .*measured/);
    expect(result.failures).toEqual([]);
    // 2 lengths × (ours full, ours freqkv, transformers.js full).
    expect(result.rows).toHaveLength(6);
    const keys = ['prefillTokensPerSecond', 'decodeTokensPerSecond', 'timeToFirstTokenMs', 'peakRssBytes', 'decodeBandwidthFraction', 'prefillComputeFraction'];
    for (const row of result.rows) {
      expect(row.model).toBe('stories260K');
      expect(['freqkv', 'transformers.js']).toContain(row.engine);
      for (const key of keys) {
        expect(typeof row[key], key).toBe('number');
        expect(row[key] as number, key).toBeGreaterThan(0);
      }
      expect(row.decodeBandwidthFraction as number).toBeLessThan(1);
      expect(row.prefillComputeFraction as number).toBeLessThan(1);
    }
    const at = (engine: string, cache: string, L: number): Record<string, unknown> => result.rows.find((r) => r.engine === engine && r.cache === cache && r.contextTokens === L)!;
    // Past the trained context (512) the full cache grows beyond it; FreqKV stays within N = 512 rows and compresses.
    expect(at('freqkv', 'full', 700).beyondTrainedContext).toBe(true);
    expect(at('freqkv', 'freqkv', 700).cacheRowsAtEnd as number).toBeLessThanOrEqual(512);
    expect(at('freqkv', 'freqkv', 700).compressions as number).toBeGreaterThan(0);
    expect(at('transformers.js', 'full', 700).cacheRowsAtEnd).toBe(700 + 64);
    // One ratio per length and cache of ours.
    expect(result.ratios).toHaveLength(4);
    for (const ratio of result.ratios) expect(ratio.decodeRatio as number).toBeGreaterThan(0);
    const md = fs.readFileSync(markdown, 'utf8');
    expect(md).toMatch(/\| engine \| cache \| L \| round \| prefill tok\/s \| % lim \| decode tok\/s \| % lim \|/);
    expect(md).toMatch(/Ours ÷ transformers\.js/);
  }, 150_000);
});

describe('bench speed --int4-variants', () => {
  it('names the convert options that differ from the defaults, and refuses other names', () => {
    expect(int4VariantArgs('int4')).toEqual([]);
    expect(int4VariantArgs('int4-c4')).toEqual(['--tied-classifier', 'int4']);
    expect(int4VariantArgs('int4-c4-b128')).toEqual(['--tied-classifier', 'int4', '--quant-block-size', '128']);
    expect(() => int4VariantArgs('int8')).toThrow(/not int4, int4-c4, int4-bN or int4-c4-bN/);
    expect(() => int4VariantArgs('int4-x')).toThrow(/not int4/);
  });
});
