// A Hugging Face model folder (config.json, safetensors weights, tokenizer files) converted into
// a model folder the engine loads: what `freqkv convert safetensors` and the build variants of
// Download Model run.

import type { DecoderModel } from './decoderWeights';
import { writeModelFolder, type ModelFolderOptions } from './modelFolderWriter';
import { readSafetensorsModel } from './safetensors';
import { readTokenizerFiles } from './tokenizerFiles';

/** Reads `input` (tokenizer from `tokenizerDir`, default `input`) and writes the folder `out`. */
export async function convertSafetensorsFolder(input: string, out: string, options: ModelFolderOptions, tokenizerDir = input): Promise<{ effectiveModel: DecoderModel }> {
  const tokenizer = readTokenizerFiles(tokenizerDir);
  const model = await readSafetensorsModel(input);
  return writeModelFolder(out, model, tokenizer, options);
}
