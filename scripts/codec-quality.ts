// Quality of the segment codecs on the embedded model: for each codec, the
// bytes per stored cache row (all layers, keys + values), the relative reconstruction error of
// keys and values, and the fidelity effect: a text's first part is prefilled, its cache rows
// after BOS are stored as a segment would be (un-rotate keys, DCT along the sequence, encode,
// decode, inverse DCT, re-rotate) and the rest of the text is scored against that cache;
// perplexity of the continuation and KL(unquantized ‖ codec) of every next-token distribution.
// With --keep 0.5 the segment is also rebuilt at half its rows (truncated coefficients), to set
// each codec's error beside the error of truncation itself (KL against the full cache). With
// --pad the segment is rebuilt at all L rows from its first keep · L coefficients (the others
// zero), as a store that keeps fewer coefficients than rows would rebuild a file given all its rows.
// RVQ codebooks are calibrated on texts the model samples itself (seeded); the evaluation texts
// are bench/texts/the-lighthouse-cat.txt and sampled texts of another seed (held out).
// Usage: node scripts/run-ts.js scripts/codec-quality.ts [--model DIR] [--json OUT] [--sweep] [--keep 1,0.5] [--pad]

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { inspectModelFolder } from '../src/engine/model/modelFolder';
import { DecoderSession } from '../src/engine/model/decoderSession';
import { ModelTokenizer } from '../src/engine/tokenizer/modelTokenizer';
import { toFloat32, fromFloat32 } from '../src/engine/kv/compressor';
import type { KvArray, KvCache } from '../src/engine/kv/kvCache';
import { rotarySpecOf, rotateRows, type RotarySpec } from '../src/engine/kv/rotary';
import { klDivergence } from '../src/engine/eval/fidelity';
import { logProbOf } from '../src/engine/eval/scoreTokens';
import { collectSegmentCoefficients, fitRvqCodebooks, RVQ_DEFAULTS, sampleCalibrationTexts, truncateRvqStages } from '../src/engine/segments/rvqCalibration';
import { Float32Codec, Int8Codec, inverseSequenceDct, RvqCodec, sequenceDct, type Int8CodecOptions, type SegmentCodec } from '../src/engine/segments/codecs';
import type { RvqParameters } from '../src/engine/segments/codecs/codecState';

interface Candidate {
  label: string;
  codec: SegmentCodec;
  calibrationSeconds?: number;
}

