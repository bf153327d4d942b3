// The text fed to the model for a workspace question or a file summary. Each file is introduced
// by a header line with its path, so the model can name files. Models with a chat template get
// a system and a user message rendered with it (generation prompt added); models without one,
// like the embedded story model, get plain text that ends where the answer should start. For
// that model this is only continuation: it was trained on children's stories, so what follows
// is a story-like text, not an answer about the code.

// A follow-up question repeats the conversation's last turns after the files: with a chat
// template as user/assistant messages (the files stay in the first user message), in plain text
// as "Question: … Answer: …" lines. So the part before the earlier turns (prefix and files) is
// the same for every question, and only the part after the files grows.

import type { ModelTokenizer } from '../tokenizer/modelTokenizer';
import type { IncludedFile } from './types';

/** An earlier question and its answer. */
export interface PriorTurn {
  question: string;
  answer: string;
}

/** At most this many earlier turns are repeated, and each answer at most this many characters. */
export const MAX_PRIOR_TURNS = 4;
export const MAX_PRIOR_ANSWER_CHARS = 2000;

/** The turns a prompt repeats: the last MAX_PRIOR_TURNS, long answers cut (with "…"). */
export function recentTurns(history: readonly PriorTurn[] = []): PriorTurn[] {
  return history.slice(-MAX_PRIOR_TURNS).map((turn) => ({
    question: turn.question,
    answer: turn.answer.length > MAX_PRIOR_ANSWER_CHARS ? `${turn.answer.slice(0, MAX_PRIOR_ANSWER_CHARS)}…` : turn.answer,
  }));
}

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

export function buildAskPrompt(
  tokenizer: Pick<ModelTokenizer, 'hasChatTemplate' | 'applyChatTemplate'>,
  files: readonly Pick<IncludedFile, 'path' | 'text'>[],
  question: string,
  history: readonly PriorTurn[] = [],
): BuiltPrompt {
  return buildAskPromptAround(tokenizer, `${formatFiles(files)}\n`, question, history);
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

export function splitAskPrompt(tokenizer: Pick<ModelTokenizer, 'hasChatTemplate' | 'applyChatTemplate'>, question: string, history: readonly PriorTurn[] = []): AskPromptParts {
  // buildAskPrompt's context is the files joined by '\n', each ending in '\n', then '\nQuestion';
  // so context + '\n' is the concatenation of segmentText(file) and the suffix starts at "Question"
  // (the first earlier question, or this one).
  const { text, chat } = buildAskPromptAround(tokenizer, CONTEXT_MARK, question, history);
  const at = text.indexOf(CONTEXT_MARK);
  if (at < 0) throw new Error('splitAskPrompt: the chat template dropped the user message');
  return { prefix: text.slice(0, at), suffix: text.slice(at + CONTEXT_MARK.length), chat };
}

/** One file as the ask prompt holds it, with the blank line that separates it from what follows. */
export function segmentText(file: Pick<IncludedFile, 'path' | 'text'>): string {
  return `${formatFiles([file])}\n`;
}

/** The ask prompt with `context` (the files, or a mark where they go) before the first question. */
function buildAskPromptAround(tokenizer: Pick<ModelTokenizer, 'hasChatTemplate' | 'applyChatTemplate'>, context: string, question: string, history: readonly PriorTurn[]): BuiltPrompt {
  const turns = [...recentTurns(history), { question, answer: undefined }];
  if (tokenizer.hasChatTemplate) {
    const messages: { role: 'system' | 'user' | 'assistant'; content: string }[] = [{ role: 'system', content: SYSTEM_PROMPT }];
    turns.forEach((turn, i) => {
      messages.push({ role: 'user', content: `${i === 0 ? context : ''}Question: ${turn.question}` });
      if (turn.answer !== undefined) messages.push({ role: 'assistant', content: turn.answer });
    });
    return { text: tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true }), chat: true };
  }
  const lines = turns.map((turn) => (turn.answer === undefined ? `Question: ${turn.question}\nAnswer:` : `Question: ${turn.question}\nAnswer: ${turn.answer}\n`));
  return { text: `${context}${lines.join('')}`, chat: false };
}
