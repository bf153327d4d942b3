// How many DCT coefficients a stored segment keeps (segmentBuilder.ts, storedCoefficientRows), on
// the real embedded model: a long segment keeps the first K of its L coefficients, exactly those
// of the full transform; the segment file records K and L (format version 2) and refuses a
// header without them.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/engine';
import { rotarySpecOf } from '../src/engine/kv/rotary';
import { buildSegment, STORED_COEFFICIENTS, storedCoefficientRows, type SegmentPrefillSettings } from '../src/engine/segments/segmentBuilder';
import { decodeSegmentFile, encodeSegmentFile, SEGMENT_FORMAT_VERSION, SegmentCorruptError, type SegmentHeader } from '../src/engine/segments/segmentFile';
import { inverseDct } from '../src/engine/segments/spectrum';
import { EMBEDDED_MODEL, maxAbsDiff } from './helpers';

let engine: Engine;
beforeAll(async () => {
  engine = await Engine.load({ modelDir: EMBEDDED_MODEL, threads: 1 });
});
afterAll(async () => {
  await engine.dispose();
});

describe('stored coefficients', () => {
  it('keeps every coefficient of a short segment and a share of a long one', () => {
    expect(storedCoefficientRows(1)).toBe(1);
    expect(storedCoefficientRows(STORED_COEFFICIENTS.minRows)).toBe(STORED_COEFFICIENTS.minRows);
    expect(storedCoefficientRows(6000, { fraction: 0.5, minRows: 1024 })).toBe(3000);
    expect(storedCoefficientRows(1500, { fraction: 0.5, minRows: 1024 })).toBe(1024);
    expect(storedCoefficientRows(7, { fraction: 0.25, minRows: 2 })).toBe(2);
    expect(() => storedCoefficientRows(10, { fraction: 0, minRows: 4 })).toThrow(RangeError);
    expect(() => storedCoefficientRows(10, { fraction: 0.5, minRows: 0 })).toThrow(RangeError);
  });

  it('a long segment keeps exactly the first K coefficients of all L, and rebuilds from them', async () => {
    const ids = engine.tokenizer.encode('Once upon a time there was a little cat named Tom. Tom liked to play with a red ball in the garden. '.repeat(6), { addSpecialTokens: false });
    const rotary = rotarySpecOf(engine.folder.config);
    const base: SegmentPrefillSettings = { capacity: 512, sinks: 4, retain: 0.5, recent: 256, chunk: 128 };
    const prefix = [engine.folder.bosTokenId ?? 1];
    const full = await buildSegment(engine.session, rotary, prefix, ids, { ...base, stored: { fraction: 1, minRows: 1 } });
    // The embedded model's cache (512 rows) never holds a segment longer than the default minimum.
    const byDefault = await buildSegment(engine.session, rotary, prefix, ids, base);
    expect(byDefault.rows).toBe(byDefault.sourceRows);
    const L = full.sourceRows;
    expect(L).toBe(ids.length);
    const part = await buildSegment(engine.session, rotary, prefix, ids, { ...base, stored: { fraction: 0.5, minRows: 16 } });
    const K = Math.ceil(L / 2);
    expect([part.rows, part.sourceRows]).toEqual([K, L]);
    const { numKvHeads: heads, headDim: dim } = engine.session.createCache(1).shape;
    for (let layer = 0; layer < full.keys.length; layer++) {
      for (const kind of ['keys', 'values'] as const) {
        const all = full[kind][layer]!;
        const kept = part[kind][layer]!;
        expect(kept.length).toBe(heads * K * dim);
        for (let h = 0; h < heads; h++) expect(Array.from(kept.subarray(h * K * dim, (h + 1) * K * dim))).toEqual(Array.from(all.subarray(h * L * dim, (h * L + K) * dim)));
        // Rebuilt at K rows, the kept coefficients give what all L give at K rows.
        expect(maxAbsDiff(inverseDct(kept, heads, K, dim, L), inverseDct(all, heads, K, dim, L))).toBe(0);
      }
    }
  });

  it('the segment file records K and L, and refuses a header without them or of version 1', () => {
    const header: SegmentHeader = { version: SEGMENT_FORMAT_VERSION, model: 'm', settings: 's', path: 'a.ts', contentHash: 'h', tokens: 90, rows: 45, sourceRows: 90, numLayers: 1, numKvHeads: 1, headDim: 2, codec: 'float32', blockBytes: [] };
    const blocks = [new Uint8Array([1, 2]), new Uint8Array([3])];
    expect(decodeSegmentFile(encodeSegmentFile(header, blocks)).header).toMatchObject({ rows: 45, sourceRows: 90 });
    expect(() => decodeSegmentFile(encodeSegmentFile({ ...header, sourceRows: 44 }, blocks))).toThrow(/source rows/);
    const { sourceRows: _, ...withoutSource } = header;
    expect(() => decodeSegmentFile(encodeSegmentFile(withoutSource as SegmentHeader, blocks))).toThrow(SegmentCorruptError);
    expect(() => decodeSegmentFile(encodeSegmentFile({ ...header, version: 1 }, blocks))).toThrow(/format version 1, not 2/);
  });
});
