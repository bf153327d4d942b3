// `freqkv bench fidelity`: the fidelity benchmark (docs/kv-compression.md §4) on a model folder. Makes the
// default texts reproducibly (the model's own samples with fixed seeds, plus the short story
// shipped in bench/texts), reads any --text files, runs every method and budget through
// runFidelity, and writes JSON, Markdown and SVG into --out (default bench-results/fidelity).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Engine } from '../engine/engine';
import { FreqKvError } from '../engine/errors';
import { runFidelity, type FidelityText, type MethodSetting, type RecallProbe } from '../engine/eval/fidelity';
import { equalBytesMarkdown, fidelityMarkdown, fidelitySvg } from '../engine/eval/fidelityReport';
import { intOption, UsageError } from './args';
import { runBenchWorkspace } from './benchWorkspace';
import { MODEL_OPTION_SPEC, modelToLoad } from './defaultModel';

/** A --text file that cannot be used: empty, or not valid UTF-8. */
export class TextFileError extends FreqKvError {}

const SHIPPED_TEXT = 'the-lighthouse-cat.txt';

export function shippedTextPath(): string {
  const candidates = [path.join(__dirname, '..', 'bench', 'texts', SHIPPED_TEXT), path.join(__dirname, '..', '..', 'bench', 'texts', SHIPPED_TEXT)];
  return candidates.find((c) => fs.existsSync(c)) ?? candidates[0]!;
}

/** Reads a text file strictly: it must exist, be non-empty and be valid UTF-8. */
export function readTextFile(file: string): string {
  if (!fs.existsSync(file) || !fs.statSync(file).isFile()) throw new UsageError(`--text ${file} does not exist or is not a file.`);
  const bytes = fs.readFileSync(file);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new TextFileError(`--text ${file} is not valid UTF-8 text; convert it to UTF-8 (e.g. iconv -t UTF-8) or choose another file.`);
  }
  if (text.trim() === '') throw new TextFileError(`--text ${file} is empty; give a file with some text in it.`);
  return text;
}

function listOption<T>(value: string | undefined, name: string, fallback: T[], parse: (s: string) => T | undefined): T[] {
  if (value === undefined) return fallback;
  const items = value.split(',').map((s) => s.trim());
  const out: T[] = [];
  for (const item of items) {
    const parsed = item === '' ? undefined : parse(item);
    if (parsed === undefined) throw new UsageError(`--${name} must be a comma-separated list (got '${value}').`);
    out.push(parsed);
  }
  return out;
}

export async function runBench(argv: string[]): Promise<number> {
  const [kind, ...rest] = argv;
  if (kind === 'workspace') return runBenchWorkspace(rest);
  if (kind !== 'fidelity') throw new UsageError(`bench needs a benchmark name: fidelity, speed or workspace (got '${kind ?? ''}').`);
  return runBenchFidelity(rest);
}

