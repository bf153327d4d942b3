// The RVQ codebooks a segment store keeps (codecStateStore.ts) and the segment cache with the real
// codecs, on the real embedded model in temp folders: calibrated once and then loaded; a corrupt
// state file is recalibrated (same seed, same codebooks) and overwritten, not a crash; an
// unwritable store keeps them in memory and says so; other codebooks invalidate the segments;
// int8 and rvq segments answer like float32 ones. Small calibration options keep this quick.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/engine';
import { RvqCodec } from '../src/engine/segments/codecRegistry';
import { loadOrCalibrateCodecState, type CodecCalibrationSettings } from '../src/engine/segments/codecStateStore';
import { WorkspaceSegmentCache, type SegmentCacheSettings } from '../src/engine/segments/workspaceSegmentCache';
import { EMBEDDED_MODEL, tempDir } from './helpers';

let engine: Engine;
beforeAll(async () => {
  engine = await Engine.load({ modelDir: EMBEDDED_MODEL, threads: 1 });
});
afterAll(async () => {
  await engine.dispose();
});

const SMALL: Partial<CodecCalibrationSettings> = { texts: 2, textLength: 64, entries: 16, iterations: 2, maxSamples: 512 };
const files = [
  { path: 'cat.txt', text: 'Once upon a time there was a little cat named Tom. Tom liked to play with a red ball. '.repeat(2) },
  { path: 'dog.txt', text: 'The dog ran to the park. He saw a big tree and a bird.' },
];

function settings(storeDir: string | undefined, extra: Partial<SegmentCacheSettings>): SegmentCacheSettings {
  return { codec: 'float32', capacity: 512, sinks: 4, retain: 0.5, recent: 256, storeDir, workspaceId: 'ws', ...extra };
}

describe('loadOrCalibrateCodecState', () => {
  it('float32 and int8 need no state', async () => {
    for (const codec of ['float32', 'int8'] as const) {
      const loaded = await loadOrCalibrateCodecState(engine.session, engine.folder, tempDir('cs'), codec, SMALL);
      expect([loaded.state, loaded.calibrated, loaded.file]).toEqual([undefined, false, undefined]);
    }
  });

  it('calibrates once, then loads; a corrupt file is recalibrated and overwritten; other parameters get their own file', async () => {
    const store = tempDir('cs-store');
    const first = await loadOrCalibrateCodecState(engine.session, engine.folder, store, 'rvq', SMALL);
    expect([first.calibrated, first.persisted, first.warnings]).toEqual([true, true, []]);
    expect(first.state!.rvq.entries).toBe(16);
    const fingerprint = new RvqCodec(first.state!.rvq).fingerprint;
    const saved = fs.readFileSync(first.file!);

    const second = await loadOrCalibrateCodecState(engine.session, engine.folder, store, 'rvq', SMALL);
    expect([second.calibrated, second.file]).toEqual([false, first.file]);
    expect(new RvqCodec(second.state!.rvq).fingerprint).toBe(fingerprint);

    for (const damage of [(b: Buffer) => b.subarray(0, 100), (b: Buffer) => Buffer.from(b.map((x, i) => (i === 200 ? x ^ 0x40 : x))), () => Buffer.from('not codebooks')]) {
      fs.writeFileSync(first.file!, damage(saved));
      const again = await loadOrCalibrateCodecState(engine.session, engine.folder, store, 'rvq', SMALL);
      expect(again.calibrated).toBe(true);
      expect(again.warnings.join('\n')).toMatch(/were unusable .* recalibrated/);
      // Seeded: the same codebooks again, written back whole.
      expect(new RvqCodec(again.state!.rvq).fingerprint).toBe(fingerprint);
      expect(Buffer.compare(fs.readFileSync(first.file!), saved)).toBe(0);
    }
    expect(fs.readdirSync(path.dirname(first.file!))).toEqual([path.basename(first.file!)]);

    const other = await loadOrCalibrateCodecState(engine.session, engine.folder, store, 'rvq', { ...SMALL, stages: 2 });
    expect(other.calibrated).toBe(true);
    expect(other.file).not.toBe(first.file);
  });

  it('an unwritable store keeps the codebooks in memory and says so', async () => {
    const file = path.join(tempDir('cs-ro'), 'file');
    fs.writeFileSync(file, 'x');
    const loaded = await loadOrCalibrateCodecState(engine.session, engine.folder, path.join(file, 'store'), 'rvq', SMALL);
    expect([loaded.calibrated, loaded.persisted]).toEqual([true, false]);
    expect(loaded.state?.codec).toBe('rvq');
    expect(loaded.warnings.join('\n')).toMatch(/could not be saved .*ENOTDIR.* in memory/);
  });
});

describe('WorkspaceSegmentCache with the real codecs', () => {
  it('int8 and rvq segments are smaller than float32 ones, reused, and answer close to them; other codebooks invalidate rvq segments', async () => {
    const store = tempDir('cs-seg');
    const rvq = await loadOrCalibrateCodecState(engine.session, engine.folder, store, 'rvq', SMALL);
    const sizes: Record<string, number> = {};
    const logits: Record<string, Float32Array> = {};
    for (const codec of ['float32', 'int8', 'rvq'] as const) {
      const dir = tempDir(`cs-seg-${codec}`);
      const extra = { codec, codecState: codec === 'rvq' ? rvq.state : undefined };
      const first = new WorkspaceSegmentCache(engine.session, engine.tokenizer, engine.folder, settings(dir, extra));
      expect((await first.update(files)).built).toBe(2);
      const again = new WorkspaceSegmentCache(engine.session, engine.tokenizer, engine.folder, settings(dir, extra));
      expect((await again.update(files)).reused).toBe(2);
      const assembled = await again.assemble('Who is Tom?');
      expect(assembled.warnings).toEqual([]);
      const out = await engine.session.forward(assembled.questionIds, assembled.cache);
      logits[codec] = out.subarray(out.length - engine.session.vocabSize);
      const segDir = path.join(dir, 'v1', 'segments');
      sizes[codec] = fs.readdirSync(segDir).reduce((n, f) => n + fs.statSync(path.join(segDir, f)).size, 0);
    }
    expect(sizes.int8!).toBeLessThan(sizes.float32! / 2);
    expect(sizes.rvq!).toBeLessThan(sizes.int8!);
    const argmax = (x: Float32Array): number => x.indexOf(Math.max(...x));
    expect(argmax(logits.int8!)).toBe(argmax(logits.float32!));

    // Codebooks from another seed: a new settings id, so the rvq segments are built again.
    const dir = tempDir('cs-seg-recal');
    const withState = (state: typeof rvq.state): WorkspaceSegmentCache => new WorkspaceSegmentCache(engine.session, engine.tokenizer, engine.folder, settings(dir, { codec: 'rvq', codecState: state }));
    expect((await withState(rvq.state).update(files)).built).toBe(2);
    const reseeded = await loadOrCalibrateCodecState(engine.session, engine.folder, undefined, 'rvq', { ...SMALL, seed: 2 });
    const recalibrated = withState(reseeded.state);
    expect(recalibrated.settingsId).not.toBe(withState(rvq.state).settingsId);
    expect((await recalibrated.update(files)).built).toBe(2);
  });
});
