import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CheckpointFormatError } from '../src/builder/errors';
import { readLlama2cCheckpoint } from '../src/builder/llama2cCheckpoint';

const bytes = new Uint8Array(readFileSync(join(__dirname, '../../shared/models/stories260K/stories260K.bin')));

describe('readLlama2cCheckpoint', () => {
  it('reads the stories260K header and cuts the weights to their shapes', () => {
    const header = new Int32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + 28));
    const [dim, hidden, layers, heads, kvHeads, vocab, seqLen] = Array.from(header) as number[];
    const { config, weights } = readLlama2cCheckpoint(bytes);
    expect(config).toMatchObject({
      architecture: 'llama',
      hiddenSize: dim,
      intermediateSize: hidden,
      numLayers: layers,
      numHeads: heads,
      numKvHeads: kvHeads,
      headDim: dim! / heads!,
      vocabSize: Math.abs(vocab!),
      maxPositionEmbeddings: seqLen,
      ropeLayout: 'interleaved',
      tieWordEmbeddings: vocab! > 0,
    });
    expect(weights.embedTokens.length).toBe(Math.abs(vocab!) * dim!);
    expect(weights.layers).toHaveLength(layers!);
    expect(weights.layers[0]!.k.length).toBe(kvHeads! * (dim! / heads!) * dim!);
    expect(weights.layers[0]!.gate.length).toBe(hidden! * dim!);
    // The first float after the header is the first embedding value.
    expect(weights.embedTokens[0]).toBe(new DataView(bytes.buffer, bytes.byteOffset).getFloat32(28, true));
    expect(weights.lmHead).toBeUndefined();
  });

  it('says expected vs actual size for a truncated or oversized file', () => {
    const truncated = bytes.subarray(0, bytes.byteLength - 4);
    expect(() => readLlama2cCheckpoint(truncated)).toThrow(CheckpointFormatError);
    expect(() => readLlama2cCheckpoint(truncated)).toThrow(`expected ${bytes.byteLength} bytes`);
    expect(() => readLlama2cCheckpoint(truncated)).toThrow(`got ${truncated.byteLength}`);
    const oversized = new Uint8Array(bytes.byteLength + 8);
    oversized.set(bytes);
    expect(() => readLlama2cCheckpoint(oversized)).toThrow(/too long/);
    expect(() => readLlama2cCheckpoint(bytes.subarray(0, 10))).toThrow(CheckpointFormatError);
  });

  it('reads an unshared classifier when vocab_size is negative', () => {
    const { config } = readLlama2cCheckpoint(bytes);
    const classifierBytes = config.vocabSize * config.hiddenSize * 4;
    const untied = new Uint8Array(bytes.byteLength + classifierBytes);
    untied.set(bytes);
    const view = new DataView(untied.buffer);
    view.setInt32(20, -config.vocabSize, true);
    view.setFloat32(bytes.byteLength, 0.5, true);
    const model = readLlama2cCheckpoint(untied);
    expect(model.config.tieWordEmbeddings).toBe(false);
    expect(model.weights.lmHead?.length).toBe(config.vocabSize * config.hiddenSize);
    expect(model.weights.lmHead?.[0]).toBe(0.5);
  });
});
