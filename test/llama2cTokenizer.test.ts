// The converted stories260K tokenizer must encode exactly like llama2.c's run.c. The reference
// here is an independent re-implementation of run.c's encode/decode working directly on the
// bytes of tok512.bin, so the converter's merge list is checked against the rule it encodes,
// not against itself.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertLlama2cTokenizer, Llama2cTokenizerFormatError } from '../src/builder/llama2cTokenizer';
import { ModelTokenizer } from '../src/engine/tokenizer/modelTokenizer';

const STORIES = path.resolve(__dirname, '../../shared/models/stories260K');
const tokBytes = new Uint8Array(readFileSync(path.join(STORIES, 'tok512.bin')));

// ---------------------------------------------------------------------------------------------
// Test-local llama2.c tokenizer (run.c's build_tokenizer, encode and decode), on raw bytes.
// Strings are kept as latin1 "byte strings" so that concatenation is C's byte concatenation.

interface RunCTokenizer {
  vocab: string[];
  scores: number[];
  lookup: Map<string, number>;
}

function readRunCTokenizer(bytes: Uint8Array): RunCTokenizer {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const vocab: string[] = [];
  const scores: number[] = [];
  let offset = 4;
  while (offset < buf.length) {
    scores.push(buf.readFloatLE(offset));
    const len = buf.readInt32LE(offset + 4);
    vocab.push(buf.subarray(offset + 8, offset + 8 + len).toString('latin1'));
    offset += 8 + len;
  }
  const lookup = new Map<string, number>();
  vocab.forEach((s, i) => lookup.set(s, i));
  return { vocab, scores, lookup };
}

function runCEncode(t: RunCTokenizer, text: string, bos: boolean): number[] {
  const bytes = Buffer.from(text, 'utf8');
  const tokens: number[] = [];
  if (bos) tokens.push(1);
  if (bytes.length > 0) {
    const dummy = t.lookup.get(' ');
    if (dummy === undefined) throw new Error('tok512.bin has no " " piece');
    tokens.push(dummy);
  }
  // Code points: a lead byte and up to three continuation bytes.
  let i = 0;
  while (i < bytes.length) {
    let j = i + 1;
    while (j < bytes.length && ((bytes[j] as number) & 0xc0) === 0x80 && j - i < 4) j++;
    const id = t.lookup.get(bytes.subarray(i, j).toString('latin1'));
    if (id !== undefined) {
      tokens.push(id);
    } else {
      for (let k = i; k < j; k++) tokens.push((bytes[k] as number) + 3);
    }
    i = j;
  }
  for (;;) {
    let bestScore = -1e10;
    let bestId = -1;
    let bestIdx = -1;
    for (let k = 0; k < tokens.length - 1; k++) {
      const merged = (t.vocab[tokens[k] as number] as string) + (t.vocab[tokens[k + 1] as number] as string);
      const id = t.lookup.get(merged);
      if (id !== undefined && (t.scores[id] as number) > bestScore) {
        bestScore = t.scores[id] as number;
        bestId = id;
        bestIdx = k;
      }
    }
    if (bestIdx === -1) break;
    tokens.splice(bestIdx, 2, bestId);
  }
  return tokens;
}

function runCDecode(t: RunCTokenizer, ids: number[]): string {
  const out: number[] = [];
  let prev = -1;
  for (const id of ids) {
    let piece = t.vocab[id] as string;
    if (prev === 1 && piece.startsWith(' ')) piece = piece.slice(1);
    const byte = /^<0x([0-9A-F]{2})>$/.exec(piece);
    const pieceBytes = byte ? [parseInt(byte[1] as string, 16)] : Array.from(Buffer.from(piece, 'latin1'));
    // run.c prints the BOS/EOS pieces too; generation output never contains them past the first.
    if (id !== 1 && id !== 2) out.push(...pieceBytes);
    prev = id;
  }
  return Buffer.from(out).toString('utf8');
}

// ---------------------------------------------------------------------------------------------

/** mulberry32: a tiny seeded generator so the random strings repeat from run to run. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABET = [
  ...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789',
  ...' .,;:!?\'"()[]{}<>/\\-_=+*&^%$#@~`|',
  ' ', ' ', ' ', '  ', '\n', '\n\n', '\t', '\r\n', '\r',
  'é', 'ñ', 'ü', 'ß', '日', '本', '語', '😀', '🦀', '“', '”', '’', '—', '…', '™', '\u200a', '\uFEFF',
  'the', ' the', 'and', ' was', 'Lily', 'ing',
];

function randomString(rand: () => number, maxParts: number): string {
  const parts = Math.floor(rand() * (maxParts + 1));
  let s = '';
  for (let i = 0; i < parts; i++) s += ALPHABET[Math.floor(rand() * ALPHABET.length)] as string;
  return s;
}

/** Texts that spell an added token are encoded as that token by Hugging Face, as characters by run.c. */
const spellsAddedToken = (s: string): boolean => ['<s>', '</s>', '<unk>'].some((t) => s.includes(t));

