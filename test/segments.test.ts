// The pieces of the segmented workspace cache that need no model: the DCT spectrum (against
// FreqKV's own transform), the codec registry, the segment file format and its checks,
// the allocation of rows among files, BM25 relevance, and the ask prompt cut into pieces.

import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DctPlan } from '../src/engine/kv/dctPlan';
import { createRng } from '../src/engine/random';
import { allocateRows } from '../src/engine/segments/allocate';
import { CODEC_NAMES, CodecStateError, createSegmentCodec, SegmentCodecError, UnknownCodecError } from '../src/engine/segments/codecRegistry';
import { RelevanceIndex, tokenizeForSearch } from '../src/engine/segments/relevance';
import { decodeSegmentFile, encodeSegmentFile, SEGMENT_FORMAT_VERSION, SegmentCorruptError, type SegmentHeader } from '../src/engine/segments/segmentFile';
import { forwardDct, inverseDct } from '../src/engine/segments/spectrum';
import { ModelTokenizer } from '../src/engine/tokenizer/modelTokenizer';
import { buildAskPrompt, MAX_PRIOR_ANSWER_CHARS, MAX_PRIOR_TURNS, recentTurns, segmentText, splitAskPrompt } from '../src/engine/workspace/prompt';
import { maxAbsDiff, SHARED } from './helpers';

function randomBlock(heads: number, rows: number, dim: number, seed: number): Float32Array {
  const random = createRng(seed);
  return Float32Array.from({ length: heads * rows * dim }, () => random() * 2 - 1);
}

describe('segment spectrum', () => {
  it('all L coefficients give the rows back; the first L\' give exactly what FreqKV compresses them to', () => {
    const [heads, L, dim] = [3, 37, 8];
    const x = randomBlock(heads, L, dim, 1);
    const X = forwardDct(x, heads, L, dim);
    expect(maxAbsDiff(inverseDct(X, heads, L, dim, L), x)).toBeLessThan(1e-5);
    for (const L2 of [1, 5, 18, 36]) {
      const truncated = new Float32Array(heads * L2 * dim);
      for (let h = 0; h < heads; h++) truncated.set(X.subarray(h * L * dim, (h * L + L2) * dim), h * L2 * dim);
      const rebuilt = inverseDct(truncated, heads, L2, dim, L);
      const plan = new DctPlan(L, L2);
      const expected = new Float32Array(heads * L2 * dim);
      for (let h = 0; h < heads; h++) plan.apply(x, dim, expected, h * L * dim, h * L2 * dim);
      expect(maxAbsDiff(rebuilt, expected), `L'=${L2}`).toBeLessThan(1e-5);
    }
  });
});

describe('segment codecs (the registry the store uses)', () => {
  it('float32 round-trips and decodes the first rows only', () => {
    const codec = createSegmentCodec('float32');
    const data = randomBlock(2, 10, 4, 2);
    const bytes = codec.encode({ rows: 10, numKvHeads: 2, headDim: 4, data }, 'key', 0);
    expect(codec.decode(bytes, 'key', 0).data).toEqual(data);
    const first = codec.decode(bytes, 'key', 0, 3);
    expect(first.rows).toBe(3);
    expect(Array.from(first.data.subarray(0, 12))).toEqual(Array.from(data.subarray(0, 12)));
    expect(Array.from(first.data.subarray(12))).toEqual(Array.from(data.subarray(40, 52)));
  });

  it('every codec name is available; unknown names and rvq without codebooks are named errors', () => {
    expect(CODEC_NAMES).toEqual(['float32', 'int8', 'rvq']);
    expect(createSegmentCodec('float32').name).toBe('float32');
    expect(createSegmentCodec('int8').name).toBe('int8');
    expect(() => createSegmentCodec('zip')).toThrow(UnknownCodecError);
    expect(() => createSegmentCodec('rvq')).toThrow(CodecStateError);
    expect(() => createSegmentCodec('rvq')).toThrow(SegmentCodecError);
  });
});

describe('segment files', () => {
  const header: SegmentHeader = { version: SEGMENT_FORMAT_VERSION, model: 'm', settings: 's', path: 'a.ts', contentHash: 'h', tokens: 9, rows: 9, sourceRows: 9, numLayers: 1, numKvHeads: 1, headDim: 2, codec: 'float32', blockBytes: [] };
  const blocks = [Uint8Array.from([1, 2, 3]), Uint8Array.from([4, 5])];

  it('round-trip', () => {
    const decoded = decodeSegmentFile(encodeSegmentFile(header, blocks));
    expect(decoded.header).toEqual({ ...header, blockBytes: [3, 2] });
    expect(decoded.blocks.map((b) => Array.from(b))).toEqual([[1, 2, 3], [4, 5]]);
  });

  it('a truncated, bit-flipped or foreign file is refused', () => {
    const bytes = encodeSegmentFile(header, blocks);
    for (const cut of [0, 5, 20, bytes.length - 1]) expect(() => decodeSegmentFile(bytes.subarray(0, cut))).toThrow(SegmentCorruptError);
    for (const at of [0, 10, 30, bytes.length - 40, bytes.length - 1]) {
      const flipped = bytes.slice();
      flipped[at] = flipped[at]! ^ 0x10;
      expect(() => decodeSegmentFile(flipped), `byte ${at}`).toThrow(SegmentCorruptError);
    }
    expect(() => decodeSegmentFile(Buffer.from('{"not":"a segment"}'.repeat(4)))).toThrow(SegmentCorruptError);
  });
});

