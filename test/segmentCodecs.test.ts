// The segment codecs (float32, int8, residual VQ) on the real embedded model's keys and values,
// stored as a segment is: pre-RoPE, DCT coefficients along the sequence.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectModelFolder } from '../src/engine/model/modelFolder';
import { DecoderSession } from '../src/engine/model/decoderSession';
import { ModelTokenizer } from '../src/engine/tokenizer/modelTokenizer';
import { DctPlan } from '../src/engine/kv/dctPlan';
import { createRng } from '../src/engine/random';
import { kmeans } from '../src/engine/segments/kmeans';
import { collectSegmentCoefficients, fitRvqCodebooks, sampleCalibrationTexts, truncateRvqStages, type CalibrationBlocks } from '../src/engine/segments/rvqCalibration';
import {
  CodecStateError,
  CorruptSegmentBlockError,
  createSegmentCodec,
  Int8Codec,
  inverseSequenceDct,
  parseCodecState,
  RvqCodec,
  SegmentCodecError,
  sequenceDct,
  serializeCodecState,
  UnknownCodecError,
  type CodecState,
  type RvqCodebooks,
  type SegmentBlock,
  type SegmentCodec,
  type SegmentKind,
} from '../src/engine/segments/codecs';
import { EMBEDDED_MODEL, relativeError } from './helpers';

let session: DecoderSession;
/** Coefficient blocks the codebooks are fitted on (texts the model samples, seed 1). */
let calibration: CalibrationBlocks;
/** Held-out coefficient blocks: the lighthouse story, in two segments. */
let heldOut: CalibrationBlocks;
let books: RvqCodebooks;
/** The same with 8-bit log-scale codes and sub-vectors of 4. */
let books8: RvqCodebooks;
const FIT = { subDim: 8, stages: 4, entries: 64, maxSamples: 2048, iterations: 6, seed: 5, scaleBits: 16 } as const;

beforeAll(async () => {
  session = await DecoderSession.open(inspectModelFolder(EMBEDDED_MODEL), { threads: 1 });
  const tokenizer = await ModelTokenizer.fromFolder(EMBEDDED_MODEL);
  const story = tokenizer.encode(fs.readFileSync(path.join(__dirname, '..', 'bench', 'texts', 'the-lighthouse-cat.txt'), 'utf8'), { addSpecialTokens: false });
  calibration = await collectSegmentCoefficients(session, await sampleCalibrationTexts(session, { count: 6, length: 128, seed: 1 }));
  heldOut = await collectSegmentCoefficients(session, [
    [1, ...story.slice(0, 150)],
    [1, ...story.slice(150, 250)],
  ]);
  books = await fitRvqCodebooks(calibration, FIT);
  books8 = await fitRvqCodebooks(calibration, { ...FIT, subDim: 4, stages: 3, scaleBits: 8 });
});
afterAll(async () => {
  await session.release();
});

function randomBlock(rows: number, heads: number, dim: number, seed: number): SegmentBlock {
  const random = createRng(seed);
  return { rows, numKvHeads: heads, headDim: dim, data: Float32Array.from({ length: rows * heads * dim }, () => (random() - 0.5) * 10 * (random() < 0.1 ? 100 : 1)) };
}

/** The first `r` rows of every head of a [heads, rows, dim] block. */
function firstRows(block: SegmentBlock, r: number): Float32Array {
  const { rows, numKvHeads: heads, headDim: dim } = block;
  const out = new Float32Array(heads * r * dim);
  for (let h = 0; h < heads; h++) out.set(block.data.subarray(h * rows * dim, (h * rows + r) * dim), h * r * dim);
  return out;
}

function codecs(): [string, SegmentCodec][] {
  return [
    ['float32', createSegmentCodec('float32')],
    ['int8', createSegmentCodec('int8')],
    ['int8 key groups of 16, values per head', new Int8Codec({ keyGroupRows: 16, valueGroup: 'head' })],
    ['int8 row 0 quantized', new Int8Codec({ keyRowZeroSeparate: false })],
    ['rvq', createSegmentCodec('rvq', { codec: 'rvq', rvq: books })],
    ['rvq 8-bit scales, sub-vectors of 4', new RvqCodec(books8)],
  ];
}

