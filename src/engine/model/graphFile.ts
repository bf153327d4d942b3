// Which decoder graph of a model folder to load. onnx-community folders hold several exports of
// one model (onnx/model.onnx, model_q4.onnx, model_fp16.onnx, model_q4f16.onnx, …); the graph
// is, in this order:
//
//   1. the file the caller names (--onnx-file, freqkv.onnxFile), in DIR or DIR/onnx;
//   2. the file Download Model fetched, as recorded in DIR/freqkv-download.json;
//   3. the only .onnx file in DIR/onnx (or DIR), whatever its name;
//   4. the first of DEFAULT_GRAPH_ORDER that exists: full precision first (it is the model as
//      trained), then the quantized graphs with float32 inputs and outputs, which onnxruntime's
//      CPU kernels run natively, then the float16 graphs, which onnxruntime runs on the CPU
//      through inserted casts.
//
// Several graphs of which none has a standard name: an error listing them, not a guess.
//
// A graph NAME.onnx may have a companion NAME_prefill.onnx (the builder's prefill graph: the
// same model and weights, faster on prompt chunks). Companions are not graphs to choose; the
// folder check loads the chosen graph's companion beside it (prefillCompanionOf).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { readManifest, MANIFEST } from './download/folderState';
import { ModelNotFoundError } from './errors';

export const DEFAULT_GRAPH_ORDER = [
  'model.onnx',
  'model_fp32.onnx',
  'model_q4.onnx',
  'model_int8.onnx',
  'model_uint8.onnx',
  'model_quantized.onnx',
  'model_q4f16.onnx',
  'model_fp16.onnx',
];

/** The file name of the builder's prefill graph beside onnx/model.onnx. */
export const PREFILL_GRAPH_FILE = 'model_prefill.onnx';
const PREFILL_SUFFIX = '_prefill.onnx';

/** The companion prefill graph of `onnxPath` (NAME.onnx → NAME_prefill.onnx), if it exists. */
export function prefillCompanionOf(onnxPath: string): string | undefined {
  if (!onnxPath.endsWith('.onnx') || onnxPath.endsWith(PREFILL_SUFFIX)) return undefined;
  const companion = `${onnxPath.slice(0, -'.onnx'.length)}${PREFILL_SUFFIX}`;
  return isFile(companion) ? companion : undefined;
}

/** How the graph of a folder was chosen. */
export type GraphChoice = 'requested' | 'downloaded' | 'only' | 'default';

export interface ChosenGraph {
  /** Absolute path of the graph file. */
  onnxPath: string;
  choice: GraphChoice;
  /** Every graph of the folder, relative to it ('onnx/model.onnx', …), sorted (prefill companions left out). */
  graphFiles: string[];
}

const HOW_TO_FIX = "rebuild it with 'npx freqkv convert …', run 'Download Model' again, or choose another model folder";

export function chooseGraphFile(folder: string, requested: string | undefined): ChosenGraph {
  const graphFiles = listGraphFiles(folder);
  const there = graphFiles.length > 0 ? `Graphs in the folder: ${graphFiles.join(', ')}` : 'The folder holds no .onnx file at all';
  const wanted = requested?.trim();
  if (wanted) {
    const found = [path.resolve(folder, wanted), path.join(folder, 'onnx', wanted)].find(isFile);
    if (!found) {
      throw new ModelNotFoundError(
        `Model folder ${folder} has no graph ${wanted} (looked in ${folder} and ${path.join(folder, 'onnx')}). ${there}; name one of them with --onnx-file (or the freqkv.onnxFile setting), or leave it empty to use the default.`,
      );
    }
    return { onnxPath: found, choice: 'requested', graphFiles };
  }
  const downloaded = readManifest(folder)?.onnxFile;
  if (downloaded) {
    const file = path.join(folder, downloaded);
    if (!isFile(file)) {
      throw new ModelNotFoundError(
        `${path.join(folder, MANIFEST)} says Download Model fetched ${downloaded}, but it is missing. ${there}; run 'Download Model' again, or name a graph with --onnx-file (or the freqkv.onnxFile setting).`,
      );
    }
    return { onnxPath: file, choice: 'downloaded', graphFiles };
  }
  if (graphFiles.length === 1) return { onnxPath: path.join(folder, graphFiles[0]!), choice: 'only', graphFiles };
  for (const dir of ['onnx', '']) {
    for (const name of DEFAULT_GRAPH_ORDER) {
      const relative = path.posix.join(dir, name);
      if (graphFiles.includes(relative)) return { onnxPath: path.join(folder, relative), choice: 'default', graphFiles };
    }
  }
  if (graphFiles.length === 0) {
    throw new ModelNotFoundError(`Model folder ${folder} has no onnx/model.onnx (nor any other .onnx file in ${folder} or ${path.join(folder, 'onnx')}); ${HOW_TO_FIX}.`);
  }
  throw new ModelNotFoundError(
    `Model folder ${folder} holds several graphs and none has a standard name (${DEFAULT_GRAPH_ORDER.join(', ')}). ${there}; name one with --onnx-file (or the freqkv.onnxFile setting).`,
  );
}

/** The .onnx files of DIR/onnx and DIR, relative to DIR with '/' separators, sorted by name. */
export function listGraphFiles(folder: string): string[] {
  const files: string[] = [];
  for (const dir of ['onnx', '']) {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(path.join(folder, dir), { withFileTypes: true });
    } catch {
      continue;
    }
    const isGraph = (name: string): boolean =>
      name.endsWith('.onnx') && !(name.endsWith(PREFILL_SUFFIX) && names.has(`${name.slice(0, -PREFILL_SUFFIX.length)}.onnx`));
    const names = new Set(entries.filter((e) => e.name.endsWith('.onnx') && isFile(path.join(folder, dir, e.name))).map((e) => e.name));
    files.push(...[...names].filter(isGraph).sort().map((name) => path.posix.join(dir, name)));
  }
  return files;
}

function isFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}
