// The engine as the CLI and the extension use it: a model folder loaded once (graph,
// tokenizer, config), and generation requests served one at a time.

import { inspectModelFolder, type ModelFolder } from './model/modelFolder';
import { DecoderSession } from './model/decoderSession';
import { ModelTokenizer } from './tokenizer/modelTokenizer';
import { runGeneration, type GenerationEvent } from './generate/generator';
import type { SamplingOptions } from './generate/sampler';
import { EmptyPromptError, EngineBusyError, InvalidRequestError } from './generate/errors';
import type { KvCache } from './kv/kvCache';
import { createRng } from './random';
import { createCompressor, type CacheOptions, type CompressorChoice } from './kv/createCompressor';

export interface EngineOptions {
  modelDir: string;
  /** The graph to load when the folder holds several, e.g. model_q4f16.onnx (default: see model/graphFile.ts). */
  onnxFile?: string;
  threads?: number;
  /**
   * Rewrite the graph for speed before loading it (model/graphRewrite.ts: int8 MatMulNBits
   * arithmetic, logits of the last position only, an int8 tied classifier). Default true; false
   * runs the file exactly as exported.
   */
  graphRewrite?: boolean;
}

export interface GenerateRequest {
  /** Text to continue; encoded with the model's special tokens (BOS for Llama-style models). */
  prompt?: string;
  /** Token ids to continue, instead of `prompt`. */
  promptIds?: number[];
  maxNewTokens: number;
  sampling: SamplingOptions;
  seed?: number;
  stopStrings?: string[];
  signal?: AbortSignal;
  prefillChunkSize?: number;
  /** Cache rows; defaults to the model's trained context. Ignored when `cache` gives a capacity. */
  capacity?: number;
  /** The cache policy (default: full); see createCompressor. */
  cache?: CacheOptions;
  /**
   * A pre-filled cache to continue from (an assembled workspace cache); its capacity must be the
   * policy's. The prompt is prefilled after its rows.
   */
  startCache?: KvCache;
  /** Tokens the rows of `startCache` stand for (counted in tokensSeen). */
  cachedTokens?: number;
}

export class Engine {
  private busy = false;

  private constructor(
    readonly folder: ModelFolder,
    readonly tokenizer: ModelTokenizer,
    readonly session: DecoderSession,
  ) {}

  static async load(options: EngineOptions): Promise<Engine> {
    const folder = inspectModelFolder(options.modelDir, { onnxFile: options.onnxFile });
    const tokenizer = await ModelTokenizer.fromFolder(folder.dir);
    const session = await DecoderSession.open(folder, { threads: options.threads, rewrite: options.graphRewrite === false ? false : undefined });
    return new Engine(folder, tokenizer, session);
  }

  /** The model's trained context length. */
  get contextLength(): number {
    return this.folder.config.maxPositionEmbeddings;
  }

  get stopTokenIds(): number[] {
    return [...new Set([...this.folder.eosTokenIds, ...this.tokenizer.eosTokenIds])];
  }

  /** Prompt ids for a request: its ids, or its text encoded; an empty prompt starts from BOS. */
  encodePrompt(request: Pick<GenerateRequest, 'prompt' | 'promptIds'>): number[] {
    const ids = this.promptIdsOf(request);
    const vocab = this.folder.config.vocabSize;
    const outside = ids.find((id) => !Number.isInteger(id) || id < 0 || id >= vocab);
    if (outside !== undefined) {
      throw new InvalidRequestError(
        `The prompt has token id ${outside}, but the model in ${this.folder.dir} has only ${vocab} tokens (config.json vocab_size): ` +
          `its tokenizer.json (${this.tokenizer.vocabSize} tokens) does not belong to this model. Re-download or re-convert the model folder.`,
      );
    }
    return ids;
  }

  private promptIdsOf(request: Pick<GenerateRequest, 'prompt' | 'promptIds'>): number[] {
    if (request.promptIds && request.promptIds.length > 0) return request.promptIds;
    const text = request.prompt ?? '';
    if (text === '') {
      const bos = this.tokenizer.bosTokenId ?? this.folder.bosTokenId;
      if (bos === undefined) throw new EmptyPromptError(`The prompt is empty and ${this.folder.dir} has no BOS token to start from; give a prompt.`);
      return [bos];
    }
    return this.tokenizer.encode(text, { addSpecialTokens: true });
  }

  /** The compressor a request's cache options make, with warnings to show; throws CacheOptionsError. */
  chooseCompressor(request: Pick<GenerateRequest, 'cache' | 'capacity'>): CompressorChoice {
    const options: CacheOptions = { method: 'full', ...request.cache };
    options.capacity ??= request.capacity ?? this.contextLength;
    return createCompressor(options, this.folder.config);
  }

  async *generate(request: GenerateRequest): AsyncGenerator<GenerationEvent> {
    if (this.busy) throw new EngineBusyError('A generation is already running on this engine; wait for it to finish or cancel it first.');
    this.busy = true;
    try {
      const { compressor } = this.chooseCompressor(request);
      const promptIds = this.encodePrompt(request);
      if (request.startCache && request.startCache.capacity !== compressor.capacity) {
        throw new InvalidRequestError(`the start cache holds ${request.startCache.capacity} rows but the cache policy has ${compressor.capacity}.`);
      }
      const cache = request.startCache ?? this.session.createCache(compressor.capacity);
      const decoder = this.tokenizer.createStreamDecoder({ skipSpecialTokens: true });
      for (const id of promptIds) decoder.push(id);
      decoder.flush();
      yield* runGeneration(this.session, cache, {
        promptIds,
        maxNewTokens: request.maxNewTokens,
        sampling: request.sampling,
        random: createRng(request.seed ?? 0),
        stopTokenIds: this.stopTokenIds,
        stopStrings: request.stopStrings,
        signal: request.signal,
        prefillChunkSize: request.prefillChunkSize,
        decoder,
        compressor,
        cachedTokens: request.cachedTokens,
      });
    } finally {
      this.busy = false;
    }
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
