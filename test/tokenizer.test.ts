// ModelTokenizer on real tokenizer files: the Phi-3 Llama-style tokenizer.json, the Qwen2.5
// tokenizer assembled from vocab.json + merges.txt, and the converted stories260K tokenizer;
// the streaming decoder; chat templates; and the load errors.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertLlama2cTokenizer } from '../src/builder/llama2cTokenizer';
import { assembleByteLevelBpeTokenizer } from '../src/builder/qwenTokenizer';
import { ModelTokenizer } from '../src/engine/tokenizer/modelTokenizer';
import { NoChatTemplateError, TokenizerLoadError } from '../src/engine/tokenizer/errors';

const SHARED = path.resolve(__dirname, '../../shared');
const PHI3 = path.join(SHARED, 'formats/phi3-llama-style-tokenizer');
const QWEN = path.join(SHARED, 'formats/qwen2.5-coder-instruct');
const STORIES = path.join(SHARED, 'models/stories260K');

const tempDirs: string[] = [];
function tempDir(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'freqkv-tok-'));
  tempDirs.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  return dir;
}
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

const readJson = (file: string): Record<string, unknown> => JSON.parse(readFileSync(file, 'utf8'));

/** mulberry32: a tiny seeded generator so the random cases repeat from run to run. */
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
const pick = <T>(rand: () => number, items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;

/** Streams ids through a fresh decoder and returns every emitted piece, the flush last. */
function streamPieces(tok: ModelTokenizer, ids: number[], skipSpecialTokens: boolean): string[] {
  const stream = tok.createStreamDecoder({ skipSpecialTokens });
  const pieces = ids.map((id) => stream.push(id));
  pieces.push(stream.flush());
  return pieces;
}

const SOURCE_CODE = [
  'def main(argv):\r\n',
  '\tif len(argv) > 1:\r\n',
  '\t\tprint(f"héllo, {argv[1]}!")  # café — naïve\r\n',
  '\treturn {"日本": [1, 2, 3], \'emoji\': "😀🦀"}\n',
  '    x = a  +  b\t// trailing spaces   \n',
  '\n\n}\n',
].join('');

describe('the stories260K tokenizer converted from tok512.bin', () => {
  let tok: ModelTokenizer;
  beforeAll(async () => {
    const converted = convertLlama2cTokenizer(new Uint8Array(readFileSync(path.join(STORIES, 'tok512.bin'))));
    tok = await ModelTokenizer.fromFiles({ tokenizerJson: converted.tokenizerJson, tokenizerConfig: converted.tokenizerConfig });
  });

  it('decodes the golden greedy text from its own encoding unchanged', () => {
    const golden = readFileSync(path.join(STORIES, 'golden-greedy-from-bos-256.txt'), 'utf8');
    const ids = tok.encode(golden);
    expect(ids[0]).toBe(tok.bosTokenId);
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(golden);
  });

  it('has no chat template, and says so with a named error', () => {
    expect(tok.hasChatTemplate).toBe(false);
    expect(() => tok.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true })).toThrow(
      NoChatTemplateError,
    );
    expect(() => tok.applyChatTemplate([], { addGenerationPrompt: true })).toThrow(/no chat template/);
  });

  it('streams random id sequences (byte pieces of multi-byte characters included) exactly like decode', () => {
    const rand = mulberry32(7);
    const multiByte = ['é', 'ß', '日', '本', '😀', '🦀', '—', '\u0301'];
    const ordinary = Array.from({ length: tok.vocabSize - 259 }, (_, i) => 259 + i);
    const bytePiece = (b: number): number => b + 3;
    let sequences = 0;
    for (let n = 0; n < 1500; n++) {
      const ids: number[] = rand() < 0.5 ? [1] : [];
      const length = Math.floor(rand() * 30);
      for (let i = 0; i < length; i++) {
        const r = rand();
        if (r < 0.55) ids.push(pick(rand, ordinary));
        else if (r < 0.85) for (const b of Buffer.from(pick(rand, multiByte), 'utf8')) ids.push(bytePiece(b));
        else if (r < 0.93) ids.push(bytePiece(Math.floor(rand() * 256)));
        else ids.push(pick(rand, [0, 1, 2]));
      }
      for (const skipSpecialTokens of [false, true]) {
        const pieces = streamPieces(tok, ids, skipSpecialTokens);
        expect(pieces.join(''), JSON.stringify(ids)).toBe(tok.decode(ids, { skipSpecialTokens }));
      }
      sequences++;
    }
    expect(sequences).toBe(1500);
  });

  it('never streams half a character when the ids spell valid text', () => {
    const rand = mulberry32(11);
    const chars = [...'abc xyz.,\n\t', 'é', '日本', '😀', '🦀', '“', '”'];
    for (let n = 0; n < 300; n++) {
      let text = '';
      for (let i = Math.floor(rand() * 25); i > 0; i--) text += pick(rand, chars);
      const ids = tok.encode(text);
      const pieces = streamPieces(tok, ids, true);
      for (const piece of pieces) expect(piece, JSON.stringify(text)).not.toContain('\uFFFD');
      expect(pieces.join('')).toBe(text);
    }
  });

  it('keeps a byte order mark that is spelled with byte pieces (tokenizers.js alone drops it)', () => {
    for (const text of ['\uFEFFimport x', 'a\uFEFFb']) {
      const ids = tok.encode(text);
      expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(text);
      expect(streamPieces(tok, ids, true).join('')).toBe(text);
    }
  });

  it('streams the Llama leading-space rule like whole decoding: the first piece after BOS loses its space', () => {
    const ids = tok.encode('Once upon a time');
    const pieces = streamPieces(tok, ids, true);
    expect(pieces.join('')).toBe('Once upon a time');
    expect(pieces.find((p) => p.length > 0)).toBe('Once');
  });
});

