// Reads the tokenizer files of an existing model folder (or a folder of Hugging Face
// tokenizer files) so the builder can copy them into the folder it writes. A folder with
// vocab.json + merges.txt but no tokenizer.json (as Qwen2 repositories sometimes are) gets a
// byte-level BPE tokenizer.json assembled the way Hugging Face's Qwen2 conversion does.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TokenizerFiles } from './modelFolderWriter';
import { assembleByteLevelBpeTokenizer } from './qwenTokenizer';
import { ModelFolderError } from './errors';

export function readTokenizerFiles(dir: string): TokenizerFiles {
  const read = (name: string): unknown | undefined => {
    const file = path.join(dir, name);
    if (!fs.existsSync(file)) return undefined;
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    } catch (error) {
      throw new ModelFolderError(`${file} is not valid JSON (${(error as Error).message}).`);
    }
  };
  const tokenizerConfig = (read('tokenizer_config.json') ?? {}) as Record<string, unknown>;
  const specialTokensMap = read('special_tokens_map.json') as object | undefined;
  const chatTemplateFile = path.join(dir, 'chat_template.jinja');
  if (fs.existsSync(chatTemplateFile) && tokenizerConfig.chat_template === undefined) {
    tokenizerConfig.chat_template = fs.readFileSync(chatTemplateFile, 'utf8');
  }
  let tokenizerJson = read('tokenizer.json') as object | undefined;
  if (!tokenizerJson) {
    const vocab = read('vocab.json') as Record<string, number> | undefined;
    const mergesFile = path.join(dir, 'merges.txt');
    if (!vocab || !fs.existsSync(mergesFile)) {
      throw new ModelFolderError(`${dir} has neither tokenizer.json nor vocab.json + merges.txt; point --tokenizer at a folder with a Hugging Face tokenizer.`);
    }
    const added = (read('added_tokens.json') ?? {}) as Record<string, number>;
    tokenizerJson = assembleByteLevelBpeTokenizer(vocab, fs.readFileSync(mergesFile, 'utf8'), added, tokenizerConfig);
  }
  return { tokenizerJson, tokenizerConfig, specialTokensMap };
}