interface Totals {
  bytes: number;
  rows: number;
  keyError: number;
  keyNorm: number;
  valueError: number;
  valueNorm: number;
  nll: number;
  kl: number;
  top1: number;
  predictions: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: path.join('models', 'stories260K') },
      json: { type: 'string' },
      sweep: { type: 'boolean', default: false },
      seed: { type: 'string', default: '1' },
      'calibration-texts': { type: 'string', default: '24' },
      'eval-texts': { type: 'string', default: '8' },
      'max-samples': { type: 'string' },
      keep: { type: 'string', default: '1,0.5' },
      pad: { type: 'boolean', default: false },
    },
  });
  const folder = inspectModelFolder(values.model);
  const session = await DecoderSession.open(folder, { threads: 1 });
  const tokenizer = await ModelTokenizer.fromFolder(folder.dir);
  const rotary = rotarySpecOf(folder.config);
  const seed = Number(values.seed);
  const context = folder.config.maxPositionEmbeddings;
  const textLength = Math.min(256, context);

  // Calibration: sampled texts of `seed`; evaluation: the lighthouse story and texts of seed + 1000.
  const calibrationTexts = await sampleCalibrationTexts(session, { count: Number(values['calibration-texts']), length: textLength, seed });
  const story = tokenizer.encode(fs.readFileSync(path.join('bench', 'texts', 'the-lighthouse-cat.txt'), 'utf8'), { addSpecialTokens: true }).slice(0, context);
  const evalTexts = [story, ...(await sampleCalibrationTexts(session, { count: Number(values['eval-texts']), length: textLength, seed: seed + 1000 }))];
  const c0 = performance.now();
  const blocks = await collectSegmentCoefficients(session, calibrationTexts);
  const collectSeconds = (performance.now() - c0) / 1000;
  console.log(`calibration: ${calibrationTexts.length} texts × ${textLength} tokens collected in ${collectSeconds.toFixed(1)} s; evaluation: ${evalTexts.length} texts (${evalTexts.map((t) => t.length).join(', ')} tokens)`);

  const candidates: Candidate[] = [{ label: 'float32', codec: new Float32Codec() }];
  const int8Variants: [string, Int8CodecOptions][] = [['int8', {}]];
  if (values.sweep) {
    int8Variants.push(
      ['int8 keys per channel incl. row 0', { keyRowZeroSeparate: false }],
      ['int8 keys row groups of 32', { keyGroupRows: 32 }],
      ['int8 values per head', { valueGroup: 'head' }],
    );
  }
  for (const [label, options] of int8Variants) candidates.push({ label, codec: new Int8Codec(options) });
  const rvqFits: { parameters: Omit<RvqParameters, 'stages'>; stages: number[] }[] = values.sweep
    ? [
        { parameters: { ...RVQ_DEFAULTS, subDim: 8, scaleBits: 16 }, stages: [1, 2, 4, 6, 8] },
        { parameters: { ...RVQ_DEFAULTS, subDim: 8, scaleBits: 8 }, stages: [2, 3, 4, 6, 8] },
        { parameters: { ...RVQ_DEFAULTS, subDim: 4, scaleBits: 16 }, stages: [2, 4] },
        { parameters: { ...RVQ_DEFAULTS, subDim: 4, scaleBits: 8 }, stages: [2, 3, 4] },
      ]
    : [{ parameters: RVQ_DEFAULTS, stages: [1, 2, 3, 4] }];
  for (const fit of rvqFits) {
    const most = Math.max(...fit.stages);
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const maxSamples = values['max-samples'] ? Number(values['max-samples']) : undefined;
    const books = await fitRvqCodebooks(blocks, { ...fit.parameters, stages: most, seed, maxSamples });
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    console.log(
      `rvq d=${fit.parameters.subDim} C=${fit.parameters.entries} ${fit.parameters.scale} s${fit.parameters.scaleBits}: ${most} stages calibrated in ${seconds.toFixed(1)} s (${((cpu.user + cpu.system) / 1e6).toFixed(1)} s CPU)`,
    );
    for (const stages of fit.stages) {
      candidates.push({
        label: `rvq d=${fit.parameters.subDim} K=${stages} C=${fit.parameters.entries} s${fit.parameters.scaleBits}${fit.parameters.scale === 'rms' ? ' rms' : ''}`,
        codec: new RvqCodec(truncateRvqStages(books, stages)),
        calibrationSeconds: (seconds * stages) / most,
      });
    }
  }

  // The reference logits of every evaluation text's continuation, with the unquantized cache.
  const split = (tokens: number[]): number => Math.floor(tokens.length * 0.6);
  const references: Float32Array[] = [];
  for (const tokens of evalTexts) references.push((await continuation(session, tokens, split(tokens), undefined, rotary)).logits);

  const rows: Record<string, unknown>[] = [];
  const keeps = values.keep.split(',').map(Number);
  console.log(`\n${'codec'.padEnd(30)} ${'keep'.padStart(4)} ${'bytes/token'.padStart(11)} ${'× fp32'.padStart(7)} ${'key err'.padStart(8)} ${'val err'.padStart(8)} ${'ppl'.padStart(7)} ${'KL'.padStart(9)} ${'top-1'.padStart(6)} ${'enc ms/tok'.padStart(10)}`);
  const referencePpl = new Map<number, number>();
  for (const keep of keeps) for (const candidate of candidates) {
    const totals: Totals = { bytes: 0, rows: 0, keyError: 0, keyNorm: 0, valueError: 0, valueNorm: 0, nll: 0, kl: 0, top1: 0, predictions: 0 };
    const timing = { encodeMs: 0 };
    for (let t = 0; t < evalTexts.length; t++) {
      const tokens = evalTexts[t]!;
      const result = await continuation(session, tokens, split(tokens), { codec: candidate.codec, keep, pad: values.pad, totals, timing }, rotary);
      const vocab = session.vocabSize;
      const reference = references[t]!;
      for (let i = 0; i < result.logProbs.length; i++) {
        const ref = reference.subarray(i * vocab, (i + 1) * vocab);
        const got = result.logits.subarray(i * vocab, (i + 1) * vocab);
        totals.kl += klDivergence(ref, got);
        if (argmaxOf(ref) === argmaxOf(got)) totals.top1++;
        totals.nll -= result.logProbs[i]!;
        totals.predictions++;
      }
    }
    const perplexity = Math.exp(totals.nll / totals.predictions);
    if (candidate.label === 'float32') referencePpl.set(keep, perplexity);
    const float32Ppl = referencePpl.get(keep) ?? 0;
    const row = {
      codec: candidate.label,
      keep,
      bytesPerToken: totals.bytes / totals.rows,
      ratioToFloat32: (totals.bytes / totals.rows) / (folder.config.numLayers * 2 * folder.config.numKvHeads * folder.config.headDim * 4),
      keyRelativeError: Math.sqrt(totals.keyError / totals.keyNorm),
      valueRelativeError: Math.sqrt(totals.valueError / totals.valueNorm),
      perplexity,
      /** Relative to float32 at the same resolution. */
      perplexityIncrease: float32Ppl > 0 ? perplexity / float32Ppl - 1 : 0,
      kl: totals.kl / totals.predictions,
      top1: totals.top1 / totals.predictions,
      encodeMsPerToken: timing.encodeMs / totals.rows,
      calibrationSeconds: candidate.calibrationSeconds ?? null,
      segmentRows: totals.rows,
      predictions: totals.predictions,
    };
    rows.push(row);
    console.log(
      `${row.codec.padEnd(30)} ${row.keep.toFixed(2).padStart(4)} ${row.bytesPerToken.toFixed(1).padStart(11)} ${row.ratioToFloat32.toFixed(3).padStart(7)} ${row.keyRelativeError.toFixed(4).padStart(8)} ${row.valueRelativeError.toFixed(4).padStart(8)} ${row.perplexity.toFixed(3).padStart(7)} ${row.kl.toExponential(2).padStart(9)} ${row.top1.toFixed(3).padStart(6)} ${row.encodeMsPerToken.toFixed(3).padStart(10)}`,
    );
  }
  if (values.json) {
    fs.mkdirSync(path.dirname(values.json), { recursive: true });
    const out = {
      model: path.basename(folder.dir),
      seed,
      calibration: { texts: calibrationTexts.length, tokensPerText: textLength, source: 'sampled by the model (temperature 1)' },
      evaluation: { texts: evalTexts.map((t) => t.length), split: 0.6, note: 'prefix rows after BOS through the codec, continuation scored' },
      rebuild: values.pad ? 'at all L rows from the first keep · L coefficients (the others zero)' : 'at keep · L rows from the first keep · L coefficients',
      rows,
    };
    fs.writeFileSync(values.json, JSON.stringify(out, null, 2));
    console.log(`\nwrote ${values.json}`);
  }
  await session.release();
}