describe('the Phi-3 Llama-style tokenizer.json', () => {
  let tok: ModelTokenizer;
  const config = readJson(path.join(PHI3, 'tokenizer_config.json'));
  const tokenizerJson = readJson(path.join(PHI3, 'tokenizer.json'));
  const addedId = (content: string): number => {
    const entry = (tokenizerJson['added_tokens'] as { id: number; content: string }[]).find((t) => t.content === content);
    if (entry === undefined) throw new Error(`no added token ${content}`);
    return entry.id;
  };
  beforeAll(async () => {
    tok = await ModelTokenizer.fromFolder(PHI3);
  });

  it('reads BOS and EOS from tokenizer_config.json', () => {
    expect(tok.bosTokenId).toBe(addedId(config['bos_token'] as string));
    expect(tok.eosTokenIds).toEqual([addedId(config['eos_token'] as string)]);
    expect(tok.vocabSize).toBe(Math.max(...(tokenizerJson['added_tokens'] as { id: number }[]).map((t) => t.id)) + 1);
  });

  it('round-trips source code with tabs, CRLF and non-ASCII, and adds BOS by default', () => {
    const ids = tok.encode(SOURCE_CODE);
    expect(ids[0]).toBe(tok.bosTokenId);
    expect(tok.encode(SOURCE_CODE, { addSpecialTokens: false })).toEqual(ids.slice(1));
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(SOURCE_CODE);
    // Kept specials: the decoder's Strip only drops a space at the very start, so the dummy
    // prefix after <s> stays, as in Hugging Face's Llama tokenizers.
    expect(tok.decode(ids)).toBe(`<s> ${SOURCE_CODE}`);
    const pieces = streamPieces(tok, ids, true);
    expect(pieces.join('')).toBe(SOURCE_CODE);
  });

  it('encodes special tokens to their single ids', () => {
    for (const special of ['<|user|>', '<|end|>', '<|assistant|>', '<|system|>', '<|endoftext|>']) {
      expect(tok.encode(special, { addSpecialTokens: false }), special).toEqual([addedId(special)]);
    }
    const prompt = tok.encode('<|user|>\nhi<|end|>\n<|assistant|>\n', { addSpecialTokens: false });
    expect(prompt.filter((id) => id >= 32000)).toEqual([addedId('<|user|>'), addedId('<|end|>'), addedId('<|assistant|>')]);
    // The Prepend normalizer runs on each text section between added tokens, so "\n" after
    // <|end|> gains a dummy-prefix space, and <|assistant|> has rstrip: it swallows its "\n".
    expect(tok.decode(prompt, { skipSpecialTokens: true })).toBe('\nhi \n');
  });

  it('renders its chat template for a system and a user message with the generation prompt', () => {
    const prompt = tok.applyChatTemplate(
      [
        { role: 'system', content: 'You are a careful assistant.' },
        { role: 'user', content: 'What does main() do?' },
      ],
      { addGenerationPrompt: true },
    );
    // The template writes '<|' + role + '|>\n' + content + '<|end|>\n' per message, then '<|assistant|>\n'.
    expect(prompt).toBe(
      '<|system|>\nYou are a careful assistant.<|end|>\n<|user|>\nWhat does main() do?<|end|>\n<|assistant|>\n',
    );
    expect(tok.applyChatTemplate([{ role: 'user', content: 'x' }], { addGenerationPrompt: false })).toBe('<|user|>\nx<|end|>\n');
  });

  it('prefers chat_template.jinja over the inline chat_template, as transformers does', async () => {
    const dir = tempDir({
      'tokenizer.json': JSON.stringify(tokenizerJson),
      'tokenizer_config.json': JSON.stringify(config),
      'chat_template.jinja': '{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}{{ eos_token }}{% endfor %}',
    });
    const withFile = await ModelTokenizer.fromFolder(dir);
    expect(withFile.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true })).toBe(
      `${config['bos_token']}[user] hi${config['eos_token']}`,
    );
  });
});

