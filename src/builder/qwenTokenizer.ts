// Assembles a Qwen2-style tokenizer.json from the slow-tokenizer files (vocab.json, merges.txt,
// added_tokens.json, tokenizer_config.json), the way transformers' Qwen2Converter builds the
// fast tokenizer: NFC normalization, a Split on Qwen2's pre-tokenization regex followed by a
// byte-level mapping without its own regex, a byte-level BPE model without unknown token, and
// the added tokens with the `special` flags of tokenizer_config.json's added_tokens_decoder.

import { FreqKvError } from '../engine/errors';

/** The slow-tokenizer files do not fit together into a byte-level BPE tokenizer. */
export class ByteLevelBpeAssemblyError extends FreqKvError {}

/** Qwen2's pre-tokenization pattern, as transformers' Qwen2Converter writes it. */
export const QWEN2_PRETOKENIZE_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

interface AddedTokenEntry {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

export function assembleByteLevelBpeTokenizer(
  vocab: Record<string, number>,
  mergesTxt: string,
  addedTokens: Record<string, number>,
  // tokenizer_config.json as parsed JSON: only added_tokens_decoder is read, defensively.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  tokenizerConfig: any,
): object {
  const merges = parseMergesTxt(mergesTxt, vocab);
  const decoderEntries: Record<string, unknown> =
    tokenizerConfig !== null && typeof tokenizerConfig === 'object' && tokenizerConfig.added_tokens_decoder
      ? tokenizerConfig.added_tokens_decoder
      : {};

  // added_tokens_decoder carries the flags; added_tokens.json only names and numbers the tokens.
  const byId = new Map<number, AddedTokenEntry>();
  for (const [idText, raw] of Object.entries(decoderEntries)) {
    const id = Number(idText);
    const entry = raw as Partial<AddedTokenEntry> | null;
    if (!Number.isInteger(id) || entry === null || typeof entry !== 'object' || typeof entry.content !== 'string') {
      throw new ByteLevelBpeAssemblyError(
        `tokenizer_config.json's added_tokens_decoder entry ${JSON.stringify(idText)} is not {content, ...} under an integer id; ` +
          'use the tokenizer_config.json from the model\'s repository.',
      );
    }
    byId.set(id, {
      id,
      content: entry.content,
      single_word: entry.single_word ?? false,
      lstrip: entry.lstrip ?? false,
      rstrip: entry.rstrip ?? false,
      normalized: entry.normalized ?? false,
      special: entry.special ?? false,
    });
  }
  for (const [content, id] of Object.entries(addedTokens)) {
    const known = byId.get(id);
    if (known === undefined) {
      // transformers treats tokens known only from added_tokens.json as normal added tokens.
      byId.set(id, { id, content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: false });
    } else if (known.content !== content) {
      throw new ByteLevelBpeAssemblyError(
        `added_tokens.json gives id ${id} to ${JSON.stringify(content)} but tokenizer_config.json gives it to ` +
          `${JSON.stringify(known.content)}; the files come from different tokenizers.`,
      );
    }
  }
  const added = [...byId.values()].sort((a, b) => a.id - b.id);
  const vocabIds = new Set(Object.values(vocab));
  for (const token of added) {
    if (vocabIds.has(token.id) && vocab[token.content] !== token.id) {
      throw new ByteLevelBpeAssemblyError(
        `The added token ${JSON.stringify(token.content)} has id ${token.id}, which vocab.json already uses for another piece; ` +
          'the files come from different tokenizers.',
      );
    }
  }

  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: { type: 'NFC' },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: QWEN2_PRETOKENIZE_REGEX }, behavior: 'Isolated', invert: false },
        byteLevel,
      ],
    },
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

/** merges.txt: an optional "#version" line, then one "left right" pair per line in rank order. */
function parseMergesTxt(mergesTxt: string, vocab: Record<string, number>): [string, string][] {
  const merges: [string, string][] = [];
  const lines = mergesTxt.split('\n');
  lines.forEach((rawLine, index) => {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line === '' || (index === 0 && line.startsWith('#version'))) return;
    const parts = line.split(' ');
    const [left, right] = parts;
    if (parts.length !== 2 || left === undefined || right === undefined || left === '' || right === '') {
      throw new ByteLevelBpeAssemblyError(
        `merges.txt line ${index + 1} is ${JSON.stringify(line)}, not "left right"; re-download merges.txt.`,
      );
    }
    // Rust tokenizers refuses a merge whose parts or result are not in the vocab; so do we.
    if (vocab[left] === undefined || vocab[right] === undefined || vocab[left + right] === undefined) {
      throw new ByteLevelBpeAssemblyError(
        `merges.txt line ${index + 1} merges ${JSON.stringify(left)} and ${JSON.stringify(right)}, but vocab.json ` +
          'lacks one of them or their concatenation; vocab.json and merges.txt come from different tokenizers.',
      );
    }
    merges.push([left, right]);
  });
  return merges;
}