describe('allocateRows', () => {
  it('gives everything when it fits', () => {
    expect(allocateRows([{ storedRows: 10, score: 0 }, { storedRows: 20, score: 3 }], 30)).toEqual({ rows: [10, 20], dropped: [] });
  });

  it('full resolution for the most relevant, fewer rows for the rest, a minimum for every file', () => {
    const files = [
      { storedRows: 100, score: 0 },
      { storedRows: 100, score: 9 },
      { storedRows: 100, score: 2 },
      { storedRows: 3, score: 0 },
    ];
    const { rows, dropped } = allocateRows(files, 200, { minRows: 4 });
    expect(dropped).toEqual([]);
    expect(rows[1]).toBe(100);
    expect(rows[3]).toBe(3);
    expect(rows[2]!).toBeGreaterThan(rows[0]!);
    expect(rows[0]!).toBeGreaterThanOrEqual(4);
    expect(rows.reduce((a, b) => a + b, 0)).toBe(200);
  });

  it('drops the least relevant, and says so, only when the minimums do not fit', () => {
    const files = Array.from({ length: 10 }, (_, i) => ({ storedRows: 50, score: i }));
    const { rows, dropped } = allocateRows(files, 20, { minRows: 4 });
    // The most relevant takes half the budget; the next two their minimum; the rest are dropped;
    // the 2 rows left go by relevance.
    expect(dropped.sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(rows.slice(7)).toEqual([4, 5, 11]);
  });

  it('a file that leads by a clear margin gets at least half its rows; a narrow lead may get less', () => {
    // A long implementation, its long test, and many small files, in a budget short of the two.
    const files = (second: number): { storedRows: number; score: number }[] => [
      { storedRows: 486, score: 10 },
      { storedRows: 482, score: second },
      ...Array.from({ length: 40 }, () => ({ storedRows: 60, score: 2 })),
    ];
    const clear = allocateRows(files(3), 440);
    expect(clear.rows[0]!).toBeGreaterThanOrEqual(243);
    expect(clear.dropped).toEqual([]);
    expect(clear.rows.slice(1).every((r) => r >= 4)).toBe(true);
    expect(clear.rows.reduce((a, b) => a + b, 0)).toBe(440);
    // Half the budget first, then a share of what is left: less than half its rows.
    expect(allocateRows(files(9), 440).rows[0]!).toBeLessThan(243);
    expect(allocateRows(files(3), 440, { clearMargin: 4 }).rows[0]!).toBeLessThan(243);
  });

  it('half a clear leader\'s rows never costs another file its minimum', () => {
    const files = [{ storedRows: 486, score: 10 }, ...Array.from({ length: 20 }, () => ({ storedRows: 50, score: 0.1 }))];
    const { rows, dropped } = allocateRows(files, 200, { minRows: 4 });
    expect(dropped).toEqual([]);
    // Not 243: the other 20 files keep their 4 rows each.
    expect(rows[0]).toBe(120);
    expect(rows.slice(1).every((r) => r === 4)).toBe(true);
  });

  it('never exceeds the budget nor a file\'s rows (random cases)', () => {
    const random = createRng(5);
    for (let trial = 0; trial < 200; trial++) {
      const files = Array.from({ length: 1 + Math.floor(random() * 20) }, () => ({ storedRows: 1 + Math.floor(random() * 300), score: random() < 0.3 ? 0 : random() * 10 }));
      const budget = Math.floor(random() * 2000);
      const { rows, dropped } = allocateRows(files, budget);
      expect(rows.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(budget);
      rows.forEach((r, i) => {
        expect(r).toBeLessThanOrEqual(files[i]!.storedRows);
        if (!dropped.includes(i)) expect(r).toBeGreaterThanOrEqual(Math.min(4, files[i]!.storedRows));
        else expect(r).toBe(0);
      });
      const stored = files.reduce((n, f) => n + f.storedRows, 0);
      // Nothing left unused while some file could take more.
      if (dropped.length === 0) expect(rows.reduce((a, b) => a + b, 0)).toBe(Math.min(budget, stored));
    }
  });
});

describe('relevance (BM25 over path and content)', () => {
  it('splits identifiers and ranks the file that matches, path included', () => {
    expect(tokenizeForSearch('runGeneration snake_case HTTPServer')).toEqual(expect.arrayContaining(['rungeneration', 'run', 'generation', 'snake', 'case', 'http', 'server']));
    const index = new RelevanceIndex([
      { path: 'src/kv/cache.ts', text: 'export class KvCache { rows }' },
      { path: 'src/generate/generator.ts', text: 'export async function runGeneration() {}' },
      { path: 'README.md', text: 'A project.' },
    ]);
    const scores = index.score('How does run generation work?');
    expect(scores[1]!).toBeGreaterThan(0);
    expect(scores[1]!).toBeGreaterThan(scores[0]!);
    expect(index.score('kv cache')[0]!).toBeGreaterThan(0);
    expect(index.score('?!')).toEqual([0, 0, 0]);
  });
});

describe('splitAskPrompt', () => {
  const files = [
    { path: 'a.ts', text: 'const a = 1;' },
    { path: 'b/c.md', text: '# C\n' },
  ];
  it('prefix + segments + suffix is exactly the sequential ask prompt, plain and chat-templated', async () => {
    const plain = { hasChatTemplate: false, applyChatTemplate: (): string => '' };
    const chat = await ModelTokenizer.fromFolder(path.join(SHARED, 'formats/phi3-llama-style-tokenizer'));
    for (const tokenizer of [plain, chat]) {
      const parts = splitAskPrompt(tokenizer, 'Why?');
      expect(parts.prefix + files.map(segmentText).join('') + parts.suffix).toBe(buildAskPrompt(tokenizer, files, 'Why?').text);
      expect(parts.chat).toBe(tokenizer.hasChatTemplate);
    }
    expect(splitAskPrompt(chat, 'Why?').prefix).toMatch(/code assistant/);
  });

  it('with earlier turns: the prefix is unchanged, the turns go after the files, and the split still adds up', async () => {
    const plain = { hasChatTemplate: false, applyChatTemplate: (): string => '' };
    const chat = await ModelTokenizer.fromFolder(path.join(SHARED, 'formats/phi3-llama-style-tokenizer'));
    const history = [
      { question: 'What is a?', answer: 'A constant.' },
      { question: 'And c?', answer: 'A heading.' },
    ];
    for (const tokenizer of [plain, chat]) {
      const parts = splitAskPrompt(tokenizer, 'Why?', history);
      expect(parts.prefix).toBe(splitAskPrompt(tokenizer, 'Why?').prefix);
      const text = buildAskPrompt(tokenizer, files, 'Why?', history).text;
      expect(parts.prefix + files.map(segmentText).join('') + parts.suffix).toBe(text);
      const at = (s: string): number => text.indexOf(s);
      expect(at('### File: b/c.md')).toBeLessThan(at('What is a?'));
      expect(at('What is a?')).toBeLessThan(at('A constant.'));
      expect(at('A heading.')).toBeLessThan(at('Why?'));
    }
    expect(buildAskPrompt(plain, files, 'Why?', history).text.endsWith('Question: What is a?\nAnswer: A constant.\nQuestion: And c?\nAnswer: A heading.\nQuestion: Why?\nAnswer:')).toBe(true);
  });

  it('repeats only the last turns, and cuts long answers', () => {
    const history = Array.from({ length: MAX_PRIOR_TURNS + 3 }, (_, i) => ({ question: `q${i}`, answer: i === MAX_PRIOR_TURNS + 2 ? 'x'.repeat(MAX_PRIOR_ANSWER_CHARS + 10) : `a${i}` }));
    const turns = recentTurns(history);
    expect(turns.map((t) => t.question)).toEqual(history.slice(-MAX_PRIOR_TURNS).map((t) => t.question));
    expect(turns.at(-1)!.answer).toBe(`${'x'.repeat(MAX_PRIOR_ANSWER_CHARS)}…`);
  });
});

describe('allocateRows with many files', () => {
  it('keeps the most relevant file whole even when the least relevant must be dropped', () => {
    const files = Array.from({ length: 200 }, (_, i) => ({ storedRows: 60, score: i === 123 ? 5 : 0.01 }));
    const { rows, dropped } = allocateRows(files, 400, { minRows: 4 });
    expect(rows[123]).toBe(60);
    expect(dropped.length).toBe(200 - 1 - 85);
    expect(rows.reduce((a, b) => a + b, 0)).toBe(400);
  });

  it('gives the most relevant file half the budget when it is longer than that', () => {
    const files = Array.from({ length: 200 }, (_, i) => ({ storedRows: 500, score: i === 7 ? 5 : 0.01 }));
    const { rows, dropped } = allocateRows(files, 400, { minRows: 4 });
    expect(rows[7]).toBe(200);
    expect(dropped.length).toBe(200 - 1 - 50);
  });
});
