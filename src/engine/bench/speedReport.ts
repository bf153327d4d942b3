// The speed benchmark's rows, limits, ratios and Markdown (docs/benchmarks.md, "Speed"). A probe result becomes a
// row with the model's name and each figure beside its machine limit (speedLimits.ts); the
// ratios divide our tokens/s by transformers.js's at each model and text length.

import type { DecoderConfig } from '../model/modelConfig';
import { decodeBandwidthLimit, flopsPerToken, MACHINE_BANDWIDTH_BYTES_PER_SECOND, MACHINE_MATMUL_FLOPS_PER_SECOND, prefillComputeLimit } from './speedLimits';
import type { SpeedCache, SpeedEngine, SpeedProbeResult } from './speedProbe';

export interface ModelFacts {
  name: string;
  config: DecoderConfig;
  /** The graph and its weights as stored: what a decode step reads besides the cache. */
  weightBytes: number;
  /** Cache bytes per row over all layers, keys and values. */
  cacheBytesPerRow: number;
}

export interface SpeedRow extends SpeedProbeResult {
  model: string;
  weightBytes: number;
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
  /** The full cache held more rows than the model's trained context (speed is still measured). */
  beyondTrainedContext: boolean;
}

export interface SpeedRatio {
  model: string;
  contextTokens: number;
  /** Our cache compared with transformers.js's (always full). */
  cache: SpeedCache;
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

export function toSpeedRow(result: SpeedProbeResult, model: ModelFacts): SpeedRow {
  const decodeBytesPerToken = model.weightBytes + result.meanDecodeCacheRows * model.cacheBytesPerRow;
  const decodeLimit = decodeBandwidthLimit(model.weightBytes, result.meanDecodeCacheRows * model.cacheBytesPerRow);
  const prefillLimit = prefillComputeLimit(model.config, result.meanPrefillAttendedRows);
  return {
    ...result,
    model: model.name,
    weightBytes: model.weightBytes,
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

/** Ours ÷ transformers.js at each (model, L), for each of our caches. */
export function speedRatios(rows: readonly SpeedRow[]): SpeedRatio[] {
  const ratios: SpeedRatio[] = [];
  for (const theirs of rows.filter((r) => r.engine === 'transformers.js')) {
    for (const ours of rows.filter((r) => r.engine === 'freqkv' && r.model === theirs.model && r.contextTokens === theirs.contextTokens)) {
      ratios.push({
        model: ours.model,
        contextTokens: ours.contextTokens,
        cache: ours.cache,
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

export function speedMarkdown(rows: readonly SpeedRow[], ratios: readonly SpeedRatio[], failures: readonly SpeedFailure[], notes: readonly string[]): string {
  const out: string[] = [];
  out.push(
    `Limits: decode ≤ ${MACHINE_BANDWIDTH_BYTES_PER_SECOND / 1e9} GB/s ÷ (weight bytes + cache bytes read per token); prefill ≤ ${MACHINE_MATMUL_FLOPS_PER_SECOND / 1e9} GFLOP/s ÷ (2 × matmul weights + 4 × layers × heads × head_dim × mean attended rows) FLOPs per token. "% lim" is the figure as a share of its limit. "load": the machine's 1-minute load average as the configuration started (2 cores; other work on the machine slows every figure).`,
    '',
  );
  for (const note of notes) out.push(`- ${note}`);
  if (notes.length > 0) out.push('');
  for (const model of [...new Set(rows.map((r) => r.model))]) {
    const mine = rows.filter((r) => r.model === model);
    out.push(`## ${model} (weights ${mb(mine[0]!.weightBytes)} MB)`, '');
    out.push('| engine | cache | L | prefill tok/s | % lim | decode tok/s | % lim | TTFT ms | peak RSS MB | decode rows | load | note |');
    out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
    for (const r of mine) {
      const note = [r.beyondTrainedContext ? `capacity ${r.capacity} > trained context ${r.trainedContext}` : '', r.prefillMode, r.compressions > 0 ? `${r.compressions} compressions, ${fixed(r.compressMs, 0)} ms` : '']
        .filter(Boolean)
        .join('; ');
      out.push(
        `| ${r.engine} | ${r.cache} | ${r.contextTokens} | ${fixed(r.prefillTokensPerSecond)} | ${percent(r.prefillComputeFraction)} | ${fixed(r.decodeTokensPerSecond)} | ${percent(r.decodeBandwidthFraction)} | ${fixed(r.timeToFirstTokenMs, 0)} | ${mb(r.peakRssBytes)} | ${fixed(r.meanDecodeCacheRows, 0)} | ${r.loadAverage1m === undefined ? '–' : fixed(r.loadAverage1m, 1)} | ${note} |`,
      );
    }
    out.push('');
    const mineRatios = ratios.filter((r) => r.model === model);
    if (mineRatios.length > 0) {
      out.push(`Ours ÷ transformers.js (full cache) on ${model}:`, '');
      out.push('| our cache | L | prefill tok/s ratio | decode tok/s ratio | TTFT ratio | peak RSS ratio |');
      out.push('|---|---:|---:|---:|---:|---:|');
      for (const r of mineRatios) out.push(`| ${r.cache} | ${r.contextTokens} | ${fixed(r.prefillRatio, 2)} | ${fixed(r.decodeRatio, 2)} | ${fixed(r.timeToFirstTokenRatio, 2)} | ${fixed(r.peakRssRatio, 2)} |`);
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