describe('sequenceDct', () => {
  it('inverts exactly at full length, and truncating to L′ rows equals the FreqKV matrix M (DctPlan)', () => {
    const block = heldOut.values[2]![0]!;
    const time = inverseSequenceDct(block, block.rows, block.rows);
    expect(relativeError(block.data, sequenceDct(time).data)).toBeLessThan(1e-5);
    const L = time.rows;
    const L2 = 37;
    const plan = new DctPlan(L, L2);
    const short = inverseSequenceDct(block, L, L2);
    for (let h = 0; h < block.numKvHeads; h++) {
      const want = plan.apply(time.data, block.headDim, undefined, h * L * block.headDim);
      expect(relativeError(short.data.subarray(h * L2 * block.headDim, (h + 1) * L2 * block.headDim), want)).toBeLessThan(1e-5);
    }
  });
});

describe('float32 codec', () => {
  it('round-trips every float exactly, including row prefixes', () => {
    const codec = createSegmentCodec('float32');
    for (const block of [randomBlock(33, 4, 8, 1), heldOut.keys[0]![0]!]) {
      const bytes = codec.encode(block, 'key', 3);
      expect(bytes.length).toBe(24 + block.data.length * 4);
      expect(codec.decode(bytes, 'key', 3).data).toEqual(block.data);
    }
  });
});

describe('int8 codec', () => {
  it('errs by at most half a quantization step: keys per channel (row 0 exact), values per row', () => {
    const codec = createSegmentCodec('int8');
    for (const [block, kind] of [
      [heldOut.keys[1]![0]!, 'key'],
      [heldOut.values[1]![0]!, 'value'],
      [randomBlock(50, 4, 8, 2), 'key'],
      [randomBlock(50, 4, 8, 3), 'value'],
    ] as [SegmentBlock, SegmentKind][]) {
      const { rows, numKvHeads: heads, headDim: dim, data } = block;
      const got = codec.decode(codec.encode(block, kind, 1), kind, 1).data;
      const at = (h: number, r: number, d: number): number => (h * rows + r) * dim + d;
      // The step of each group, computed here from the data.
      const check = (indices: number[]): void => {
        const xs = indices.map((i) => data[i]!);
        const step = (Math.max(...xs) - Math.min(...xs)) / 255;
        for (const i of indices) expect(Math.abs(got[i]! - data[i]!)).toBeLessThanOrEqual(step / 2 + 1e-6 * (Math.abs(data[i]!) + step));
      };
      if (kind === 'key') {
        for (let h = 0; h < heads; h++) {
          for (let d = 0; d < dim; d++) {
            expect(got[at(h, 0, d)]).toBe(data[at(h, 0, d)]);
            check(Array.from({ length: rows - 1 }, (_, r) => at(h, r + 1, d)));
          }
        }
      } else {
        for (let r = 0; r < rows; r++) check(Array.from({ length: heads * dim }, (_, c) => at(Math.floor(c / dim), r, c % dim)));
      }
    }
  });

  it('keys per channel over rows 1… beat one range that includes row 0 (the sum) on real coefficients', () => {
    const block = heldOut.keys[1]![0]!;
    const separate = new Int8Codec();
    const together = new Int8Codec({ keyRowZeroSeparate: false });
    const a = relativeError(separate.decode(separate.encode(block, 'key', 1), 'key', 1).data, block.data);
    const b = relativeError(together.decode(together.encode(block, 'key', 1), 'key', 1).data, block.data);
    expect(a).toBeLessThan(b);
  });
});

