// The text fed to the model for a workspace question or a file summary. Each file is introduced
// by a header line with its path, so the model can name files. Models with a chat template get
// a system and a user message rendered with it (generation prompt added); models without one,
// like the embedded story model, get plain text that ends where the answer should start. For
// that model this is only continuation: it was trained on children's stories, so what follows
// is a story-like text, not an answer about the code.

import type { ModelTokenizer } from '../tokenizer/modelTokenizer';
import type { IncludedFile } from './types';

export const FILE_HEADER = '### File: ';

export const SYSTEM_PROMPT =
  'You are a code assistant. You are given files from the user\'s workspace, each introduced by a line "### File: <path>". ' +
  'Answer using only these files, and name the files you rely on by their paths.';

export interface BuiltPrompt {
  text: string;
  /** True when the text was rendered with the model's chat template (it has its special tokens). */
  chat: boolean;
}

export function formatFiles(files: readonly Pick<IncludedFile, 'path' | 'text'>[]): string {
  return files.map((f) => `${FILE_HEADER}${f.path}\n${f.text.endsWith('\n') ? f.text : `${f.text}\n`}`).join('\n');
}

export function buildAskPrompt(tokenizer: Pick<ModelTokenizer, 'hasChatTemplate' | 'applyChatTemplate'>, files: readonly Pick<IncludedFile, 'path' | 'text'>[], question: string): BuiltPrompt {
  const context = formatFiles(files);
  if (tokenizer.hasChatTemplate) {
    const text = tokenizer.applyChatTemplate(
      [
        { role: 'system', content: SYSTEM_PROMPT },
        { role: 'user', content: `${context}\nQuestion: ${question}` },
      ],
      { addGenerationPrompt: true },
    );
    return { text, chat: true };
  }
  return { text: `${context}\nQuestion: ${question}\nAnswer:`, chat: false };
}

export function buildSummaryPrompt(tokenizer: Pick<ModelTokenizer, 'hasChatTemplate' | 'applyChatTemplate'>, file: Pick<IncludedFile, 'path' | 'text'>): BuiltPrompt {
  const context = formatFiles([file]);
  const instruction = `Summarize the file ${file.path} above: what it is for and its main parts.`;
  if (tokenizer.hasChatTemplate) {
    const text = tokenizer.applyChatTemplate(
      [
        { role: 'system', content: SYSTEM_PROMPT },
        { role: 'user', content: `${context}\n${instruction}` },
      ],
      { addGenerationPrompt: true },
    );
    return { text, chat: true };
  }
  return { text: `${context}\n${instruction}\nSummary:`, chat: false };
}

/**
 * The ask prompt cut into the pieces the segmented workspace cache stores and assembles:
 * `prefix + segmentText(f1) + segmentText(f2) + … + suffix` is exactly buildAskPrompt's text
 * for those files. The prefix (the chat template's system part, or nothing but BOS for a plain
 * model) is the same for every question; the suffix carries the question.
 */
export interface AskPromptParts {
  prefix: string;
  suffix: string;
  chat: boolean;
}

const CONTEXT_MARK = '\u0000FREQKV-CONTEXT\u0000';

export function splitAskPrompt(tokenizer: Pick<ModelTokenizer, 'hasChatTemplate' | 'applyChatTemplate'>, question: string): AskPromptParts {
  // buildAskPrompt's context is the files joined by '\n', each ending in '\n', then '\nQuestion';
  // so context + '\n' is the concatenation of segmentText(file) and the suffix starts at "Question".
  const { text, chat } = buildAskPromptAround(tokenizer, CONTEXT_MARK, question);
  const at = text.indexOf(CONTEXT_MARK);
  if (at < 0) throw new Error('splitAskPrompt: the chat template dropped the user message');
  return { prefix: text.slice(0, at), suffix: text.slice(at + CONTEXT_MARK.length), chat };
}

/** One file as the ask prompt holds it, with the blank line that separates it from what follows. */
export function segmentText(file: Pick<IncludedFile, 'path' | 'text'>): string {
  return `${formatFiles([file])}\n`;
}

function buildAskPromptAround(tokenizer: Pick<ModelTokenizer, 'hasChatTemplate' | 'applyChatTemplate'>, mark: string, question: string): BuiltPrompt {
  if (tokenizer.hasChatTemplate) {
    const text = tokenizer.applyChatTemplate(
      [
        { role: 'system', content: SYSTEM_PROMPT },
        { role: 'user', content: `${mark}Question: ${question}` },
      ],
      { addGenerationPrompt: true },
    );
    return { text, chat: true };
  }
  return { text: `${mark}Question: ${question}\nAnswer:`, chat: false };
}
