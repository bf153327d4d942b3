import { parseArgs } from 'node:util';
import { Engine } from '../engine/engine';
import { graphNote, modelToLoad } from './defaultModel';
import { cacheOptionsFor, GENERATION_OPTION_SPEC, parseGenerationOptions } from './generationOptions';

export async function runGenerate(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { ...GENERATION_OPTION_SPEC, prompt: { type: 'string' } },
    strict: true,
  });
  const options = parseGenerationOptions(values, { cache: 'full' });

  const engine = await Engine.load({ ...modelToLoad(values), threads: options.threads });
  const note = graphNote(engine.folder);
  if (note) process.stderr.write(`${note}\n`);
  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  process.once('SIGINT', onSigint);
  try {
    const cache = cacheOptionsFor(options, engine.contextLength);
    for (const warning of engine.chooseCompressor({ cache }).warnings) process.stderr.write(`warning: ${warning}\n`);
    for await (const event of engine.generate({
      prompt: values.prompt,
      maxNewTokens: options.maxNewTokens,
      sampling: options.sampling,
      seed: options.seed,
      signal: controller.signal,
      prefillChunkSize: options.prefillChunkSize,
      cache,
    })) {
      if (event.kind === 'token' && !values.json) process.stdout.write(event.text);
      if (event.kind === 'done') {
        if (values.json) {
          process.stdout.write(`${JSON.stringify({ text: event.text, tokenIds: event.tokenIds, stopReason: event.reason, model: engine.folder.dir, onnxFile: engine.folder.onnxPath, ...event.stats })}\n`);
        } else {
          process.stdout.write('\n');
          process.stderr.write(`${statsLine(event.stats)}; stopped: ${event.reason}]\n`);
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

/** The human-readable statistics line (without its closing bracket). */
export function statsLine(s: import('../engine/generate/stats').GenerationStats): string {
  return `[${s.promptTokens} prompt tokens at ${s.prefillTokensPerSecond.toFixed(0)} tok/s, ${s.generatedTokens} generated at ${s.decodeTokensPerSecond.toFixed(0)} tok/s, cache ${s.cacheRows}/${s.cacheCapacity} rows, ${s.cacheBytes} bytes, ${s.compressions} compressions`;
}