describe('rvq codec', () => {
  it('on held-out real coefficients: error falls with every stage, and 4 stages beat one', () => {
    for (const [kind, fitted] of [['key', books], ['value', books], ['key', books8], ['value', books8]] as const) {
      const errors = [1, 2, 3].concat(fitted.stages === 4 ? [4] : []).map((stages) => {
        const codec = new RvqCodec(truncateRvqStages(fitted, stages));
        let error = 0;
        let norm = 0;
        for (let layer = 0; layer < books.numLayers; layer++) {
          for (const block of (kind === 'key' ? heldOut.keys : heldOut.values)[layer]!) {
            const got = codec.decode(codec.encode(block, kind, layer), kind, layer).data;
            for (let i = 0; i < got.length; i++) {
              error += (got[i]! - block.data[i]!) ** 2;
              norm += block.data[i]! ** 2;
            }
          }
        }
        return Math.sqrt(error / norm);
      });
      for (let k = 1; k < errors.length; k++) expect(errors[k]!).toBeLessThan(errors[k - 1]!);
      expect(errors[0]!).toBeLessThan(1);
      expect(errors.at(-1)!).toBeLessThan(0.75 * errors[0]!);
    }
  });

  it('packs indices in the bits they need: 16-bit scale + 4 stages × 6 bits per head and row', () => {
    const codec = new RvqCodec(books);
    const block = heldOut.values[0]![0]!;
    expect(codec.encode(block, 'value', 0).length).toBe(24 + Math.ceil((block.rows * block.numKvHeads * (16 + 4 * 6)) / 8));
    // 8-bit scales, two groups of 4 channels × 3 stages × 6 bits.
    expect(new RvqCodec(books8).encode(block, 'value', 0).length).toBe(24 + Math.ceil((block.rows * block.numKvHeads * (8 + 2 * 3 * 6)) / 8));
  });

  it('calibration is deterministic for a seed and differs for another', async () => {
    const again = await fitRvqCodebooks(calibration, FIT);
    expect(serializeCodecState({ codec: 'rvq', rvq: again })).toEqual(serializeCodecState({ codec: 'rvq', rvq: books }));
    const other = await fitRvqCodebooks(calibration, { ...FIT, seed: 6 });
    expect(other.keys[0]).not.toEqual(books.keys[0]);
  });

  it('codebooks survive serialization; a codec from the parsed state decodes what the original encoded', () => {
    const bytes = serializeCodecState({ codec: 'rvq', rvq: books });
    const parsed = parseCodecState(bytes);
    expect(parsed.rvq.keys).toEqual(books.keys);
    expect(parsed.rvq.values).toEqual(books.values);
    expect(parseCodecState(serializeCodecState({ codec: 'rvq', rvq: books8 })).rvq).toEqual(books8);
    const block = heldOut.keys[4]![1]!;
    const encoded = new RvqCodec(books).encode(block, 'key', 4);
    expect(createSegmentCodec('rvq', parsed).decode(encoded, 'key', 4)).toEqual(new RvqCodec(books).decode(encoded, 'key', 4));
  });
});

