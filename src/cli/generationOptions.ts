// The cache and sampling options that generate, ask and summarize share: one parseArgs spec and
// one parser, so the three commands accept and check them the same way.

import { floatOption, intOption, UsageError } from './args';
import { CACHE_METHODS, DEFAULT_RETAIN, DEFAULT_SINKS, type CacheOptions } from '../engine/kv/createCompressor';
import type { CacheMethod } from '../engine/kv/compressor';
import type { SamplingOptions } from '../engine/generate/sampler';
import { MODEL_OPTION_SPEC, MODEL_OPTIONS_USAGE } from './defaultModel';

export const GENERATION_OPTION_SPEC = {
  ...MODEL_OPTION_SPEC,
  'max-tokens': { type: 'string' },
  temperature: { type: 'string' },
  'top-p': { type: 'string' },
  'top-k': { type: 'string' },
  'repetition-penalty': { type: 'string' },
  seed: { type: 'string' },
  threads: { type: 'string' },
  'prefill-chunk': { type: 'string' },
  cache: { type: 'string' },
  capacity: { type: 'string' },
  sinks: { type: 'string' },
  retain: { type: 'string' },
  recent: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

export const GENERATION_OPTIONS_USAGE = `${MODEL_OPTIONS_USAGE} [--max-tokens N] [--temperature T] [--top-p P]
                  [--top-k K] [--repetition-penalty R] [--seed S] [--threads N] [--prefill-chunk C]
                  [--cache full|freqkv|streaming] [--capacity N] [--sinks S] [--retain G] [--recent R] [--json]`;

export interface GenerationOptions {
  maxNewTokens: number;
  sampling: SamplingOptions;
  seed: number;
  threads: number;
  prefillChunkSize: number;
  method: CacheMethod;
  /** undefined: the model's trained context. */
  capacity: number | undefined;
  sinks: number;
  retain: number;
  recent: number | undefined;
}

type Values = Partial<Record<Exclude<keyof typeof GENERATION_OPTION_SPEC, 'json'>, string>>;

/** `defaults`: the command's cache policy, and its temperature and answer length where they differ from generate's. */
export function parseGenerationOptions(values: Values, defaults: { cache: CacheMethod; temperature?: number; maxNewTokens?: number }): GenerationOptions {
  const maxNewTokens = intOption(values['max-tokens'], 'max-tokens', defaults.maxNewTokens ?? 256, 1);
  const temperature = floatOption(values.temperature, 'temperature', defaults.temperature ?? 0.8, (n) => n >= 0, 'a number >= 0 (0 = greedy)');
  const topP = floatOption(values['top-p'], 'top-p', 0.9, (n) => n > 0 && n <= 1, 'a number in (0, 1]');
  const topK = intOption(values['top-k'], 'top-k', 0, 0);
  const repetitionPenalty = floatOption(values['repetition-penalty'], 'repetition-penalty', 1, (n) => n > 0, 'a number > 0');
  const seed = intOption(values.seed, 'seed', 42);
  const threads = intOption(values.threads, 'threads', 0, 0);
  const prefillChunkSize = intOption(values['prefill-chunk'], 'prefill-chunk', 128, 1);
  const method = (values.cache ?? defaults.cache) as CacheMethod;
  if (!CACHE_METHODS.includes(method)) throw new UsageError(`--cache must be one of ${CACHE_METHODS.join(', ')} (got '${values.cache}').`);
  const capacity = values.capacity === undefined ? undefined : intOption(values.capacity, 'capacity', 0, 1);
  const sinks = intOption(values.sinks, 'sinks', DEFAULT_SINKS, 0);
  const retain = floatOption(values.retain, 'retain', DEFAULT_RETAIN, (n) => n > 0 && n < 1, 'a number in (0, 1)');
  const recent = values.recent === undefined ? undefined : intOption(values.recent, 'recent', 0, 0);
  return { maxNewTokens, sampling: { temperature, topP, topK, repetitionPenalty }, seed, threads, prefillChunkSize, method, capacity, sinks, retain, recent };
}

/** The cache options for a request on a model with the given trained context. */
export function cacheOptionsFor(options: GenerationOptions, contextLength: number): CacheOptions {
  return { method: options.method, capacity: options.capacity ?? contextLength, sinks: options.sinks, retain: options.retain, recent: options.recent };
}
