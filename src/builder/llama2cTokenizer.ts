// Converts llama2.c's tokenizer file (tok512.bin and friends) into the Hugging Face files a
// Llama model folder carries: tokenizer.json, tokenizer_config.json and special_tokens_map.json.
//
// llama2.c's file layout: int32 max_token_length, then per token (ids 0..n-1 in order) a
// float32 score, an int32 byte length and that many UTF-8 bytes. Ids 0, 1, 2 are <unk>, <s>
// and </s> (llama2.c stores the last two as "\n<s>\n" and "\n</s>\n"); ids 3..258 are the
// byte-fallback pieces <0x00>..<0xFF>; the rest are ordinary pieces with spaces written as ' '.
//
// llama2.c encodes by starting from single code points (bytes for unknown ones) and
// repeatedly merging the adjacent pair whose concatenation is a piece with the highest score,
// leftmost on ties. A BPE model reproduces that when its merge list holds every pair (a, b)
// of ordinary pieces whose concatenation is a piece, ranked by the concatenation's score
// (highest first): BPE also applies the best-ranked merge present, leftmost on ties. This is
// what transformers' SentencePieceExtractor does for Llama's tokenizer.model too.

import { FreqKvError } from '../engine/errors';

/** The tokenizer file is not in llama2.c's layout. */
export class Llama2cTokenizerFormatError extends FreqKvError {}

export interface Llama2cTokenizerOptions {
  /** Written as tokenizer_config.json's model_max_length: the model's trained context. */
  modelMaxLength?: number;
}

export interface ConvertedTokenizerFiles {
  tokenizerJson: object;
  tokenizerConfig: object;
  specialTokensMap: object;
}

/** One token of llama2.c's file, with its text as it appears in a Hugging Face vocab. */
interface Llama2cPiece {
  piece: string;
  score: number;
}

const SENTENCEPIECE_SPACE = '\u2581';
const UNK = '<unk>';
const BOS = '<s>';
const EOS = '</s>';
const SPECIAL_COUNT = 3;
const BYTE_PIECE_COUNT = 256;
/** The first id of an ordinary (mergeable) piece. */
const FIRST_ORDINARY_ID = SPECIAL_COUNT + BYTE_PIECE_COUNT;

export function convertLlama2cTokenizer(
  tok: Uint8Array,
  opts: Llama2cTokenizerOptions = {},
): ConvertedTokenizerFiles {
  const pieces = readLlama2cPieces(tok);
  const vocab: Record<string, number> = {};
  pieces.forEach(({ piece }, id) => {
    if (Object.prototype.hasOwnProperty.call(vocab, piece)) {
      throw new Llama2cTokenizerFormatError(
        `The llama2.c tokenizer lists the piece ${JSON.stringify(piece)} twice (ids ${vocab[piece]} and ${id}); ` +
          'a vocabulary needs unique pieces. Re-export the tokenizer with llama2.c\'s tokenizer.py.',
      );
    }
    vocab[piece] = id;
  });

  const addedTokens = [UNK, BOS, EOS].map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));

  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    // SentencePiece's dummy prefix and its space marker, as Llama tokenizer.json files write them.
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: SENTENCEPIECE_SPACE },
        { type: 'Replace', pattern: { String: ' ' }, content: SENTENCEPIECE_SPACE },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: BOS, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: BOS, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: BOS, type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [BOS]: { id: BOS, ids: [1], tokens: [BOS] } },
    },
    // The Strip drops the dummy prefix again, which is llama2.c's "drop the leading space of
    // the first piece after BOS".
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SENTENCEPIECE_SPACE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: UNK,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: deriveMerges(pieces, vocab),
    },
  };

  const addedTokensDecoder: Record<string, object> = {};
  for (const { id, ...rest } of addedTokens) {
    addedTokensDecoder[String(id)] = rest;
  }
  const tokenizerConfig = {
    add_bos_token: true,
    add_eos_token: false,
    added_tokens_decoder: addedTokensDecoder,
    bos_token: BOS,
    eos_token: EOS,
    unk_token: UNK,
    pad_token: null,
    clean_up_tokenization_spaces: false,
    // The Prepend normalizer puts the dummy prefix before every text section, also after a
    // special token, which is what transformers calls the legacy Llama behaviour.
    legacy: true,
    model_max_length: opts.modelMaxLength ?? 512,
    sp_model_kwargs: {},
    tokenizer_class: 'LlamaTokenizer',
    use_default_system_prompt: false,
  };
  const specialTokensMap = { bos_token: BOS, eos_token: EOS, unk_token: UNK };
  return { tokenizerJson, tokenizerConfig, specialTokensMap };
}

