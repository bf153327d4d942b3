// The per-file loops of the segment store at a real model's shape (default Qwen2.5-0.5B: 24
// layers × 2 KV heads × 64 dims, keys and values: 48 blocks of [2, L, 64], 6,144 channels per
// token), for files of L rows: the forward DCT a segment is stored in and the full-resolution
// rebuild, FFT-based (src/engine/kv/fastDct.ts) against the O(L²) loops it replaced
// (test/referenceDct.ts) in the same run; the RoPE un-rotation and re-rotation of the keys;
// each codec's encode and decode; the segment file's checksummed encoding and reading; and the
// bytes per token of the stored file with all L coefficients and with the K the store keeps
// (storedCoefficientRows).
// The O(L²) loops and the rvq encoder take seconds per block at L = 6000, so they are timed on
// the first --old-blocks / --rvq-blocks blocks and scaled to the file's 48 (the blocks have
// one shape, so each costs the same); every other loop runs over all blocks.
// Data are random rows; the rvq codebooks are random of the default shape (timing depends on
// the shape, not on calibration). Usage:
//   node scripts/run-ts.js scripts/segment-dct-bench.ts --out DIR [--config bench/configs/qwen2.5-0.5b.json]
//       [--lengths 512,2048,6000] [--old-blocks 48,8,2] [--rvq-blocks 4] [--repeats 2]

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { rotarySpecOf, rotateRows } from '../src/engine/kv/rotary';
import { parseHfConfig } from '../src/engine/model/modelConfig';
import { createRng } from '../src/engine/random';
import type { SegmentBlock, SegmentCodec, SegmentKind } from '../src/engine/segments/codec';
import { Float32Codec, Int8Codec, RVQ_DEFAULTS, RvqCodec, type RvqCodebooks } from '../src/engine/segments/codecs';
import { STORED_COEFFICIENTS, storedCoefficientRows } from '../src/engine/segments/segmentBuilder';
import { decodeSegmentFile, encodeSegmentFile, SEGMENT_FORMAT_VERSION } from '../src/engine/segments/segmentFile';
import { forwardDct, inverseDct } from '../src/engine/segments/spectrum';
import { referenceInverseSequenceDct, referenceSequenceDct } from '../test/referenceDct';

interface Timed {
  ms: number;
  /** Blocks the loop ran over (ms is scaled to the file's blocks when fewer). */
  measuredBlocks: number;
}

function best(repeats: number, run: () => void): number {
  let ms = Infinity;
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    run();
    ms = Math.min(ms, performance.now() - t0);
  }
  return ms;
}

function maxRelativeDifference(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    norm = Math.max(norm, Math.abs(b[i]!));
  }
  return diff / norm;
}

