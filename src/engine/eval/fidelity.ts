// The fidelity benchmark (docs/kv-compression.md §4): how well each cache
// policy keeps the model's predictions at each memory budget, measured by teacher-forced
// scoring of long texts (scoreTokens). Pure logic over a DecoderSession; the CLI
// (src/cli/benchFidelity.ts) makes the texts and writes the files.

import type { CacheMethod, KvCompressor } from '../kv/compressor';
import { createCompressor } from '../kv/createCompressor';
import type { DecoderSession } from '../model/decoderSession';
import { argmax } from '../generate/sampler';
import { logSumExp, scoreTokens } from './scoreTokens';

export interface FidelityText {
  name: string;
  /** Token ids, starting with BOS. */
  tokens: number[];
}

export interface MethodSetting {
  method: CacheMethod;
  /** N; for `full`, undefined: the whole text fits. */
  capacity?: number;
  sinks?: number;
  retain?: number;
  /** R (freqkv): recent rows never compressed. */
  recent?: number;
}

export interface RecallProbe {
  /** The passage that occurs twice (without BOS). */
  passage: number[];
  /** Other text of the same length that replaces the first occurrence in the control. */
  filler: number[];
  /** The text between the two occurrences (longer than every capacity measured). */
  gap: number[];
  bos: number;
}

export interface FidelityRow {
  method: CacheMethod;
  /** N (for `full`: the rows needed to hold the whole text). */
  capacity: number;
  sinks: number | null;
  retain: number | null;
  recent: number | null;
  text: string;
  tokens: number;
  /** Average cache bytes in use over the run (per predicted token: the rows it attended to) ÷ tokens of text. */
  bytesPerToken: number;
  /** Average cache bytes in use over the run, as above, not divided. */
  avgCacheBytes: number;
  /** The most cache bytes held at once. */
  peakCacheBytes: number;
  /** exp(mean negative log-likelihood) over every predicted token of the text. */
  perplexity: number | null;
  /** Perplexity over the predicted tokens at positions ≥ the trained context (null if the text is not that long). */
  perplexityBeyond: number | null;
  /** Mean KL(full ‖ method) in nats over positions < the trained context. */
  kl: number | null;
  /** Share of positions < the trained context where the method's top-1 token equals the full cache's. */
  top1: number | null;
  /** Recall probe: mean loss (nats) on the passage's second occurrence. */
  recallLoss: number | null;
  /** Recall probe: the same with the first occurrence replaced by other text. */
  recallLossWithoutFirst: number | null;
  compressions: number;
  seconds: number;
}

export interface FidelityOptions {
  settings: MethodSetting[];
  texts: FidelityText[];
  recall?: RecallProbe;
  /** Tokens per forward pass for full and freqkv (freqkv's chunks give the same cache as one token at a time). */
  chunkSize?: number;
  /** Tokens per forward pass for streaming; default 1, so every token attends to a full window as in decoding. */
  streamingChunkSize?: number;
  onProgress?: (message: string) => void;
}

/** KL(p ‖ q) in nats for two logits rows, computed in float64. */
export function klDivergence(pLogits: ArrayLike<number>, qLogits: ArrayLike<number>): number {
  const lp = logSoftmax(pLogits);
  const lq = logSoftmax(qLogits);
  let kl = 0;
  for (let i = 0; i < lp.length; i++) {
    const p = Math.exp(lp[i]!);
    if (p > 0) kl += p * (lp[i]! - lq[i]!);
  }
  return Math.max(0, kl);
}

export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  const lse = logSumExp(logits);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i]! - lse;
  return out;
}

/** The sampler's greedy choice (the first of equal maxima), re-exported for the metrics' users. */
export { argmax };

/** exp(mean of −logProbs[from..to)), or null when the range is empty. */
export function perplexityOf(logProbs: ArrayLike<number>, from = 0, to = logProbs.length): number | null {
  if (to <= from) return null;
  let sum = 0;
  for (let i = from; i < to; i++) sum -= logProbs[i]!;
  return Math.exp(sum / (to - from));
}

export function settingLabel(s: MethodSetting): string {
  if (s.method === 'full') return 'full';
  const base = `${s.method} N=${s.capacity} S=${s.sinks ?? 4}`;
  if (s.method === 'streaming') return base;
  return `${base} γ=${s.retain}${s.recent ? ` R=${s.recent}` : ''}`;
}

