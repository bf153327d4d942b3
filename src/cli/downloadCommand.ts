// `freqkv download`: fetches a model from a Hugging Face hub (or a mirror) into a model folder,
// with progress on stderr; Ctrl-C cancels and keeps what arrived for the next run to resume.
// A build variant fetches the original safetensors weights and converts them here.

import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ALL_VARIANTS, DEFAULT_BUILD_REPO, DEFAULT_ENDPOINT, DEFAULT_REPO, DEFAULT_REVISION, DEFAULT_VARIANT, DownloadCancelledError, downloadModel, formatBytes, isBuildVariant, type DownloadProgress } from '../engine/model/download';
import { intOption } from './args';

export const DOWNLOAD_USAGE = `freqkv download [--repo ${DEFAULT_REPO}] [--variant ${ALL_VARIANTS.join('|')}]
                  [--revision main] [--out DIR] [--endpoint ${DEFAULT_ENDPOINT}] [--retries N] [--json]
    --variant build-int4|build-int8: fetch the original safetensors weights (default repo
    ${DEFAULT_BUILD_REPO}) and build the model here with int4/int8 weights (faster decoding)`;

export async function runDownload(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      repo: { type: 'string' },
      variant: { type: 'string', default: DEFAULT_VARIANT },
      revision: { type: 'string', default: DEFAULT_REVISION },
      out: { type: 'string' },
      endpoint: { type: 'string', default: process.env.HF_ENDPOINT || DEFAULT_ENDPOINT },
      retries: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const build = isBuildVariant(values.variant);
  const repo = values.repo ?? (build ? DEFAULT_BUILD_REPO : DEFAULT_REPO);
  const name = repo.split('/').pop() ?? 'model';
  const out = path.resolve(values.out ?? path.join('models', build ? `${name}-${values.variant}` : name));
  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  process.once('SIGINT', onSigint);
  const printer = new ProgressPrinter(Boolean(process.stderr.isTTY));
  try {
    process.stderr.write(`freqkv: downloading ${repo} (${values.variant}) from ${values.endpoint} into ${out}${build ? ', then building it here' : ''}\n`);
    const result = await downloadModel({
      repo,
      variant: values.variant,
      revision: values.revision,
      dest: out,
      endpoint: values.endpoint,
      retries: intOption(values.retries, 'retries', 3, 0),
      signal: controller.signal,
      onProgress: (p) => printer.update(p),
    });
    printer.finish();
    const { files: _files, ...summary } = result;
    if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    if (result.alreadyPresent) process.stderr.write(`freqkv: ${out} already holds this download; nothing fetched.\n`);
    else {
      process.stderr.write(
        `freqkv: ${formatBytes(result.bytesTotal)} in ${result.files.length} files, ${formatBytes(result.bytesFetched)} fetched${result.bytesResumed > 0 ? `, ${formatBytes(result.bytesResumed)} resumed` : ''}${result.build ? `, built with ${result.build.options.weights} weights in ${result.build.seconds.toFixed(1)} s (the downloaded weights were deleted)` : ''}, in ${result.seconds.toFixed(1)} s.\n`,
      );
    }
    process.stderr.write(`freqkv: use it with --model ${out} (or set freqkv.modelPath).\n`);
    return 0;
  } catch (error) {
    printer.finish();
    if (error instanceof DownloadCancelledError) {
      process.stderr.write(`freqkv: ${error.message}\n`);
      return 130;
    }
    throw error;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/** On a terminal, one line rewritten in place; otherwise one line per file and phase. */
class ProgressPrinter {
  private lastKey = '';
  private open = false;

  constructor(private readonly tty: boolean) {}

  update(p: DownloadProgress): void {
    if (this.tty) {
      const percent = p.bytesTotal > 0 ? ((100 * p.bytesDone) / p.bytesTotal).toFixed(1) : '0.0';
      const rate = p.bytesPerSecond > 0 ? `, ${formatBytes(p.bytesPerSecond)}/s` : '';
      const line = p.phase === 'listing' ? 'listing files…' : `${percent}% ${formatBytes(p.bytesDone)} / ${formatBytes(p.bytesTotal)}${rate} · ${p.phase} ${p.file ?? ''}`;
      process.stderr.write(`\r\x1b[2K${line}`);
      this.open = true;
      return;
    }
    const key = `${p.phase} ${p.file ?? ''}`;
    if (key === this.lastKey) return;
    this.lastKey = key;
    if (p.phase === 'downloading') process.stderr.write(`  ${p.file} (${formatBytes(p.fileSize)}${p.fileBytes > 0 ? `, resuming at ${formatBytes(p.fileBytes)}` : ''})\n`);
    else if (p.phase === 'converting') process.stderr.write(`  converting the weights with the builder (tens of seconds and a few GB of memory for 0.5B parameters)\n`);
    else if (p.phase === 'installing') process.stderr.write(`  checking the model folder and moving it into place\n`);
  }

  finish(): void {
    if (this.open) process.stderr.write('\n');
    this.open = false;
  }
}
