// Properties of the oracle that later comparisons rely on (the stories260K golden test is in oracle.test.ts).

import { describe, expect, it } from 'vitest';
import { randomDecoderModel } from '../src/builder/randomWeights';
import { OracleDecoder, applyRope } from './oracle';
import { tinyLlama, tinyQwen2 } from './testModels';
import { ropeInverseFrequencies } from '../src/engine/model/modelConfig';

describe('OracleDecoder', () => {
  it('gives the same logits and cache for a batch as for one token at a time', () => {
    for (const config of [tinyQwen2, tinyLlama]) {
      const model = randomDecoderModel(config, 11);
      const tokens = [1, 17, 42, 5, 9];
      const positions = tokens.map((_, i) => i);
      const batch = new OracleDecoder(model);
      const batchLogits = batch.forward(tokens, positions);
      const single = new OracleDecoder(model);
      const singleLogits = tokens.map((token, i) => single.forward([token], [positions[i]!])[0]!);
      expect(batchLogits).toEqual(singleLogits);
      expect(batch.keys(1)).toEqual(single.keys(1));
      expect(batch.keys(0)).toHaveLength(tokens.length);
      expect(batch.keys(0)[0]!.length).toBe(config.numKvHeads * config.headDim);
      batch.reset();
      expect(batch.length).toBe(0);
      expect(batch.forward(tokens, positions)).toEqual(batchLogits);
    }
  });

  it('caches post-RoPE keys: rotating row j back by -j gives the same row for any position', () => {
    const model = randomDecoderModel(tinyQwen2, 2);
    const { numKvHeads, headDim, ropeLayout } = tinyQwen2;
    const invFreq = ropeInverseFrequencies(tinyQwen2);
    const unrotated = (position: number): Float64Array => {
      const oracle = new OracleDecoder(model);
      oracle.forward([7], [position]);
      const key = Float64Array.from(oracle.keys(0)[0]!);
      applyRope(key, numKvHeads, headDim, -position, invFreq, ropeLayout);
      return key;
    };
    const atZero = unrotated(0);
    const atThirty = unrotated(30);
    const oracleAt30 = new OracleDecoder(model);
    oracleAt30.forward([7], [30]);
    // The raw cached rows differ (position is applied) but agree once the rotation is undone.
    expect(Array.from(oracleAt30.keys(0)[0]!)).not.toEqual(Array.from(atZero).map(Math.fround));
    atThirty.forEach((x, i) => expect(x).toBeCloseTo(atZero[i]!, 5));
  });
});
