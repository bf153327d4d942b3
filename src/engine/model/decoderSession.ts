// With batchedMatMul.ts, the module that imports onnxruntime-node. It runs the decoder graph
// on a chunk of tokens against a KvCache and stores the `present` rows back into the cache; it
// also offers compressors a batched MatMul on onnxruntime (`multiply`).

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { KvCache } from '../kv/kvCache';
import { decodeOnnxModel, type ModelFolder } from './modelFolder';
import { ModelRuntimeError } from './errors';
import type { BatchedMultiply } from '../kv/compressor';
import { createBatchedMultiply } from './batchedMatMul';
import { float16ToFloat32 } from '../floatFormats';
import { rewriteDecoderGraph, type GraphRewriteOptions } from './graphRewrite';

/** Which logits a forward pass returns: every token's, the last token's, or none. */
export type LogitsWanted = 'all' | 'last' | 'none';

export interface SessionOptions {
  /** Intra-op threads; 0 lets onnxruntime choose (one per core). */
  threads?: number;
  /** Rewrites of the graph before loading (graphRewrite.ts); false loads the file as it is. */
  rewrite?: GraphRewriteOptions | false;
  /** onnxruntime session options over the engine's defaults (for benchmarks that tune them). */
  onnxruntime?: ort.InferenceSession.SessionOptions;
  /** Run chunks of PREFILL_GRAPH_MIN_TOKENS or more on the folder's prefill graph, if it has one (default true). */
  prefillGraph?: boolean;
}

/**
 * Chunks of at least this many tokens run on the prefill graph (integer GEMMs on int8 weights);
 * shorter ones on the decode graph (MatMulNBits on the same weights as int4). On the 0.5B
 * shape's matrices the two cross between 8 and 16 rows (scripts/matmul-kernels.ts).
 */
export const PREFILL_GRAPH_MIN_TOKENS = 16;

export class DecoderSession {
  private constructor(
    readonly folder: ModelFolder,
    private readonly session: ort.InferenceSession,
    private readonly threads: number,
    /** The loaded graph takes num_logits_to_keep (as written, or added by the rewrite). */
    private readonly hasLogitsToKeep: boolean,
    /** What the rewrite changed in the graph before loading (empty: loaded as written). */
    readonly graphChanges: string[],
    /** The session of the folder's prefill graph, for chunks of PREFILL_GRAPH_MIN_TOKENS or more. */
    private readonly prefill: ort.InferenceSession | undefined,
  ) {}

  /** The prefill graph this session runs long chunks on, if any. */
  get prefillGraphPath(): string | undefined {
    return this.prefill ? this.folder.prefillOnnxPath : undefined;
  }

  private matMul: Promise<{ multiply: BatchedMultiply; release: () => Promise<void> }> | undefined;

  /** A batched MatMul on onnxruntime with the decoder's thread setting, opened on first use. */
  readonly multiply: BatchedMultiply = async (m, rows, inner, x, batch, width) => {
    this.matMul ??= createBatchedMultiply(this.threads);
    return (await this.matMul).multiply(m, rows, inner, x, batch, width);
  };

  private mask = new BigInt64Array(0);

