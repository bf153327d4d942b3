// The one module that imports onnxruntime-node. It runs the decoder graph on a chunk of
// tokens against a KvCache and stores the `present` rows back into the cache.

import * as ort from 'onnxruntime-node';
import { KvCache } from '../kv/kvCache';
import type { ModelFolder } from './modelFolder';
import { ModelRuntimeError } from './errors';

export interface SessionOptions {
  /** Intra-op threads; 0 lets onnxruntime choose (one per core). */
  threads?: number;
}

export class DecoderSession {
  private constructor(
    readonly folder: ModelFolder,
    private readonly session: ort.InferenceSession,
  ) {}

  static async open(folder: ModelFolder, options: SessionOptions = {}): Promise<DecoderSession> {
    try {
      const session = await ort.InferenceSession.create(folder.onnxPath, {
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
        intraOpNumThreads: options.threads ?? 0,
        interOpNumThreads: 1,
        logSeverityLevel: 3,
      });
      return new DecoderSession(folder, session);
    } catch (error) {
      throw new ModelRuntimeError(
        `onnxruntime could not load ${folder.onnxPath}: ${(error as Error).message}. The file may be corrupt or use operators this onnxruntime-node (${ort.env.versions.node}) lacks; rebuild or re-download the model, or choose another.`,
      );
    }
  }

  get vocabSize(): number {
    return this.folder.config.vocabSize;
  }

  /** A cache shaped for this model. */
  createCache(capacity: number): KvCache {
    const { config, signature } = this.folder;
    return new KvCache({ numLayers: config.numLayers, numKvHeads: config.numKvHeads, headDim: config.headDim }, signature.kvElementType, capacity);
  }

  /**
   * Runs `tokens` at slot positions cache.rows … cache.rows + n − 1, appends their keys and
   * values to the cache, and returns the logits of every token: [n, vocab] row-major.
   */
  async forward(tokens: ArrayLike<number>, cache: KvCache): Promise<Float32Array> {
    const n = tokens.length;
    const past = cache.rows;
    const { numLayers, numKvHeads, headDim } = cache.shape;
    const kvType = cache.elementType === 'float16' ? 'float16' : 'float32';
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(Array.from(tokens, (t) => BigInt(t))), [1, n]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(past + n).fill(1n), [1, past + n]),
    };
    if (this.folder.signature.hasPositionIds) {
      const positions = new BigInt64Array(n);
      for (let i = 0; i < n; i++) positions[i] = BigInt(past + i);
      feeds.position_ids = new ort.Tensor('int64', positions, [1, n]);
    }
    for (let layer = 0; layer < numLayers; layer++) {
      feeds[`past_key_values.${layer}.key`] = new ort.Tensor(kvType, cache.keys(layer), [1, numKvHeads, past, headDim]);
      feeds[`past_key_values.${layer}.value`] = new ort.Tensor(kvType, cache.values(layer), [1, numKvHeads, past, headDim]);
    }
    let outputs: ort.InferenceSession.ReturnType;
    try {
      outputs = await this.session.run(feeds);
    } catch (error) {
      throw new ModelRuntimeError(`onnxruntime failed on a chunk of ${n} tokens after ${past} cached rows: ${(error as Error).message}`);
    }
    const keys = [];
    const values = [];
    for (let layer = 0; layer < numLayers; layer++) {
      keys.push(outputs[`present.${layer}.key`]!.data as Float32Array | Uint16Array);
      values.push(outputs[`present.${layer}.value`]!.data as Float32Array | Uint16Array);
    }
    cache.replaceRows(keys, values, past + n);
    return outputs.logits!.data as Float32Array;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