describe('the Qwen2.5 tokenizer assembled from vocab.json and merges.txt', () => {
  let tok: ModelTokenizer;
  const vocab = readJson(path.join(QWEN, 'vocab.json')) as Record<string, number>;
  const added = readJson(path.join(QWEN, 'added_tokens.json')) as Record<string, number>;
  const config = readJson(path.join(QWEN, 'tokenizer_config.json'));
  beforeAll(async () => {
    const tokenizerJson = assembleByteLevelBpeTokenizer(
      vocab,
      readFileSync(path.join(QWEN, 'merges.txt'), 'utf8'),
      added,
      config,
    );
    const dir = tempDir({
      'tokenizer.json': JSON.stringify(tokenizerJson),
      'tokenizer_config.json': JSON.stringify(config),
    });
    tok = await ModelTokenizer.fromFolder(dir);
  });

  it('has no BOS, ends turns with <|im_end|>, and counts added tokens in the vocabulary size', () => {
    expect(tok.bosTokenId).toBeUndefined();
    expect(tok.eosTokenIds).toEqual([added['<|im_end|>']]);
    expect(tok.vocabSize).toBe(Math.max(...Object.values(added)) + 1);
  });

  it('encodes chat markers and other added tokens to their single ids', () => {
    for (const special of ['<|im_start|>', '<|im_end|>', '<|endoftext|>', '<|fim_prefix|>', '<tool_call>']) {
      expect(tok.encode(special), special).toEqual([added[special]]);
    }
    const ids = tok.encode('<|im_start|>user\nhi<|im_end|>');
    expect(ids[0]).toBe(added['<|im_start|>']);
    expect(ids[ids.length - 1]).toBe(added['<|im_end|>']);
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('user\nhi');
  });

  it('encodes known cases the way the pre-tokenizer regex and byte-level mapping dictate', () => {
    // "hello world" splits into "hello" and " world"; the byte-level map writes the space as
    // 'Ġ', and both pieces are whole vocab entries, so each is one token.
    const ids = tok.encode('hello world');
    expect(ids.map((id) => tok.idToToken(id))).toEqual(['hello', 'Ġworld']);
    expect(ids).toEqual([vocab['hello'], vocab['Ġworld']]);
    // \p{N} matches one digit at a time, so numbers are split into single digits.
    expect(tok.encode('2024').map((id) => tok.idToToken(id))).toEqual(['2', '0', '2', '4']);
    // Nothing is prepended: Qwen adds no BOS and no prefix space.
    expect(tok.encode('hello')).toEqual([vocab['hello']]);
    // A newline becomes the byte-level character 'Ċ'.
    expect(tok.encode('\n').map((id) => tok.idToToken(id))).toEqual(['Ċ']);
  });

  it('round-trips source code with tabs, CRLF and non-ASCII, also when streamed', () => {
    const ids = tok.encode(SOURCE_CODE);
    expect(tok.decode(ids)).toBe(SOURCE_CODE);
    expect(streamPieces(tok, ids, false).join('')).toBe(SOURCE_CODE);
    for (const piece of streamPieces(tok, ids, false)) expect(piece).not.toContain('\uFFFD');
  });

  it('streams random id sequences (byte-level pieces of split characters included) exactly like decode', () => {
    const rand = mulberry32(99);
    const specials = Object.values(added);
    // Byte-level pieces for single bytes: U+0100 + byte for the bytes the map moves, the byte itself otherwise.
    const singleBytePieces = Object.entries(vocab)
      .filter(([piece]) => [...piece].length === 1)
      .map(([, id]) => id);
    for (let n = 0; n < 800; n++) {
      const ids: number[] = [];
      for (let i = Math.floor(rand() * 25); i > 0; i--) {
        const r = rand();
        if (r < 0.5) ids.push(Math.floor(rand() * 151643));
        else if (r < 0.9) ids.push(pick(rand, singleBytePieces));
        else ids.push(pick(rand, specials));
      }
      for (const skipSpecialTokens of [false, true]) {
        expect(streamPieces(tok, ids, skipSpecialTokens).join(''), JSON.stringify(ids)).toBe(
          tok.decode(ids, { skipSpecialTokens }),
        );
      }
    }
  });

  it('renders the Qwen2.5 chat template with the default system prompt when there is no system message', () => {
    expect(tok.applyChatTemplate([{ role: 'user', content: 'Explain this code.' }], { addGenerationPrompt: true })).toBe(
      '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' +
        '<|im_start|>user\nExplain this code.<|im_end|>\n' +
        '<|im_start|>assistant\n',
    );
  });

  it('renders the Qwen2.5 chat template for a system and a user message', () => {
    expect(
      tok.applyChatTemplate(
        [
          { role: 'system', content: 'You answer questions about a repository.' },
          { role: 'user', content: 'Where is main?' },
          { role: 'assistant', content: 'In src/cli/main.ts.' },
          { role: 'user', content: 'Thanks.' },
        ],
        { addGenerationPrompt: false },
      ),
    ).toBe(
      '<|im_start|>system\nYou answer questions about a repository.<|im_end|>\n' +
        '<|im_start|>user\nWhere is main?<|im_end|>\n' +
        '<|im_start|>assistant\nIn src/cli/main.ts.<|im_end|>\n' +
        '<|im_start|>user\nThanks.<|im_end|>\n',
    );
    expect(
      tok.applyChatTemplate(
        [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Hi' },
        ],
        { addGenerationPrompt: true },
      ),
    ).toBe('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
  });
});

describe('loading errors', () => {
  it('names the folder and tokenizer.json when the file is missing', async () => {
    const dir = tempDir({ 'config.json': '{}' });
    const load = ModelTokenizer.fromFolder(dir);
    await expect(load).rejects.toThrow(TokenizerLoadError);
    await expect(ModelTokenizer.fromFolder(dir)).rejects.toThrow(`The model folder ${dir} has no tokenizer.json`);
  });

  it('names the file and suggests re-downloading when tokenizer.json does not parse (a Git LFS pointer)', async () => {
    const pointer = 'version https://git-lfs.github.com/spec/v1\noid sha256:cedf87\nsize 7031645\n';
    const dir = tempDir({ 'tokenizer.json': pointer });
    const error = await ModelTokenizer.fromFolder(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TokenizerLoadError);
    expect((error as Error).name).toBe('TokenizerLoadError');
    expect((error as Error).message).toContain(path.join(dir, 'tokenizer.json'));
    expect((error as Error).message).toMatch(/not valid JSON .*re-download/);
  });

  it('names tokenizer_config.json when that one is broken', async () => {
    const dir = tempDir({ 'tokenizer.json': readFileSync(path.join(PHI3, 'tokenizer.json'), 'utf8'), 'tokenizer_config.json': '{"bos_token": ' });
    await expect(ModelTokenizer.fromFolder(dir)).rejects.toThrow(path.join(dir, 'tokenizer_config.json'));
  });

  it('refuses a tokenizer.json that is JSON but not a tokenizer', async () => {
    const dir = tempDir({ 'tokenizer.json': '{"model": {"type": "Nonsense"}}' });
    await expect(ModelTokenizer.fromFolder(dir)).rejects.toThrow(TokenizerLoadError);
  });
});
