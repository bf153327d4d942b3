// Teacher-forced scoring and the fidelity metrics, against numbers computed independently here.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectModelFolder } from '../src/engine/model/modelFolder';
import { DecoderSession } from '../src/engine/model/decoderSession';
import { logProbOf } from '../src/engine/eval/scoreTokens';
import { argmax, klDivergence, perplexityOf, runFidelity } from '../src/engine/eval/fidelity';
import { equalBytesMarkdown, fidelityMarkdown, fidelitySvg, streamingAt } from '../src/engine/eval/fidelityReport';
import { EMBEDDED_MODEL, randomStoryTokens } from './helpers';

let session: DecoderSession;
const TOKENS = randomStoryTokens(300);

beforeAll(async () => {
  session = await DecoderSession.open(inspectModelFolder(EMBEDDED_MODEL), { threads: 1 });
});
afterAll(async () => {
  await session.release();
});

describe('metrics', () => {
  it('KL divergence, log-prob, argmax and perplexity match their definitions', () => {
    const p = [1, 2, 0.5, -1];
    const q = [0.5, 2.5, 0, 0];
    const sp = p.map(Math.exp);
    const sq = q.map(Math.exp);
    const zp = sp.reduce((a, b) => a + b);
    const zq = sq.reduce((a, b) => a + b);
    let want = 0;
    for (let i = 0; i < 4; i++) want += (sp[i]! / zp) * Math.log(sp[i]! / zp / (sq[i]! / zq));
    expect(klDivergence(p, q)).toBeCloseTo(want, 10);
    expect(klDivergence(p, p)).toBe(0);
    expect(logProbOf(q, 1)).toBeCloseTo(Math.log(sq[1]! / zq), 10);
    expect(argmax(q)).toBe(1);
    expect(perplexityOf([Math.log(0.5), Math.log(0.25)])).toBeCloseTo(Math.sqrt(8), 10);
    expect(perplexityOf([1, 2], 2)).toBeNull();
  });

  it('runFidelity: full has KL 0 and top-1 1; a budget at least the text length changes nothing; the report renders', async () => {
    const text = { name: 't', tokens: TOKENS.slice(0, 120) };
    const rows = await runFidelity(session, {
      texts: [text],
      settings: [{ method: 'full' }, { method: 'freqkv', capacity: 128, retain: 0.5 }, { method: 'streaming', capacity: 32 }],
      recall: { bos: 1, passage: TOKENS.slice(1, 17), filler: TOKENS.slice(100, 116), gap: TOKENS.slice(20, 60) },
    });
    expect(rows).toHaveLength(6);
    const [full, freqkv, streaming] = rows;
    expect(full!.kl).toBe(0);
    expect(full!.top1).toBe(1);
    expect(freqkv!.kl).toBeLessThan(1e-6);
    // Equal up to float rounding: the two caches may hold their rows in buffers of other lengths,
    // whose unused (masked) rows change how onnxruntime blocks its sums.
    expect(freqkv!.perplexity! / full!.perplexity!).toBeCloseTo(1, 6);
    expect(streaming!.kl).toBeGreaterThan(0);
    expect(streaming!.peakCacheBytes).toBe(32 * 5 * 2 * 4 * 8 * 4);
    // Average rows of the full cache over 119 predictions: (1 + … + 119) / 119 = 60.
    expect(full!.avgCacheBytes).toBeCloseTo(60 * 5 * 2 * 4 * 8 * 4, 6);
    expect(full!.bytesPerToken).toBeCloseTo(full!.avgCacheBytes / 120, 6);
    expect(rows[3]!.text).toBe('recall-probe');
    expect(rows[3]!.recallLoss).toBeGreaterThan(0);
    expect(rows[3]!.recallLossWithoutFirst).toBeGreaterThan(0);
    expect(fidelityMarkdown(rows, 512)).toContain('| streaming | 32 |');
    expect(fidelitySvg(rows, 't')).toMatch(/^<svg[\s\S]*<\/svg>\n$/);
    expect(equalBytesMarkdown(rows)).toContain('FreqKV has the lower perplexity in');
  });

  it('streamingAt interpolates in log(bytes) between streaming budgets', () => {
    const row = (bytesPerToken: number, perplexity: number) => ({ method: 'streaming', text: 'x', bytesPerToken, perplexity }) as never;
    const rows = [row(10, 5), row(40, 3)];
    expect(streamingAt(rows, 'x', 20, (r) => r.perplexity)).toBeCloseTo(4, 10);
    expect(streamingAt(rows, 'x', 10, (r) => r.perplexity)).toBe(5);
    expect(streamingAt(rows, 'x', 50, (r) => r.perplexity)).toBeNull();
  });
});
