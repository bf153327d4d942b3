// Writes a complete model folder in the Hugging Face / onnx-community layout:
//   config.json, generation_config.json, tokenizer.json, tokenizer_config.json,
//   special_tokens_map.json (when given), onnx/model.onnx (+ onnx/model.onnx_data), and with
//   `prefillGraph` onnx/model_prefill.onnx (+ model_prefill.onnx_data): the same model with the
//   same weights for prompt chunks, its linear maps run as integer GEMMs (decoderGraph.ts).
// The folder is assembled next to its destination and renamed into place, so a failed build
// never leaves a half-written model where the engine would find it.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildDecoderGraph, type DecoderGraphOptions } from './decoderGraph';
import type { DecoderModel } from './decoderWeights';
import { toHfConfig } from '../engine/model/modelConfig';
import { PREFILL_GRAPH_FILE } from '../engine/model/graphFile';

export interface TokenizerFiles {
  tokenizerJson: object;
  tokenizerConfig: object;
  specialTokensMap?: object;
}

export interface ModelFolderOptions extends DecoderGraphOptions {
  /**
   * Put weights in onnx/model.onnx_data instead of inside model.onnx. 'auto' does so above
   * 256 MiB of weights (protobuf cannot hold more than 2 GiB in one message anyway).
   */
  externalData?: 'auto' | 'always' | 'never';
  /** File name of the external data (real exports use model.onnx_data or model.onnx.data). */
  externalDataName?: string;
  /** Split external weights into numbered files of at most about this many bytes. */
  externalDataPartBytes?: number;
  /** Extra entries for config.json (for example, where the model came from). */
  extraConfig?: Record<string, unknown>;
  /**
   * Also write onnx/model_prefill.onnx, the prefill graph (int4 weights only): both graphs get
   * nested int4 scales, so they hold the same weights; the engine runs prompt chunks on it.
   * Default: with int4 weights and int8 arithmetic (a float32-arithmetic build is for exactness,
   * which the integer GEMM would not keep).
   */
  prefillGraph?: boolean;
}

const AUTO_EXTERNAL_BYTES = 256 * 1024 * 1024;

export function writeModelFolder(outDir: string, model: DecoderModel, tokenizer: TokenizerFiles, options: ModelFolderOptions): { effectiveModel: DecoderModel } {
  const target = path.resolve(outDir);
  const staging = `${target}.building-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(path.join(staging, 'onnx'), { recursive: true });
  try {
    const prefillGraph = options.prefillGraph ?? (options.weights === 'int4' && (options.matMulAccuracy ?? 'int8') === 'int8');
    if (prefillGraph && options.weights !== 'int4') {
      throw new Error(`a prefill graph needs int4 weights (these are ${options.weights})`);
    }
    const graphOptions: DecoderGraphOptions = prefillGraph ? { ...options, int4Scales: 'nested', linearKernel: 'MatMulNBits' } : options;
    const weightBytes = estimateWeightBytes(model);
    const external =
      options.externalData === 'always' || (options.externalData !== 'never' && weightBytes > AUTO_EXTERNAL_BYTES);
    const save = (graph: ReturnType<typeof buildDecoderGraph>['graph'], name: string, dataName: string): void =>
      graph.save(path.join(staging, 'onnx', name), {
        externalDataFile: external ? dataName : undefined,
        externalDataPartBytes: options.externalDataPartBytes,
        opsets: [
          { domain: '', version: 17 },
          { domain: 'com.microsoft', version: 1 },
        ],
        producer: 'freqkv-builder',
      });
    // One graph at a time, so only one graph's initializers are in memory.
    const { effectiveModel } = (() => {
      const built = buildDecoderGraph(model, graphOptions);
      save(built.graph, 'model.onnx', options.externalDataName ?? 'model.onnx_data');
      return built;
    })();
    if (prefillGraph) {
      const prefill = buildDecoderGraph(model, { ...graphOptions, linearKernel: 'int8-gemm', effectiveWeights: false });
      save(prefill.graph, PREFILL_GRAPH_FILE, 'model_prefill.onnx_data');
    }

    const { config } = model;
    const hfConfig = {
      ...toHfConfig(config),
      ...(options.kvCache === 'float16' ? { 'transformers.js_config': { kv_cache_dtype: 'float16' } } : {}),
      ...options.extraConfig,
    };
    writeJson(path.join(staging, 'config.json'), hfConfig);
    writeJson(path.join(staging, 'generation_config.json'), {
      bos_token_id: config.bosTokenId,
      eos_token_id: config.eosTokenId,
      do_sample: false,
    });
    writeJson(path.join(staging, 'tokenizer.json'), tokenizer.tokenizerJson);
    writeJson(path.join(staging, 'tokenizer_config.json'), tokenizer.tokenizerConfig);
    if (tokenizer.specialTokensMap) writeJson(path.join(staging, 'special_tokens_map.json'), tokenizer.specialTokensMap);

    fs.rmSync(target, { recursive: true, force: true });
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.renameSync(staging, target);
    return { effectiveModel };
  } catch (error) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw error;
  }
}

function writeJson(file: string, value: unknown): void {
  fs.writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

function estimateWeightBytes(model: DecoderModel): number {
  const w = model.weights;
  let floats = w.embedTokens.length + w.finalNorm.length + (w.lmHead?.length ?? 0);
  for (const layer of w.layers) {
    for (const value of Object.values(layer)) if (value instanceof Float32Array) floats += value.length;
  }
  return floats * 4;
}