function randomCodebooks(numLayers: number, headDim: number, seed: number): RvqCodebooks {
  const random = createRng(seed);
  const { subDim, stages, entries } = RVQ_DEFAULTS;
  const book = (): Float32Array => {
    const b = new Float32Array(stages * entries * subDim);
    for (let k = 0; k < stages; k++) for (let i = 0; i < entries * subDim; i++) b[k * entries * subDim + i] = (random() * 2 - 1) * 2 ** -k;
    return b;
  };
  const scaleRanges = new Float32Array(numLayers * 4);
  for (let i = 0; i < scaleRanges.length; i += 2) [scaleRanges[i], scaleRanges[i + 1]] = [-12, 8];
  return { ...RVQ_DEFAULTS, numLayers, headDim, scaleRanges, keys: Array.from({ length: numLayers }, book), values: Array.from({ length: numLayers }, book) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      config: { type: 'string', default: 'bench/configs/qwen2.5-0.5b.json' },
      lengths: { type: 'string', default: '512,2048,6000' },
      'old-blocks': { type: 'string', default: '48,8,2' },
      'rvq-blocks': { type: 'string', default: '4' },
      repeats: { type: 'string', default: '2' },
    },
  });
  if (!values.out) throw new Error('Name the folder the results go to: --out DIR (the file is DIR/segment-dct.json).');
  const config = parseHfConfig(JSON.parse(fs.readFileSync(values.config, 'utf8')), values.config);
  const rotary = rotarySpecOf(config);
  const { numLayers, numKvHeads: heads, headDim: dim } = config;
  const blocksPerFile = 2 * numLayers;
  const channels = blocksPerFile * heads * dim;
  const lengths = values.lengths.split(',').map(Number);
  const oldBlocks = values['old-blocks'].split(',').map(Number);
  const rvqBlocks = Number(values['rvq-blocks']);
  const repeats = Number(values.repeats);
  const codecs: SegmentCodec[] = [new Float32Codec(), new Int8Codec(), new RvqCodec(randomCodebooks(numLayers, dim, 7))];
  const loadBefore = os.loadavg();
  console.log(`${path.basename(values.config)}: ${numLayers} layers × ${heads} KV heads × ${dim} dims × keys and values = ${channels} channels per token; load ${loadBefore.map((x) => x.toFixed(2)).join(' ')}`);

  const results = [];
  for (const [at, L] of lengths.entries()) {
    const random = createRng(L);
    const kindOf = (b: number): SegmentKind => (b % 2 === 0 ? 'key' : 'value');
    const rows = Array.from({ length: blocksPerFile }, () => Float32Array.from({ length: heads * L * dim }, () => random() * 2 - 1));
    const scaled = (t: Timed): number => (t.ms * blocksPerFile) / t.measuredBlocks;

    // Forward DCT and the full-resolution rebuild, FFT-based, over every block.
    let coefficients: Float32Array[] = [];
    const forwardNew: Timed = { ms: best(repeats, () => (coefficients = rows.map((x) => forwardDct(x, heads, L, dim)))), measuredBlocks: blocksPerFile };
    let rebuilt: Float32Array[] = [];
    const rebuildNew: Timed = { ms: best(repeats, () => (rebuilt = coefficients.map((X) => inverseDct(X, heads, L, dim, L)))), measuredBlocks: blocksPerFile };
    // The same at a quarter of the rows (an assembly that shares the cache among files).
    const quarter = Math.max(1, Math.floor(L / 4));
    const rebuildQuarterNew: Timed = {
      ms: best(repeats, () => coefficients.forEach((X) => inverseDct(X, heads, quarter, dim, L))),
      measuredBlocks: blocksPerFile,
    };

    // The O(L²) loops on the first `old` blocks, after one untimed block that builds their cosine tables.
    const old = Math.min(oldBlocks[at] ?? oldBlocks.at(-1)!, blocksPerFile);
    const block = (data: Float32Array): SegmentBlock => ({ rows: L, numKvHeads: heads, headDim: dim, data });
    referenceSequenceDct(block(rows[0]!));
    referenceInverseSequenceDct(block(coefficients[0]!), L, L);
    let oldCoefficients: Float32Array[] = [];
    const forwardOld: Timed = { ms: best(1, () => (oldCoefficients = rows.slice(0, old).map((x) => referenceSequenceDct(block(x)).data))), measuredBlocks: old };
    let oldRebuilt: Float32Array[] = [];
    const rebuildOld: Timed = { ms: best(1, () => (oldRebuilt = coefficients.slice(0, old).map((X) => referenceInverseSequenceDct(block(X), L, L).data))), measuredBlocks: old };
    const agreement = {
      forward: Math.max(...oldCoefficients.map((X, b) => maxRelativeDifference(coefficients[b]!, X))),
      rebuild: Math.max(...oldRebuilt.map((y, b) => maxRelativeDifference(rebuilt[b]!, y))),
      roundTrip: Math.max(...rebuilt.slice(0, old).map((y, b) => maxRelativeDifference(y, rows[b]!))),
    };

    // RoPE: un-rotate the keys by their slots (building) and rotate them to new slots (assembly).
    const positions = Float64Array.from({ length: L }, (_, j) => 1 + j);
    const keyBlocks = rows.filter((_, b) => b % 2 === 0);
    const rotate: Timed = {
      ms: best(repeats, () => {
        for (const k of keyBlocks) rotateRows(rotary, k, heads, L, positions, -1);
        for (const k of keyBlocks) rotateRows(rotary, k, heads, L, positions, 1);
      }),
      measuredBlocks: blocksPerFile,
    };

    // Codecs over the coefficients: encode all blocks (rvq: the first few), decode all of them.
    const K = storedCoefficientRows(L);
    const codecResults: Record<string, { encodeMs: number; encodeMeasuredBlocks: number; decodeMs: number; fileBytes: number; bytesPerToken: number; fileEncodeMs: number; fileReadMs: number; storedRows: number; storedFileBytes: number; storedBytesPerToken: number }> = {};
    for (const codec of codecs) {
      const n = codec.name === 'rvq' ? Math.min(rvqBlocks, blocksPerFile) : blocksPerFile;
      let encoded: Uint8Array[] = [];
      const encodeMs = best(codec.name === 'rvq' ? 1 : repeats, () => (encoded = coefficients.slice(0, n).map((X, b) => codec.encode({ rows: L, numKvHeads: heads, headDim: dim, data: X }, kindOf(b), b >> 1))));
      // The blocks not encoded (rvq) decode as copies of the encoded ones with their layer and kind, so the file has its real size.
      const all = withCopies(encoded);
      const decodeMs = best(repeats, () => all.forEach((bytes, b) => codec.decode(bytes, kindOf(b), b >> 1)));
      const header = { version: SEGMENT_FORMAT_VERSION, model: 'bench', settings: 'bench', path: 'bench.ts', contentHash: '0'.repeat(64), tokens: L, rows: L, sourceRows: L, numLayers, numKvHeads: heads, headDim: dim, codec: codec.name, blockBytes: [] };
      let file: Uint8Array = new Uint8Array(0);
      const fileEncodeMs = best(repeats, () => (file = encodeSegmentFile(header, all)));
      const fileReadMs = best(repeats, () => decodeSegmentFile(file));
      // The file the store writes: the first K coefficients of each block (rvq: two blocks encoded, the others copies).
      const kept = coefficients.slice(0, codec.name === 'rvq' ? 2 : blocksPerFile).map((X, b) => codec.encode({ rows: K, numKvHeads: heads, headDim: dim, data: firstRows(X, heads, L, dim, K) }, kindOf(b), b >> 1));
      const storedFile = encodeSegmentFile({ ...header, rows: K }, withCopies(kept));
      codecResults[codec.name] = { encodeMs: (encodeMs * blocksPerFile) / n, encodeMeasuredBlocks: n, decodeMs, fileBytes: file.length, bytesPerToken: file.length / L, fileEncodeMs, fileReadMs, storedRows: K, storedFileBytes: storedFile.length, storedBytesPerToken: storedFile.length / L };
    }

    /** Blocks encoded for the first layers, the rest of the file's blocks as copies relabelled with their layer (same size). */
    function withCopies(encoded: Uint8Array[]): Uint8Array[] {
      return Array.from({ length: blocksPerFile }, (_, b) => {
        if (b < encoded.length) return encoded[b]!;
        const copy = encoded[b % 2]!.slice();
        new DataView(copy.buffer).setUint16(8, b >> 1, true);
        return copy;
      });
    }

    const loops: Record<string, number> = {
      'forward DCT (FFT)': forwardNew.ms,
      'rebuild at L rows (FFT)': rebuildNew.ms,
      'rotate keys (un-rotate + rotate)': rotate.ms,
      ...Object.fromEntries(Object.entries(codecResults).flatMap(([name, c]) => [[`${name} encode`, c.encodeMs], [`${name} decode`, c.decodeMs], [`${name} file write+read (SHA-256)`, c.fileEncodeMs + c.fileReadMs]])),
    };
    const dominant = Object.entries(loops).sort((a, b) => b[1] - a[1])[0]!;
    const result = {
      rows: L,
      forward: { oldMs: scaled(forwardOld), oldMeasuredBlocks: old, newMs: forwardNew.ms, speedup: scaled(forwardOld) / forwardNew.ms },
      rebuildFull: { oldMs: scaled(rebuildOld), oldMeasuredBlocks: old, newMs: rebuildNew.ms, speedup: scaled(rebuildOld) / rebuildNew.ms },
      rebuildQuarterRowsNewMs: rebuildQuarterNew.ms,
      oldMultiplyAdds: 2 * L * L * channels,
      maxRelativeDifferenceToOld: agreement,
      rotateKeysMs: rotate.ms,
      codecs: codecResults,
      dominantLoopAfter: { loop: dominant[0], ms: dominant[1] },
    };
    results.push(result);
    console.log(JSON.stringify(result));
  }
  const out = {
    what: 'Per-file loops of the segment store at one model shape, for one file of L rows (all 48 blocks); ms are the best of --repeats, old loops and rvq encode scaled from the blocks measured',
    command: `node scripts/run-ts.js scripts/segment-dct-bench.ts ${process.argv.slice(2).join(' ')}`,
    config: path.basename(values.config),
    shape: { numLayers, numKvHeads: heads, headDim: dim, channelsPerToken: channels },
    storedCoefficients: STORED_COEFFICIENTS,
    fft: 'fft.js 4.0.4 (radix-4, powers of two) + Bluestein chirp-z for other lengths; Makhoul reordering; two channels per complex DFT',
    loadAverage: { before: loadBefore, after: os.loadavg() },
    cpus: os.cpus().length,
    node: process.version,
    lengths: results,
  };
  fs.mkdirSync(values.out, { recursive: true });
  const file = path.join(values.out, 'segment-dct.json');
  fs.writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`wrote ${file}`);
}

/** The first k coefficient rows of each head of a [heads, L, dim] block. */
function firstRows(X: Float32Array, heads: number, L: number, dim: number, k: number): Float32Array {
  const out = new Float32Array(heads * k * dim);
  for (let h = 0; h < heads; h++) out.set(X.subarray(h * L * dim, (h * L + k) * dim), h * k * dim);
  return out;
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
