import { parseArgs } from 'node:util';
import { Engine } from '../engine/engine';
import { floatOption, intOption, UsageError } from './args';
import { CACHE_METHODS, DEFAULT_RETAIN, DEFAULT_SINKS } from '../engine/kv/createCompressor';
import type { CacheMethod } from '../engine/kv/compressor';
import { embeddedModelDir } from './defaultModel';

export async function runGenerate(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      prompt: { type: 'string' },
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
    },
    strict: true,
  });
  const maxNewTokens = intOption(values['max-tokens'], 'max-tokens', 256, 1);
  const temperature = floatOption(values.temperature, 'temperature', 0.8, (n) => n >= 0, 'a number >= 0 (0 = greedy)');
  const topP = floatOption(values['top-p'], 'top-p', 0.9, (n) => n > 0 && n <= 1, 'a number in (0, 1]');
  const topK = intOption(values['top-k'], 'top-k', 0, 0);
  const repetitionPenalty = floatOption(values['repetition-penalty'], 'repetition-penalty', 1, (n) => n > 0, 'a number > 0');
  const seed = intOption(values.seed, 'seed', 42);
  const threads = intOption(values.threads, 'threads', 0, 0);
  const prefillChunkSize = intOption(values['prefill-chunk'], 'prefill-chunk', 128, 1);
  const method = (values.cache ?? 'full') as CacheMethod;
  if (!CACHE_METHODS.includes(method)) throw new UsageError(`--cache must be one of ${CACHE_METHODS.join(', ')} (got '${values.cache}').`);
  const capacityOption = values.capacity === undefined ? undefined : intOption(values.capacity, 'capacity', 0, 1);
  const sinks = intOption(values.sinks, 'sinks', DEFAULT_SINKS, 0);
  const retain = floatOption(values.retain, 'retain', DEFAULT_RETAIN, (n) => n > 0 && n < 1, 'a number in (0, 1)');
  const recent = values.recent === undefined ? undefined : intOption(values.recent, 'recent', 0, 0);

  const engine = await Engine.load({ modelDir: values.model ?? embeddedModelDir(), threads });
  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  process.once('SIGINT', onSigint);
  try {
    const cache = { method, capacity: capacityOption ?? engine.contextLength, sinks, retain, recent };
    for (const warning of engine.chooseCompressor({ cache }).warnings) process.stderr.write(`warning: ${warning}\n`);
    for await (const event of engine.generate({
      prompt: values.prompt,
      maxNewTokens,
      sampling: { temperature, topP, topK, repetitionPenalty },
      seed,
      signal: controller.signal,
      prefillChunkSize,
      cache,
    })) {
      if (event.kind === 'token' && !values.json) process.stdout.write(event.text);
      if (event.kind === 'done') {
        if (values.json) {
          process.stdout.write(`${JSON.stringify({ text: event.text, stopReason: event.reason, model: engine.folder.dir, ...event.stats })}\n`);
        } else {
          process.stdout.write('\n');
          const s = event.stats;
          process.stderr.write(
            `[${s.promptTokens} prompt tokens at ${s.prefillTokensPerSecond.toFixed(0)} tok/s, ${s.generatedTokens} generated at ${s.decodeTokensPerSecond.toFixed(0)} tok/s, cache ${s.cacheRows}/${s.cacheCapacity} rows, ${s.cacheBytes} bytes, ${s.compressions} compressions; stopped: ${event.reason}]\n`,
          );
        }
        return event.reason === 'cancelled' ? 130 : 0;
      }
    }
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
    await engine.dispose();
  }
}
