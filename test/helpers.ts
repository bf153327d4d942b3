// Shared helpers for tests that build real model folders with the project's builder.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { convertLlama2cTokenizer } from '../src/builder/llama2cTokenizer';
import { writeModelFolder, type ModelFolderOptions } from '../src/builder/modelFolderWriter';
import type { DecoderModel } from '../src/builder/decoderWeights';
import { createRng } from '../src/engine/random';

export const SHARED = path.resolve(__dirname, '..', '..', 'shared');
export const STORIES_DIR = path.join(SHARED, 'models', 'stories260K');
export const EMBEDDED_MODEL = path.resolve(__dirname, '..', 'models', 'stories260K');

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `freqkv-${prefix}-`));
}

/** The stories260K tokenizer files, used by test models that need some tokenizer.json. */
export function storiesTokenizer(): ReturnType<typeof convertLlama2cTokenizer> {
  return convertLlama2cTokenizer(fs.readFileSync(path.join(STORIES_DIR, 'tok512.bin')));
}

export function buildTestModel(model: DecoderModel, options: Partial<ModelFolderOptions> = {}, dir = tempDir('model')): { dir: string; effectiveModel: DecoderModel } {
  const out = path.join(dir, 'model');
  const { effectiveModel } = writeModelFolder(out, model, storiesTokenizer(), { weights: 'float32', kvCache: 'float32', externalData: 'never', ...options });
  return { dir: out, effectiveModel };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs((a[i] as number) - (b[i] as number)));
  return max;
}

/** ‖actual − expected‖ / ‖expected‖ over all elements. */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} vs ${expected.length}`);
  let error = 0;
  let norm = 0;
  for (let i = 0; i < expected.length; i++) {
    error += ((actual[i] as number) - (expected[i] as number)) ** 2;
    norm += (expected[i] as number) ** 2;
  }
  return Math.sqrt(error / Math.max(norm, 1e-30));
}

/** A seeded random token sequence for the embedded model: BOS, then ids past the byte pieces. */
export function randomStoryTokens(count: number, seed = 7): number[] {
  const random = createRng(seed);
  return [1, ...Array.from({ length: count - 1 }, () => 3 + Math.floor(random() * 500))];
}