function argmaxOf(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/**
 * Prefills tokens[0, split − 1), optionally passes cache rows [1, n) through the codec as a
 * stored segment, then feeds tokens[split − 1, end − 1) and returns the logits predicting
 * tokens[split, end) and their log-probabilities.
 */
async function continuation(
  session: DecoderSession,
  tokens: number[],
  split: number,
  through: { codec: SegmentCodec; keep: number; pad: boolean; totals: Totals; timing: { encodeMs: number } } | undefined,
  rotary: RotarySpec,
): Promise<{ logits: Float32Array; logProbs: Float64Array }> {
  const cache = session.createCache(tokens.length);
  for (let at = 0; at < split - 1; at += 128) await session.forward(tokens.slice(at, Math.min(at + 128, split - 1)), cache);
  if (through) roundTrip(cache, through.codec, through.keep, through.pad, rotary, through.totals, through.timing);
  const vocab = session.vocabSize;
  const rest = tokens.slice(split - 1, tokens.length - 1);
  const logits = new Float32Array(rest.length * vocab);
  for (let at = 0; at < rest.length; at += 128) {
    const chunk = rest.slice(at, at + 128);
    logits.set(await session.forward(chunk, cache), at * vocab);
  }
  const logProbs = Float64Array.from({ length: rest.length }, (_, i) => logProbOf(logits.subarray(i * vocab, (i + 1) * vocab), tokens[split + i]!));
  return { logits, logProbs };
}

/**
 * Rows [1, n) of every layer as a stored segment: un-rotate, DCT, encode, decode, inverse DCT
 * (at round(keep · L) rows, as a segment truncated to a lower resolution, or with `pad` at L rows
 * from the first round(keep · L) coefficients), re-rotate.
 */
function roundTrip(cache: KvCache, codec: SegmentCodec, keep: number, pad: boolean, rotary: RotarySpec, totals: Totals, timing: { encodeMs: number }): void {
  const { numLayers, numKvHeads: heads, headDim: dim } = cache.shape;
  const n = cache.rows;
  const prefix = 1;
  const L = n - prefix;
  const positions = Float64Array.from({ length: L }, (_, j) => prefix + j);
  const kept = Math.max(1, Math.round(L * keep));
  const L2 = pad ? L : kept;
  const keys: KvArray[] = [];
  const values: KvArray[] = [];
  for (let layer = 0; layer < numLayers; layer++) {
    for (const kind of ['key', 'value'] as const) {
      const all = toFloat32(kind === 'key' ? cache.keys(layer) : cache.values(layer)).slice();
      const rows = new Float32Array(heads * L * dim);
      for (let h = 0; h < heads; h++) rows.set(all.subarray((h * n + prefix) * dim, (h * n + n) * dim), h * L * dim);
      if (kind === 'key') rotateRows(rotary, rows, heads, L, positions, -1);
      const coefficients = sequenceDct({ rows: L, numKvHeads: heads, headDim: dim, data: rows });
      const t0 = performance.now();
      const bytes = codec.encode(coefficients, kind, layer);
      timing.encodeMs += performance.now() - t0;
      const decoded = codec.decode(bytes, kind, layer);
      totals.bytes += bytes.length;
      let error = 0;
      let norm = 0;
      for (let i = 0; i < coefficients.data.length; i++) {
        error += (decoded.data[i]! - coefficients.data[i]!) ** 2;
        norm += coefficients.data[i]! ** 2;
      }
      if (kind === 'key') {
        totals.keyError += error;
        totals.keyNorm += norm;
      } else {
        totals.valueError += error;
        totals.valueNorm += norm;
      }
      // The segment at L2 rows: its first L2 coefficient rows decoded on their own, an L2-point
      // inverse, keys re-rotated to slots 1 … L2 behind the BOS row.
      const part = codec.decode(bytes, kind, layer, kept);
      const back = inverseSequenceDct(part, L, L2).data;
      if (kind === 'key') rotateRows(rotary, back, heads, L2, positions, 1);
      const out = new Float32Array(heads * (prefix + L2) * dim);
      for (let h = 0; h < heads; h++) {
        out.set(all.subarray(h * n * dim, (h * n + prefix) * dim), h * (prefix + L2) * dim);
        out.set(back.subarray(h * L2 * dim, (h + 1) * L2 * dim), (h * (prefix + L2) + prefix) * dim);
      }
      (kind === 'key' ? keys : values).push(fromFloat32(out, cache));
    }
  }
  totals.rows += L;
  cache.replaceRows(keys, values, prefix + L2);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