/** Reads every piece of a llama2.c tokenizer file, renaming specials and spaces the Hugging Face way. */
function readLlama2cPieces(tok: Uint8Array): Llama2cPiece[] {
  const view = new DataView(tok.buffer, tok.byteOffset, tok.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const malformed = (why: string): Llama2cTokenizerFormatError =>
    new Llama2cTokenizerFormatError(
      `This is not a llama2.c tokenizer file (${why}). Pass the tok*.bin written by llama2.c's tokenizer.py.`,
    );
  if (tok.byteLength < 4) throw malformed('it is shorter than its 4-byte header');
  let offset = 4;
  const pieces: Llama2cPiece[] = [];
  while (offset < tok.byteLength) {
    if (offset + 8 > tok.byteLength) throw malformed(`token ${pieces.length} is cut off in its header`);
    const score = view.getFloat32(offset, true);
    const length = view.getInt32(offset + 4, true);
    offset += 8;
    if (length < 0 || offset + length > tok.byteLength) {
      throw malformed(`token ${pieces.length} claims ${length} bytes`);
    }
    let text: string;
    try {
      text = utf8.decode(tok.subarray(offset, offset + length));
    } catch {
      throw malformed(`token ${pieces.length} is not valid UTF-8`);
    }
    offset += length;
    pieces.push({ piece: text, score });
  }
  if (pieces.length < FIRST_ORDINARY_ID) {
    throw malformed(`it has ${pieces.length} tokens, fewer than the ${FIRST_ORDINARY_ID} specials and byte pieces`);
  }
  return pieces.map(({ piece, score }, id) => {
    if (id < SPECIAL_COUNT) return { piece: [UNK, BOS, EOS][id] as string, score };
    if (id < FIRST_ORDINARY_ID) {
      const expected = `<0x${(id - SPECIAL_COUNT).toString(16).toUpperCase().padStart(2, '0')}>`;
      if (piece !== expected) throw malformed(`id ${id} should be the byte piece ${expected} but is ${JSON.stringify(piece)}`);
      return { piece, score };
    }
    return { piece: piece.replaceAll(' ', SENTENCEPIECE_SPACE), score };
  });
}

/**
 * Every pair of ordinary pieces whose concatenation is an ordinary piece, best score first.
 * Equal scores (only the same merged piece reached by different splits, in real files) are
 * ordered by merged id, then by left and right id, so the list is deterministic.
 */
function deriveMerges(pieces: Llama2cPiece[], vocab: Record<string, number>): [string, string][] {
  const ordinaryId = (text: string): number | undefined => {
    const id = vocab[text];
    return id !== undefined && id >= FIRST_ORDINARY_ID ? id : undefined;
  };
  const candidates: { left: number; right: number; merged: number; score: number }[] = [];
  for (let merged = FIRST_ORDINARY_ID; merged < pieces.length; merged++) {
    const { piece, score } = pieces[merged] as Llama2cPiece;
    // Split between code points only: pieces are whole UTF-8 strings, so llama2.c's byte-wise
    // concatenation can only produce a piece from two whole-code-point halves.
    const codePoints = Array.from(piece);
    for (let cut = 1; cut < codePoints.length; cut++) {
      const left = ordinaryId(codePoints.slice(0, cut).join(''));
      const right = ordinaryId(codePoints.slice(cut).join(''));
      if (left !== undefined && right !== undefined) candidates.push({ left, right, merged, score });
    }
  }
  candidates.sort((a, b) => b.score - a.score || a.merged - b.merged || a.left - b.left || a.right - b.right);
  return candidates.map(({ left, right }) => [
    (pieces[left] as Llama2cPiece).piece,
    (pieces[right] as Llama2cPiece).piece,
  ]);
}
