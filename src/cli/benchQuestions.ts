// Questions whose answer lives in one known file, the file that implements what they ask about:
// a JSON list of { "question": "…", "implementation": "path/in/the/workspace" }.
// bench/questions/this-repository.json holds such questions about this repository; `freqkv bench
// workspace` asks them (and reports where the implementing file ended up in the cache), and
// scripts/relevance-ranks.ts ranks them. The file is left out of the workspace they are asked
// about, so that the questions themselves take no part.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError } from './args';

export interface ImplementationQuestion {
  question: string;
  /** The workspace path of the file that implements what the question asks about. */
  implementation: string;
}

/** The questions file's path inside this repository (also what is left out of a copy of it). */
export const REPOSITORY_QUESTIONS = 'bench/questions/this-repository.json';

/** bench/questions/this-repository.json of the installed package (dist/ or out/scripts/ are one or two levels below the root). */
export function repositoryQuestionsPath(): string {
  const candidates = [path.join(__dirname, '..', REPOSITORY_QUESTIONS), path.join(__dirname, '..', '..', REPOSITORY_QUESTIONS)];
  return candidates.find((c) => fs.existsSync(c)) ?? candidates[0]!;
}

/** Reads and checks a questions file; a clear UsageError says what is wrong with it. */
export function readQuestions(file: string): ImplementationQuestion[] {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new UsageError(`--questions ${file} could not be read as JSON (${(error as Error).message}); it must be a list of { "question": "…", "implementation": "path/in/the/workspace" }.`);
  }
  const ok = (q: unknown): q is ImplementationQuestion =>
    typeof q === 'object' && q !== null && typeof (q as ImplementationQuestion).question === 'string' && (q as ImplementationQuestion).question.trim() !== '' && typeof (q as ImplementationQuestion).implementation === 'string';
  if (!Array.isArray(json) || !json.every(ok)) throw new UsageError(`--questions ${file} must be a list of { "question": "…", "implementation": "path/in/the/workspace" }.`);
  return json.map((q) => ({ question: q.question, implementation: q.implementation.replace(/\\/g, '/').replace(/^\.\//, '') }));
}
