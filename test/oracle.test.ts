// The oracle against llama2.c itself: greedy decoding of the real stories260K model must
// reproduce the text run.c printed (temperature 0) byte for byte.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readLlama2cCheckpoint } from '../src/builder/llama2cCheckpoint';
import { OracleDecoder, argmax } from './oracle';

const STORIES = join(__dirname, '../../shared/models/stories260K');
const BOS = 1;

/** The pieces of a llama2.c tokenizer file (tok512.bin): int32 max length, then per token float32 score, int32 length, bytes. */
function readTokenizerPieces(bytes: Uint8Array, vocabSize: number): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pieces: Uint8Array[] = [];
  let offset = 4; // max_token_length
  for (let i = 0; i < vocabSize; i++) {
    const length = view.getInt32(offset + 4, true); // after the float32 score
    offset += 8;
    pieces.push(bytes.slice(offset, offset + length));
    offset += length;
  }
  return pieces;
}

/**
 * The bytes run.c prints for `next` after `previous`: the leading space of the first piece
 * after BOS is dropped, "<0xNN>" pieces are the raw byte NN, and (like run.c's safe_printf)
 * a lone byte that is neither printable nor whitespace is not printed.
 */
function decodePiece(pieces: Uint8Array[], previous: number, next: number): Uint8Array {
  let piece = pieces[next]!;
  if (previous === BOS && piece[0] === 0x20) piece = piece.subarray(1);
  const text = Buffer.from(piece).toString('latin1');
  const byteMatch = /^<0x([0-9A-F]{2})>$/.exec(text);
  if (byteMatch) piece = Uint8Array.of(parseInt(byteMatch[1]!, 16));
  if (piece.length === 1) {
    const byte = piece[0]!;
    const printable = byte >= 0x20 && byte < 0x7f;
    const whitespace = byte === 0x20 || (byte >= 0x09 && byte <= 0x0d);
    if (!printable && !whitespace) return new Uint8Array(0);
  }
  return piece;
}

describe('OracleDecoder on stories260K', () => {
  it('reproduces llama2.c greedy output from BOS (256 steps)', () => {
    const model = readLlama2cCheckpoint(readFileSync(join(STORIES, 'stories260K.bin')));
    const pieces = readTokenizerPieces(readFileSync(join(STORIES, 'tok512.bin')), model.config.vocabSize);
    const golden = readFileSync(join(STORIES, 'golden-greedy-from-bos-256.txt'));

    // run.c: `while (pos < steps)` forwards `token` at `pos`, picks `next`, stops if next is
    // BOS, else prints it; then a final newline.
    const steps = 256;
    const oracle = new OracleDecoder(model);
    const printed: Uint8Array[] = [];
    let token = BOS;
    for (let pos = 0; pos < steps; pos++) {
      const [logits] = oracle.forward([token], [pos]);
      const next = argmax(logits!);
      if (next === BOS) break;
      printed.push(decodePiece(pieces, token, next));
      token = next;
    }
    printed.push(Uint8Array.of(0x0a));
    expect(Buffer.concat(printed).toString('utf8')).toBe(golden.toString('utf8'));
  });
});
