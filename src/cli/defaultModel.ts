import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EngineOptions } from '../engine/engine';
import type { ModelFolder } from '../engine/model/modelFolder';
import { UsageError } from './args';

/** The embedded model, models/stories260K, found from the bundle (dist/) or the sources (src/cli/). */
export function embeddedModelDir(): string {
  const candidates = [path.join(__dirname, '..', 'models', 'stories260K'), path.join(__dirname, '..', '..', 'models', 'stories260K')];
  return candidates.find((c) => fs.existsSync(path.join(c, 'config.json'))) ?? candidates[0]!;
}

/** --model DIR, --onnx-file FILE and --graph-rewrite on|off: every command that loads a model takes them. */
export const MODEL_OPTION_SPEC = {
  model: { type: 'string' },
  'onnx-file': { type: 'string' },
  'graph-rewrite': { type: 'string' },
} as const;

export const MODEL_OPTIONS_USAGE = '[--model DIR] [--onnx-file FILE] [--graph-rewrite on|off]';

/**
 * The folder and graph to load: --model (default: the embedded model), --onnx-file, and
 * --graph-rewrite (on by default: the load-time speed rewrite; off runs the file as exported).
 */
export function modelToLoad(values: { model?: string; 'onnx-file'?: string; 'graph-rewrite'?: string }): Pick<EngineOptions, 'modelDir' | 'onnxFile' | 'graphRewrite'> {
  const rewrite = values['graph-rewrite'] ?? 'on';
  if (rewrite !== 'on' && rewrite !== 'off') throw new UsageError(`--graph-rewrite must be on or off, not '${rewrite}'.`);
  return { modelDir: values.model ?? embeddedModelDir(), onnxFile: values['onnx-file'], graphRewrite: rewrite === 'on' };
}

/** A note for stderr when the folder holds several graphs and none was chosen: which one runs. */
export function graphNote(folder: ModelFolder): string | undefined {
  if (folder.graphChoice !== 'default' || folder.graphFiles.length < 2) return undefined;
  const chosen = path.relative(folder.dir, folder.onnxPath).split(path.sep).join('/');
  return `note: ${folder.dir} holds ${folder.graphFiles.length} graphs (${folder.graphFiles.join(', ')}); using ${chosen}, the default. Choose another with --onnx-file.`;
}