  static async open(folder: ModelFolder, options: SessionOptions = {}): Promise<DecoderSession> {
    let loading: string | undefined = folder.onnxPath;
    try {
      const sessionOptions: ort.InferenceSession.SessionOptions = {
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
        intraOpNumThreads: options.threads ?? 0,
        interOpNumThreads: 1,
        logSeverityLevel: 3,
        // Worker threads sleep between their tasks instead of spinning: spinning took the cores
        // the JavaScript between steps (sampling, the cache) and other processes need, and
        // measured slower (docs/speed.md).
        extra: { session: { 'intra_op.allow_spinning': '0' } },
        ...options.onnxruntime,
      };
      const rewrite = options.rewrite === false ? undefined : rewriteDecoderGraph(decodeOnnxModel(fs.readFileSync(folder.onnxPath)), folder.onnxPath, options.rewrite);
      let session: ort.InferenceSession;
      if (rewrite?.model) {
        // Loaded from memory: external weights are found in the graph's own folder.
        const bytes = onnx.ModelProto.encode(rewrite.model).finish();
        session = await ort.InferenceSession.create(bytes, {
          ...sessionOptions,
          extra: { ...sessionOptions.extra, session: { ...(sessionOptions.extra?.session as object | undefined), model_external_initializers_file_folder_path: path.dirname(folder.onnxPath) } },
        });
      } else {
        session = await ort.InferenceSession.create(folder.onnxPath, sessionOptions);
      }
      loading = folder.prefillOnnxPath;
      // The builder writes the prefill graph with num_logits_to_keep and the decode graph's
      // signature (checked by the folder inspection), so it needs no rewrite.
      const prefill = folder.prefillOnnxPath && options.prefillGraph !== false ? await ort.InferenceSession.create(folder.prefillOnnxPath, sessionOptions) : undefined;
      return new DecoderSession(folder, session, options.threads ?? 0, folder.signature.hasLogitsToKeep || (rewrite?.hasLogitsToKeep ?? false), rewrite?.changes ?? [], prefill);
    } catch (error) {
      throw new ModelRuntimeError(
        `onnxruntime could not load ${loading}: ${(error as Error).message}. The file may be corrupt or use operators this onnxruntime-node (${ort.env.versions.node}) lacks; rebuild or re-download the model, or choose another.`,
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
   * values to the cache, and returns logits [rows, vocab] row-major: of every token with
   * `logits: 'all'` (the default, for scoring), of the last token only with 'last' (generation),
   * none with 'none' (prefill chunks whose logits nobody reads; an empty array comes back).
   * A graph with the num_logits_to_keep input computes only the rows asked for (the classifier
   * is a sixth of a token's work on a 150k vocabulary); without it the graph computes every row
   * and 'last' returns a view of the last one.
   *
   * (Tried and dropped: having onnxruntime write `present` into reused buffers of the cache
   * through preallocated fetches made decoding slower, 0.27–0.91× in scripts/decode-ab.ts:
   * onnxruntime-node 1.30 still copies, and the graph's Concat copies the cache anyway. Graphs
   * that output only the new rows avoid both copies; see decoderGraph.ts.)
   */
  async forward(tokens: ArrayLike<number>, cache: KvCache, options: { logits?: LogitsWanted } = {}): Promise<Float32Array> {
    const n = tokens.length;
    const past = cache.rows;
    const total = past + n;
    const wanted = options.logits ?? 'all';
    const { numLayers, numKvHeads, headDim } = cache.shape;
    const kvType = cache.elementType === 'float16' ? 'float16' : 'float32';
    const ids = new BigInt64Array(n);
    for (let i = 0; i < n; i++) ids[i] = BigInt(tokens[i]!);
    // A graph that outputs only the new rows reads the cache's buffers where they lie, unused
    // rows masked; one that outputs the whole cache gets the rows alone and replaces them.
    const appends = this.folder.signature.kvOutputs === 'new';
    const buffers = appends ? cache.buffers() : undefined;
    const pastRows = buffers ? buffers.stride : past;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', ids, [1, n]),
      attention_mask: new ort.Tensor('int64', this.attentionMask(past, pastRows, n), [1, pastRows + n]),
    };
    if (this.folder.signature.hasPositionIds) {
      const positions = new BigInt64Array(n);
      for (let i = 0; i < n; i++) positions[i] = BigInt(past + i);
      feeds.position_ids = new ort.Tensor('int64', positions, [1, n]);
    }
    if (this.hasLogitsToKeep) {
      feeds.num_logits_to_keep = new ort.Tensor('int64', BigInt64Array.of(wanted === 'all' ? 0n : 1n), []);
    }
    for (let layer = 0; layer < numLayers; layer++) {
      feeds[`past_key_values.${layer}.key`] = new ort.Tensor(kvType, buffers ? buffers.keys[layer]! : cache.keys(layer), [1, numKvHeads, pastRows, headDim]);
      feeds[`past_key_values.${layer}.value`] = new ort.Tensor(kvType, buffers ? buffers.values[layer]! : cache.values(layer), [1, numKvHeads, pastRows, headDim]);
    }
    const cacheOutput = appends ? 'new_key_values' : 'present';
    let results: ort.InferenceSession.ReturnType;
    try {
      const session = this.prefill && n >= PREFILL_GRAPH_MIN_TOKENS ? this.prefill : this.session;
      results = wanted === 'none' ? await session.run(feeds, this.cacheOutputNames(cacheOutput)) : await session.run(feeds);
    } catch (error) {
      throw new ModelRuntimeError(`onnxruntime failed on a chunk of ${n} tokens after ${past} cached rows: ${(error as Error).message}`);
    }
    const keys = [];
    const values = [];
    for (let layer = 0; layer < numLayers; layer++) {
      keys.push(kvData(results[`${cacheOutput}.${layer}.key`]!));
      values.push(kvData(results[`${cacheOutput}.${layer}.value`]!));
    }
    if (appends) cache.appendRows(keys, values, n);
    else cache.replaceRows(keys, values, total);
    if (!results.logits) return new Float32Array(0);
    const logits = logitsData(results.logits);
    return wanted === 'last' ? logits.subarray(logits.length - this.vocabSize) : logits;
  }

  private cacheOutputNames(prefix: string): string[] {
    return Array.from({ length: this.folder.config.numLayers }, (_, layer) => [`${prefix}.${layer}.key`, `${prefix}.${layer}.value`]).flat();
  }

  /** attention_mask for `rows` cached rows in a past of `pastRows` (unused rows 0) and `n` new tokens. */
  private attentionMask(rows: number, pastRows: number, n: number): BigInt64Array {
    const length = pastRows + n;
    if (this.mask.length < length) this.mask = new BigInt64Array(Math.max(length, 2 * this.mask.length));
    const mask = this.mask.subarray(0, length);
    mask.fill(1n, 0, rows).fill(0n, rows, pastRows).fill(1n, pastRows, length);
    return mask;
  }

  async release(): Promise<void> {
    if (this.matMul) await (await this.matMul).release();
    await this.session.release();
    await this.prefill?.release();
  }
}

// The element types checkSignature allows, converted at the boundary: the cache keeps float16
// rows as their raw bits (compressors widen them to float32 and narrow them back), and the
// sampler reads float32 logits.

/** float16 tensor data as raw bits: a Uint16Array, or a view of the Float16Array newer runtimes give. */
function float16Bits(tensor: ort.Tensor): Uint16Array {
  const data = tensor.data as unknown as ArrayBufferView & { length: number };
  return data instanceof Uint16Array ? data : new Uint16Array(data.buffer, data.byteOffset, data.length);
}

function kvData(tensor: ort.Tensor): Float32Array | Uint16Array {
  if (tensor.type === 'float16') return float16Bits(tensor);
  if (tensor.type === 'float32') return tensor.data as Float32Array;
  throw new ModelRuntimeError(`onnxruntime returned a ${tensor.type} KV cache tensor; the model folder check allows only float32 and float16.`);
}

function logitsData(tensor: ort.Tensor): Float32Array {
  if (tensor.type === 'float32') return tensor.data as Float32Array;
  if (tensor.type === 'float16') {
    const bits = float16Bits(tensor);
    return float16ToFloat32(bits, new Float32Array(bits.length));
  }
  throw new ModelRuntimeError(`onnxruntime returned ${tensor.type} logits; the model folder check allows only float32 and float16.`);
}