describe('every codec', () => {
  it('decoding the first r rows equals the first r rows of a full decode', () => {
    for (const [label, codec] of codecs()) {
      for (const kind of ['key', 'value'] as const) {
        const block = (kind === 'key' ? heldOut.keys : heldOut.values)[2]![0]!;
        const bytes = codec.encode(block, kind, 2);
        const full = codec.decode(bytes, kind, 2);
        expect(full.rows, label).toBe(block.rows);
        for (const r of [0, 1, 2, 17, 40, block.rows]) {
          const part = codec.decode(bytes, kind, 2, r);
          expect(part.rows).toBe(r);
          expect(part.data, `${label} ${kind} ${r} rows`).toEqual(firstRows(full, r));
        }
        expect(() => codec.decode(bytes, kind, 2, block.rows + 1)).toThrow(RangeError);
      }
    }
  });

  it('corrupt bytes give a named error, never a crash or a wrong shape', async () => {
    const random = createRng(11);
    for (const [label, codec] of codecs()) {
      const block = heldOut.values[3]![1]!;
      const bytes = codec.encode(block, 'value', 3);
      const expectCorrupt = (b: Uint8Array, kind: SegmentKind = 'value', layer = 3): void => {
        expect(() => codec.decode(b, kind, layer), label).toThrow(CorruptSegmentBlockError);
      };
      expectCorrupt(bytes.subarray(0, bytes.length - 1));
      expectCorrupt(bytes.subarray(0, 10));
      expectCorrupt(new Uint8Array(0));
      expectCorrupt(Uint8Array.from([...bytes, 0]));
      expectCorrupt(bytes, 'key');
      expectCorrupt(bytes, 'value', 2);
      const badMagic = bytes.slice();
      badMagic[0]! ^= 1;
      expectCorrupt(badMagic);
      const badRows = bytes.slice();
      badRows[16]! += 1;
      expectCorrupt(badRows);
      const badCodec = bytes.slice();
      badCodec[4] = badCodec[4] === 1 ? 2 : 1;
      expectCorrupt(badCodec);
      // Random garbage and random bit flips: either a block of the right shape or a SegmentCodecError.
      for (let trial = 0; trial < 60; trial++) {
        const mutated = trial < 20 ? Uint8Array.from({ length: Math.floor(random() * 200) }, () => Math.floor(random() * 256)) : bytes.slice();
        if (trial >= 20) for (let f = 0; f < 1 + (trial % 4); f++) mutated[Math.floor(random() * mutated.length)]! ^= 1 << Math.floor(random() * 8);
        try {
          const got = codec.decode(mutated, 'value', 3);
          expect(got.data.length).toBe(got.rows * got.numKvHeads * got.headDim);
        } catch (error) {
          expect(error, label).toBeInstanceOf(SegmentCodecError);
        }
      }
    }
    const other = await fitRvqCodebooks(calibration, { ...FIT, seed: 99, stages: 1 });
    const encoded = new RvqCodec(books).encode(heldOut.keys[0]![0]!, 'key', 0);
    expect(() => new RvqCodec(other).decode(encoded, 'key', 0)).toThrow(/other codebooks/);
  });
});

describe('createSegmentCodec and codec state', () => {
  it('names unknown codecs, missing and corrupt codebooks', () => {
    expect(() => createSegmentCodec('zstd')).toThrow(UnknownCodecError);
    expect(() => createSegmentCodec('rvq')).toThrow(CodecStateError);
    const bytes = serializeCodecState({ codec: 'rvq', rvq: books });
    for (const at of [0, 7, 30, bytes.length - 1]) {
      const flipped = bytes.slice();
      flipped[at]! ^= 0x10;
      expect(() => parseCodecState(flipped)).toThrow(CodecStateError);
    }
    expect(() => parseCodecState(bytes.subarray(0, bytes.length - 8))).toThrow(CodecStateError);
    expect(() => parseCodecState(new Uint8Array(3))).toThrow(CodecStateError);
    const wrongModel: CodecState = { codec: 'rvq', rvq: { ...books, headDim: 16, subDim: 8, keys: books.keys, values: books.values } };
    expect(() => createSegmentCodec('rvq', wrongModel).encode(heldOut.keys[0]![0]!, 'key', 0)).toThrow(CodecStateError);
    expect(() => new RvqCodec(books).encode(heldOut.keys[0]![0]!, 'key', books.numLayers)).toThrow(CodecStateError);
  });
});

describe('kmeans', () => {
  it('finds well-separated clusters, repeats for a seed, and keeps every centre finite when points are fewer than clusters', () => {
    const random = createRng(3);
    const centres = [
      [0, 0],
      [10, 0],
      [0, 10],
    ];
    const points = new Float32Array(300 * 2);
    for (let i = 0; i < 300; i++) {
      const c = centres[i % 3]!;
      points[2 * i] = c[0]! + random() - 0.5;
      points[2 * i + 1] = c[1]! + random() - 0.5;
    }
    const a = kmeans(points, 2, { clusters: 3, seed: 1 });
    expect(a.meanSquaredError).toBeLessThan(0.2);
    expect(kmeans(points, 2, { clusters: 3, seed: 1 })).toEqual(a);
    const few = kmeans(Float32Array.from([1, 2, 3, 4, 1, 2]), 2, { clusters: 8, seed: 2 });
    expect(few.centroids.every(Number.isFinite)).toBe(true);
    expect(few.meanSquaredError).toBe(0);
    const randomInit = kmeans(points, 2, { clusters: 3, seed: 4, init: 'random', iterations: 20 });
    expect(randomInit.centroids.every(Number.isFinite)).toBe(true);
  });
});