async function runBenchFidelity(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...MODEL_OPTION_SPEC,
      text: { type: 'string', multiple: true },
      json: { type: 'string' },
      out: { type: 'string' },
      capacities: { type: 'string' },
      retains: { type: 'string' },
      recent: { type: 'string' },
      sinks: { type: 'string' },
      samples: { type: 'string' },
      'sample-tokens': { type: 'string' },
      'recall-gap': { type: 'string' },
      'streaming-chunk': { type: 'string' },
      threads: { type: 'string' },
    },
    strict: true,
  });
  // Read the --text files first, so bad input fails before any model work.
  const userTexts = (values.text ?? []).map((file) => ({ file, text: readTextFile(file) }));
  const capacities = listOption(values.capacities, 'capacities', [64, 128, 256, 512], (s) => (Number.isInteger(Number(s)) && Number(s) >= 2 ? Number(s) : undefined));
  const retains = listOption(values.retains, 'retains', [0.25, 0.5, 0.75], (s) => (Number(s) > 0 && Number(s) < 1 ? Number(s) : undefined));
  // Recent windows R as shares of N (0 = the paper's method).
  const recentShares = listOption(values.recent, 'recent', [0, 0.25, 0.5], (s) => (Number(s) >= 0 && Number(s) < 1 ? Number(s) : undefined));
  const sinks = intOption(values.sinks, 'sinks', 4, 0);
  const samples = intOption(values.samples, 'samples', 2, 0);
  const threads = intOption(values.threads, 'threads', 0, 0);
  const streamingChunk = intOption(values['streaming-chunk'], 'streaming-chunk', 1, 1);
  const outDir = values.out ?? path.join('bench-results', 'fidelity');

  const started = performance.now();
  const log = (message: string): void => {
    process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1)} s] ${message}\n`);
  };
  const engine = await Engine.load({ ...modelToLoad(values), threads });
  try {
    const trained = engine.contextLength;
    const sampleTokens = intOption(values['sample-tokens'], 'sample-tokens', 8 * trained, 16);
    const bos = engine.tokenizer.bosTokenId ?? engine.folder.bosTokenId;
    if (bos === undefined) throw new UsageError(`${engine.folder.dir} has no BOS token; the fidelity benchmark needs one to start samples.`);

    // Default texts: the model's own stories, each sampled with the full cache from BOS at
    // temperature 1 (so each lies within the trained context and favours no compressor),
    // concatenated with BOS between them, until the text has sampleTokens tokens.
    const texts: FidelityText[] = [];
    const sampleText = async (seed: number): Promise<number[]> => {
      const tokens: number[] = [];
      for (let story = 0; tokens.length < sampleTokens; story++) {
        tokens.push(bos);
        for await (const event of engine.generate({ promptIds: [bos], maxNewTokens: trained - 1, sampling: { temperature: 1, topP: 1, topK: 0, repetitionPenalty: 1 }, seed: seed * 1000 + story })) {
          if (event.kind === 'done') tokens.push(...event.tokenIds.filter((t) => t !== bos));
        }
      }
      return tokens.slice(0, sampleTokens);
    };
    for (let k = 1; k <= samples; k++) {
      texts.push({ name: `samples-seed${k}`, tokens: await sampleText(k) });
      log(`made samples-seed${k} (${texts.at(-1)!.tokens.length} tokens)`);
    }
    const shipped = engine.tokenizer.encode(readTextFile(shippedTextPath()), { addSpecialTokens: true });
    texts.push({ name: SHIPPED_TEXT.replace(/\.txt$/, ''), tokens: shipped });
    for (const { file, text } of userTexts) texts.push({ name: path.basename(file), tokens: engine.tokenizer.encode(text, { addSpecialTokens: true }) });

    const settings: MethodSetting[] = [{ method: 'full' }];
    for (const capacity of capacities) {
      settings.push({ method: 'streaming', capacity, sinks });
      for (const retain of retains) {
        for (const share of recentShares) settings.push({ method: 'freqkv', capacity, sinks, retain, recent: Math.round(share * capacity) });
      }
    }

    // Recall probe: the shipped story's first 64 tokens, a gap of other text longer than
    // every capacity, then the 64 tokens again; the control replaces the first occurrence.
    let recall: RecallProbe | undefined;
    const gapLength = intOption(values['recall-gap'], 'recall-gap', 2 * Math.max(...capacities), 1);
    const passageLength = 64;
    if (samples > 0 && shipped.length > passageLength) {
      const filler = await sampleText(101);
      const gap = await sampleText(102);
      while (gap.length < gapLength) gap.push(...(await sampleText(103 + gap.length)));
      recall = { bos, passage: shipped.slice(1, 1 + passageLength), filler: filler.slice(1, 1 + passageLength), gap: gap.slice(0, gapLength) };
    }
    log(`${settings.length} settings × ${texts.length} texts${recall ? ' + the recall probe' : ''}`);
    const rows = await runFidelity(engine.session, { settings, texts, recall, streamingChunkSize: streamingChunk, onProgress: log });

    fs.mkdirSync(outDir, { recursive: true });
    const result = {
      model: path.basename(engine.folder.dir),
      trainedContext: trained,
      bytesPerTokenDefinition: 'average cache bytes in use over the run (for each predicted token, the rows it attended to × bytes per row, averaged) divided by the tokens of the text',
      texts: texts.map((t) => ({ name: t.name, tokens: t.tokens.length })),
      seconds: (performance.now() - started) / 1000,
      rows,
    };
    const json = `${JSON.stringify(result, null, 2)}\n`;
    fs.writeFileSync(path.join(outDir, 'fidelity.json'), json);
    if (values.json) fs.writeFileSync(values.json, json);
    fs.writeFileSync(path.join(outDir, 'fidelity.md'), `# Fidelity benchmark: ${result.model}\n\nBytes per token: ${result.bytesPerTokenDefinition}.\n\n${equalBytesMarkdown(rows)}\n${fidelityMarkdown(rows, trained)}`);
    for (const text of texts) fs.writeFileSync(path.join(outDir, `ppl-vs-bytes-${text.name}.svg`), fidelitySvg(rows, text.name));
    log(`wrote ${path.resolve(outDir)} in ${result.seconds.toFixed(1)} s`);
    return 0;
  } finally {
    await engine.dispose();
  }
}