/** Runs every setting on every text (and the recall probe) and returns one row per (setting, text). */
export async function runFidelity(session: DecoderSession, options: FidelityOptions): Promise<FidelityRow[]> {
  const config = session.folder.config;
  const trained = config.maxPositionEmbeddings;
  const vocab = session.vocabSize;
  const log = options.onProgress ?? ((): void => undefined);
  const make = (s: MethodSetting, length: number): KvCompressor =>
    createCompressor({ method: s.method, capacity: s.capacity ?? length, sinks: s.sinks, retain: s.retain, recent: s.method === 'freqkv' ? (s.recent ?? 0) : undefined }, config).compressor;
  const chunkFor = (s: MethodSetting): number => (s.method === 'streaming' ? (options.streamingChunkSize ?? 1) : (options.chunkSize ?? 128));
  const rows: FidelityRow[] = [];

  for (const text of options.texts) {
    const tokens = text.tokens;
    const refPositions = Math.min(trained, tokens.length - 1);
    // The reference: the full cache's next-token distributions where it is valid.
    const reference = new Float32Array(refPositions * vocab);
    const full = make({ method: 'full' }, tokens.length);
    await scoreTokens(session, full, tokens, {
      chunkSize: options.chunkSize ?? 128,
      onLogits: (position, logits) => {
        if (position < refPositions) reference.set(logits, position * vocab);
      },
    });
    for (const setting of options.settings) {
      let klSum = 0;
      let agree = 0;
      const compressor = make(setting, tokens.length);
      const scores = await scoreTokens(session, compressor, tokens, {
        chunkSize: chunkFor(setting),
        onLogits: (position, logits) => {
          if (position >= refPositions) return;
          const ref = reference.subarray(position * vocab, (position + 1) * vocab);
          klSum += klDivergence(ref, logits);
          if (argmax(ref) === argmax(logits)) agree++;
        },
      });
      const row: FidelityRow = {
        ...scoredRow(setting, compressor.capacity, text.name, tokens.length, scores, trained),
        kl: refPositions > 0 ? klSum / refPositions : null,
        top1: refPositions > 0 ? agree / refPositions : null,
        recallLoss: null,
        recallLossWithoutFirst: null,
      };
      rows.push(row);
      log(`${text.name}: ${settingLabel(setting)}: ppl ${row.perplexity?.toFixed(3)}, KL ${row.kl?.toFixed(4)}, top-1 ${row.top1?.toFixed(3)}, ${row.seconds.toFixed(1)} s`);
    }
  }

  if (options.recall) {
    const { passage, filler, gap, bos } = options.recall;
    const withFirst = [bos, ...passage, ...gap, ...passage];
    const withoutFirst = [bos, ...filler, ...gap, ...passage];
    const start = 1 + passage.length + gap.length;
    // Mean loss over the passage's second occurrence, its first token excluded (it follows the gap).
    const passageLoss = (logProbs: Float64Array): number => {
      let sum = 0;
      for (let p = start + 1; p < withFirst.length; p++) sum -= logProbs[p - 1]!;
      return sum / (withFirst.length - start - 1);
    };
    for (const setting of options.settings) {
      const a = await scoreTokens(session, make(setting, withFirst.length), withFirst, { chunkSize: chunkFor(setting) });
      const b = await scoreTokens(session, make(setting, withoutFirst.length), withoutFirst, { chunkSize: chunkFor(setting) });
      const row: FidelityRow = {
        ...scoredRow(setting, setting.capacity ?? withFirst.length, 'recall-probe', withFirst.length, a, trained),
        kl: null,
        top1: null,
        recallLoss: passageLoss(a.logProbs),
        recallLossWithoutFirst: passageLoss(b.logProbs),
        seconds: (a.elapsedMs + b.elapsedMs) / 1000,
      };
      rows.push(row);
      log(`recall-probe: ${settingLabel(setting)}: loss ${row.recallLoss?.toFixed(3)} (without the first occurrence ${row.recallLossWithoutFirst?.toFixed(3)})`);
    }
  }
  return rows;
}

/** The fields every row has: the setting, the text, cache bytes, perplexities and timing of one scored run. */
function scoredRow(
  setting: MethodSetting,
  capacity: number,
  text: string,
  tokens: number,
  scores: Awaited<ReturnType<typeof scoreTokens>>,
  trained: number,
): Omit<FidelityRow, 'kl' | 'top1' | 'recallLoss' | 'recallLossWithoutFirst'> {
  let rowSum = 0;
  let peak = 0;
  for (const r of scores.cacheRows) {
    rowSum += r;
    peak = Math.max(peak, r);
  }
  const avgCacheBytes = (rowSum / scores.cacheRows.length) * scores.bytesPerRow;
  return {
    method: setting.method,
    capacity,
    sinks: setting.method === 'full' ? null : (setting.sinks ?? 4),
    retain: setting.method === 'freqkv' ? (setting.retain ?? 0.5) : null,
    recent: setting.method === 'freqkv' ? (setting.recent ?? 0) : null,
    text,
    tokens,
    bytesPerToken: avgCacheBytes / tokens,
    avgCacheBytes,
    peakCacheBytes: peak * scores.bytesPerRow,
    perplexity: perplexityOf(scores.logProbs),
    // logProbs[i] predicts the token at position i + 1.
    perplexityBeyond: perplexityOf(scores.logProbs, trained - 1),
    compressions: scores.compressions,
    seconds: scores.elapsedMs / 1000,
  };
}
