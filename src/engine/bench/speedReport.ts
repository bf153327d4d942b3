// The speed benchmark's rows, limits, ratios and Markdown. A probe result becomes a row with the
// model's name and each figure beside its machine limit (speedLimits.ts, with the limits the run
// measured); the ratios divide our tokens/s by each peer's (transformers.js, llama.cpp) at each
// model, text length and round, a round being one turn of every engine in a row.

import type { DecoderConfig } from '../model/modelConfig';
import { decodeBandwidthLimit, flopsPerToken, prefillComputeLimit } from './speedLimits';
import type { SpeedCache, SpeedEngine, SpeedProbeResult } from './speedProbe';

/** The machine figures the rows are compared with. */
export interface SpeedLimits {
  /** Compute operations per second for prefill (the measured int8 rate, or the float32 fallback). */
  computeOpsPerSecond: number;
  computeLabel: string;
  bandwidthBytesPerSecond: number;
}

export interface ModelFacts {
  name: string;
  config: DecoderConfig;
  /** The graph and its weights as stored: what a decode step reads besides the cache. */
  weightBytes: number;
  /** The prefill graph's weights, if the model has one (prompt chunks read these instead). */
  prefillWeightBytes?: number;
  /** Cache bytes per row over all layers, keys and values. */
  cacheBytesPerRow: number;
}

export interface SpeedRow extends SpeedProbeResult {
  model: string;
  weightBytes: number;
  prefillWeightBytes?: number;
  /** Bytes a decode step reads: weights + the cache rows it attends to. */
  decodeBytesPerToken: number;
  decodeBandwidthLimitTokensPerSecond: number;
  decodeBandwidthFraction: number;
  /** FLOPs of a prefill token at the mean attended rows. */
  prefillFlopsPerToken: number;
  prefillComputeLimitTokensPerSecond: number;
  prefillComputeFraction: number;
  trainedContext: number;
  /** The machine's 1-minute load average when the configuration started (other work slows every figure). */
  loadAverage1m?: number;
  /** … and when it ended. */
  loadAverage1mAfter?: number;
  /** Which turn of the engines this row was (0-based; every engine runs once per round, in a row). */
  round?: number;
  /** The full cache held more rows than the model's trained context (speed is still measured). */
  beyondTrainedContext: boolean;
}

export interface SpeedRatio {
  model: string;
  contextTokens: number;
  /** The peer engine (its cache is always full). */
  peer: SpeedEngine;
  /** Our cache compared with the peer's. */
  cache: SpeedCache;
  /** The round both turns belong to. */
  round?: number;
  prefillRatio: number;
  decodeRatio: number;
  timeToFirstTokenRatio: number;
  peakRssRatio: number;
}

export interface SpeedFailure {
  engine: SpeedEngine;
  model: string;
  cache: SpeedCache;
  contextTokens: number;
  error: string;
}

/** The row's limits and fractions again with other machine figures (a better measurement later in the run). */
export function withLimits(row: SpeedRow, limits: SpeedLimits): SpeedRow {
  const decodeLimit = limits.bandwidthBytesPerSecond / row.decodeBytesPerToken;
  const prefillLimit = limits.computeOpsPerSecond / row.prefillFlopsPerToken;
  return {
    ...row,
    decodeBandwidthLimitTokensPerSecond: decodeLimit,
    decodeBandwidthFraction: row.decodeTokensPerSecond / decodeLimit,
    prefillComputeLimitTokensPerSecond: prefillLimit,
    prefillComputeFraction: row.prefillTokensPerSecond / prefillLimit,
  };
}

export function toSpeedRow(result: SpeedProbeResult, model: ModelFacts, limits: SpeedLimits): SpeedRow {
  const decodeBytesPerToken = model.weightBytes + result.meanDecodeCacheRows * model.cacheBytesPerRow;
  const decodeLimit = decodeBandwidthLimit(model.weightBytes, result.meanDecodeCacheRows * model.cacheBytesPerRow, limits.bandwidthBytesPerSecond);
  const prefillLimit = prefillComputeLimit(model.config, result.meanPrefillAttendedRows, limits.computeOpsPerSecond);
  return {
    ...result,
    model: model.name,
    weightBytes: model.weightBytes,
    ...(model.prefillWeightBytes ? { prefillWeightBytes: model.prefillWeightBytes } : {}),
    decodeBytesPerToken,
    decodeBandwidthLimitTokensPerSecond: decodeLimit,
    decodeBandwidthFraction: result.decodeTokensPerSecond / decodeLimit,
    prefillFlopsPerToken: flopsPerToken(model.config, result.meanPrefillAttendedRows),
    prefillComputeLimitTokensPerSecond: prefillLimit,
    prefillComputeFraction: result.prefillTokensPerSecond / prefillLimit,
    trainedContext: model.config.maxPositionEmbeddings,
    beyondTrainedContext: result.capacity > model.config.maxPositionEmbeddings,
  };
}

/** Ours ÷ each peer at each (model, L, round), for each of our caches. */
export function speedRatios(rows: readonly SpeedRow[]): SpeedRatio[] {
  const ratios: SpeedRatio[] = [];
  for (const theirs of rows.filter((r) => r.engine !== 'freqkv')) {
    for (const ours of rows.filter((r) => r.engine === 'freqkv' && r.model === theirs.model && r.contextTokens === theirs.contextTokens && r.round === theirs.round)) {
      ratios.push({
        model: ours.model,
        contextTokens: ours.contextTokens,
        peer: theirs.engine,
        cache: ours.cache,
        ...(ours.round === undefined ? {} : { round: ours.round }),
        prefillRatio: ours.prefillTokensPerSecond / theirs.prefillTokensPerSecond,
        decodeRatio: ours.decodeTokensPerSecond / theirs.decodeTokensPerSecond,
        timeToFirstTokenRatio: ours.timeToFirstTokenMs / theirs.timeToFirstTokenMs,
        peakRssRatio: ours.peakRssBytes / theirs.peakRssBytes,
      });
    }
  }
  return ratios;
}