describe('convertLlama2cTokenizer on stories260K tok512.bin', () => {
  const runC = readRunCTokenizer(tokBytes);
  const converted = convertLlama2cTokenizer(tokBytes, { modelMaxLength: 512 });
  let dir: string;
  let tok: ModelTokenizer;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'freqkv-llama2c-tok-'));
    writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(converted.tokenizerJson));
    writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(converted.tokenizerConfig));
    writeFileSync(path.join(dir, 'special_tokens_map.json'), JSON.stringify(converted.specialTokensMap));
    tok = await ModelTokenizer.fromFolder(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps ids and specials: 512 tokens, <s> = 1, </s> = 2, byte pieces at 3..258', () => {
    expect(tok.vocabSize).toBe(runC.vocab.length);
    expect(tok.bosTokenId).toBe(1);
    expect(tok.eosTokenIds).toEqual([2]);
    expect(tok.tokenToId('<unk>')).toBe(0);
    for (let b = 0; b < 256; b++) {
      expect(tok.idToToken(b + 3)).toBe(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    }
    for (let id = 259; id < runC.vocab.length; id++) {
      const piece = Buffer.from(runC.vocab[id] as string, 'latin1').toString('utf8');
      expect(tok.idToToken(id)).toBe(piece.replaceAll(' ', '\u2581'));
    }
    expect(tok.hasChatTemplate).toBe(false);
  });

  it('writes the tokenizer_config.json of a Llama tokenizer', () => {
    expect(converted.tokenizerConfig).toMatchObject({
      bos_token: '<s>',
      eos_token: '</s>',
      unk_token: '<unk>',
      add_bos_token: true,
      add_eos_token: false,
      model_max_length: 512,
      tokenizer_class: 'LlamaTokenizer',
    });
    expect(converted.tokenizerConfig).not.toHaveProperty('chat_template');
  });

  const fixedTexts = [
    '',
    ' ',
    'a',
    'Once upon a time',
    ' leading space',
    'trailing space ',
    'two  spaces   and    four',
    'Tom and his dog went to the park.',
    'digits 0123456789 and 3.14159, 1e-9, 42!',
    'punctuation: ;:!?()[]{}<>/\\|@#$%^&*-_=+~`"\'',
    'line one\nline two\n\nline four\n',
    '\tindented\twith\ttabs\n\t\tdouble',
    'windows\r\nline\r\nendings\r\n',
    'café naïve résumé ß',
    '日本語のテキスト',
    'emoji 😀 🦀 👨‍👩‍👧 done',
    '“quoted” — it’s… ™',
    '<unknown> <0x41> <s x>',
  ];

  it('encodes fixed texts exactly like run.c', () => {
    for (const text of fixedTexts) {
      expect(tok.encode(text), JSON.stringify(text)).toEqual(runCEncode(runC, text, true));
      expect(tok.encode(text, { addSpecialTokens: false }), JSON.stringify(text)).toEqual(runCEncode(runC, text, false));
    }
  });

  it('encodes the golden texts exactly like run.c and decodes them back unchanged', () => {
    for (const name of ['golden-greedy-from-bos-256.txt', 'golden-greedy-prompt-200.txt']) {
      const text = readFileSync(path.join(STORIES, name), 'utf8');
      const ids = tok.encode(text);
      expect(ids).toEqual(runCEncode(runC, text, true));
      expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(text);
      expect(runCDecode(runC, ids)).toBe(text);
    }
  });

  it('encodes 3000 seeded random strings exactly like run.c and round-trips them', () => {
    const rand = mulberry32(0x5eed);
    let compared = 0;
    for (let n = 0; n < 3000; n++) {
      const text = randomString(rand, 40);
      if (spellsAddedToken(text)) continue;
      const ids = tok.encode(text);
      expect(ids, JSON.stringify(text)).toEqual(runCEncode(runC, text, true));
      expect(tok.decode(ids, { skipSpecialTokens: true }), JSON.stringify(text)).toBe(text);
      expect(runCDecode(runC, ids), JSON.stringify(text)).toBe(text);
      compared++;
    }
    expect(compared).toBeGreaterThan(2900);
  });

  it('encodes every concatenation of two pieces exactly like run.c (where merge-order ties would show)', () => {
    const pieces = runC.vocab.slice(259).map((p) => Buffer.from(p, 'latin1').toString('utf8'));
    for (const a of pieces) {
      for (const b of pieces) {
        const text = a + b;
        expect(tok.encode(text, { addSpecialTokens: false }), JSON.stringify(text)).toEqual(runCEncode(runC, text, false));
      }
    }
  });

  it('refuses a file that is not in llama2.c layout', () => {
    expect(() => convertLlama2cTokenizer(tokBytes.subarray(0, 100))).toThrow(Llama2cTokenizerFormatError);
    expect(() => convertLlama2cTokenizer(new Uint8Array(2))).toThrow(/not a llama2\.c tokenizer file/);
  });
});