const fixed = (x: number, digits = 1): string => (Number.isFinite(x) ? x.toFixed(digits) : '–');
const percent = (x: number): string => `${fixed(100 * x, 1)} %`;
const mb = (bytes: number): string => fixed(bytes / 1e6, 0);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The median of each ratio over the rounds, per (model, peer, our cache, L). */
export function medianRatios(ratios: readonly SpeedRatio[]): (SpeedRatio & { rounds: number })[] {
  const groups = new Map<string, SpeedRatio[]>();
  for (const r of ratios) {
    const key = `${r.model}|${r.peer}|${r.cache}|${r.contextTokens}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()].map((group) => {
    const { round: _round, ...first } = group[0]!;
    return {
      ...first,
      rounds: group.length,
      prefillRatio: median(group.map((r) => r.prefillRatio)),
      decodeRatio: median(group.map((r) => r.decodeRatio)),
      timeToFirstTokenRatio: median(group.map((r) => r.timeToFirstTokenRatio)),
      peakRssRatio: median(group.map((r) => r.peakRssRatio)),
    };
  });
}

const load = (x: number | undefined): string => (x === undefined ? '–' : fixed(x, 1));

export function speedMarkdown(rows: readonly SpeedRow[], ratios: readonly SpeedRatio[], failures: readonly SpeedFailure[], notes: readonly string[], limits: SpeedLimits): string {
  const out: string[] = [];
  out.push(
    `Limits: decode ≤ ${fixed(limits.bandwidthBytesPerSecond / 1e9)} GB/s ÷ (weight bytes + cache bytes read per token); prefill ≤ ${fixed(limits.computeOpsPerSecond / 1e9, 0)} G ${limits.computeLabel} ÷ (2 × matmul weights + 4 × layers × heads × head_dim × mean attended rows) operations per token. "% lim" is the figure as a share of its limit. "load": the machine's 1-minute load average as the configuration started → ended (other work on the machine slows every figure; compare engines by the ratios of turns taken one after the other).`,
    '',
  );
  for (const note of notes) out.push(`- ${note}`);
  if (notes.length > 0) out.push('');
  for (const model of [...new Set(rows.map((r) => r.model))]) {
    const mine = rows.filter((r) => r.model === model);
    const weights = [
      ...new Set(mine.map((r) => `${r.engine} ${mb(r.weightBytes)} MB${r.prefillWeightBytes ? ` (+ ${mb(r.prefillWeightBytes)} MB prefill graph)` : ''}`)),
    ].join(', ');
    out.push(`## ${model} (weights: ${weights})`, '');
    out.push('| engine | cache | L | round | prefill tok/s | % lim | decode tok/s | % lim | TTFT ms | peak RSS MB | decode rows | load | note |');
    out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|');
    for (const r of mine) {
      const note = [r.beyondTrainedContext ? `capacity ${r.capacity} > trained context ${r.trainedContext}` : '', r.prefillMode, r.compressions > 0 ? `${r.compressions} compressions, ${fixed(r.compressMs, 0)} ms` : '']
        .filter(Boolean)
        .join('; ');
      out.push(
        `| ${r.engine} | ${r.cache} | ${r.contextTokens} | ${r.round === undefined ? '–' : r.round + 1} | ${fixed(r.prefillTokensPerSecond)} | ${percent(r.prefillComputeFraction)} | ${fixed(r.decodeTokensPerSecond)} | ${percent(r.decodeBandwidthFraction)} | ${fixed(r.timeToFirstTokenMs, 0)} | ${mb(r.peakRssBytes)} | ${fixed(r.meanDecodeCacheRows, 0)} | ${load(r.loadAverage1m)} → ${load(r.loadAverage1mAfter)} | ${note} |`,
      );
    }
    out.push('');
    for (const peer of [...new Set(ratios.filter((r) => r.model === model).map((r) => r.peer))]) {
      const mineRatios = ratios.filter((r) => r.model === model && r.peer === peer);
      out.push(`Ours ÷ ${peer} (full cache) on ${model}, each round's turns one after the other (above 1: ours is faster / uses more memory):`, '');
      out.push('| our cache | L | round | prefill tok/s ratio | decode tok/s ratio | TTFT ratio | peak RSS ratio |');
      out.push('|---|---:|---:|---:|---:|---:|---:|');
      for (const r of mineRatios) out.push(`| ${r.cache} | ${r.contextTokens} | ${r.round === undefined ? '–' : r.round + 1} | ${fixed(r.prefillRatio, 2)} | ${fixed(r.decodeRatio, 2)} | ${fixed(r.timeToFirstTokenRatio, 2)} | ${fixed(r.peakRssRatio, 2)} |`);
      const medians = medianRatios(mineRatios).filter((r) => r.rounds > 1);
      for (const r of medians) out.push(`| ${r.cache} | ${r.contextTokens} | median of ${r.rounds} | **${fixed(r.prefillRatio, 2)}** | **${fixed(r.decodeRatio, 2)}** | **${fixed(r.timeToFirstTokenRatio, 2)}** | **${fixed(r.peakRssRatio, 2)}** |`);
      out.push('');
    }
  }
  if (failures.length > 0) {
    out.push('## Configurations that failed', '');
    for (const f of failures) out.push(`- ${f.engine} ${f.model} ${f.cache} L=${f.contextTokens}: ${f.error}`);
    out.push('');
  }
  return out.join('\n');
}
