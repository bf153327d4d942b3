// `freqkv convert …`: builds model folders with the project's builder.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { readLlama2cCheckpoint } from '../builder/llama2cCheckpoint';
import { convertLlama2cTokenizer } from '../builder/llama2cTokenizer';
import { randomDecoderModel } from '../builder/randomWeights';
import { convertSafetensorsFolder } from '../builder/convertSafetensors';
import { readTokenizerFiles } from '../builder/tokenizerFiles';
import { writeModelFolder } from '../builder/modelFolderWriter';
import { GGUF_TENSOR_TYPES, writeGguf } from '../builder/gguf';
import { isNBitsBlockSize } from '../builder/quantize';
import { KV_OUTPUTS, type WeightFormat, type KvCacheType, type MatMulAccuracy } from '../builder/decoderGraph';
import { parseHfConfig } from '../engine/model/modelConfig';
import { UsageError, intOption } from './args';

const WEIGHT_FORMATS: WeightFormat[] = ['float32', 'int8', 'int4'];
const KV_TYPES: KvCacheType[] = ['float32', 'float16'];
const MATMUL_ACCURACIES: MatMulAccuracy[] = ['int8', 'float32'];

export async function runConvert(argv: string[]): Promise<number> {
  const [source, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      checkpoint: { type: 'string' },
      tokenizer: { type: 'string' },
      config: { type: 'string' },
      input: { type: 'string' },
      out: { type: 'string' },
      seed: { type: 'string' },
      weights: { type: 'string', default: 'float32' },
      'kv-cache': { type: 'string', default: 'float32' },
      'external-data': { type: 'string', default: 'auto' },
      gguf: { type: 'string' },
      'gguf-type': { type: 'string', default: 'q4_0' },
      'tied-classifier': { type: 'string', default: 'int8' },
      'matmul-accuracy': { type: 'string', default: 'int8' },
      'kv-outputs': { type: 'string', default: 'new' },
      'quant-block-size': { type: 'string' },
      'prefill-graph': { type: 'string' },
    },
    strict: true,
  });
  // `random --gguf FILE` writes the same seeded weights as a GGUF for llama.cpp (with or without --out).
  const gguf = source === 'random' ? values.gguf : undefined;
  if (values.gguf !== undefined && source !== 'random') throw new UsageError('--gguf is only for convert random.');
  const ggufType = oneOf(values['gguf-type'], 'gguf-type', GGUF_TENSOR_TYPES);
  const out = gguf !== undefined && values.out === undefined ? undefined : required(values.out, 'out');
  const weights = oneOf(values.weights, 'weights', WEIGHT_FORMATS);
  const kvCache = oneOf(values['kv-cache'], 'kv-cache', KV_TYPES);
  const externalData = oneOf(values['external-data'], 'external-data', ['auto', 'always', 'never'] as const);
  const tiedClassifier = oneOf(values['tied-classifier'], 'tied-classifier', WEIGHT_FORMATS);
  const matMulAccuracy = oneOf(values['matmul-accuracy'], 'matmul-accuracy', MATMUL_ACCURACIES);
  const kvOutputs = oneOf(values['kv-outputs'], 'kv-outputs', KV_OUTPUTS);
  const quantBlockSize = values['quant-block-size'] === undefined ? undefined : intOption(values['quant-block-size'], 'quant-block-size', 32);
  if (quantBlockSize !== undefined && !isNBitsBlockSize(quantBlockSize)) {
    throw new UsageError(`--quant-block-size must be a power of two of at least 16 (MatMulNBits' block sizes), not ${quantBlockSize}.`);
  }
  // The prefill graph (onnx/model_prefill.onnx): by default with int4 weights and int8 arithmetic.
  const prefillChoice = values['prefill-graph'] === undefined ? undefined : oneOf(values['prefill-graph'], 'prefill-graph', ['int8', 'none'] as const);
  if (prefillChoice === 'int8' && (weights !== 'int4' || matMulAccuracy !== 'int8')) {
    throw new UsageError(`--prefill-graph int8 needs --weights int4 with int8 arithmetic (got --weights ${weights} --matmul-accuracy ${matMulAccuracy}).`);
  }
  const prefillGraph = prefillChoice === undefined ? undefined : prefillChoice === 'int8';
  const graphOptions = { weights, kvCache, externalData, tiedClassifier, matMulAccuracy, kvOutputs, quantBlockSize, prefillGraph };
  const started = performance.now();

  switch (source) {
    case 'llama2c': {
      const checkpoint = required(values.checkpoint, 'checkpoint');
      const tokenizerFile = required(values.tokenizer, 'tokenizer');
      const model = readLlama2cCheckpoint(readInput(checkpoint));
      const tokenizer = convertLlama2cTokenizer(readInput(tokenizerFile), { modelMaxLength: model.config.maxPositionEmbeddings });
      writeModelFolder(out!, model, tokenizer, graphOptions);
      break;
    }
    case 'random': {
      const configFile = required(values.config, 'config');
      const config = parseHfConfig(JSON.parse(fs.readFileSync(configFile, 'utf8')) as unknown, configFile);
      const tokenizer = readTokenizerFiles(required(values.tokenizer, 'tokenizer'));
      const seed = intOption(values.seed, 'seed', 0);
      const model = randomDecoderModel(config, seed);
      if (gguf !== undefined) {
        const bytes = writeGguf(gguf, model, tokenizer, { tensorType: ggufType, name: `${path.basename(configFile, '.json')}-random-seed${seed}-${ggufType}` });
        console.error(`freqkv: wrote ${path.resolve(gguf)} (${(bytes / 1e6).toFixed(0)} MB, matrices ${ggufType})`);
      }
      if (out !== undefined) writeModelFolder(out, model, tokenizer, { ...graphOptions, extraConfig: { freqkv_random_seed: seed } });
      break;
    }
    case 'safetensors': {
      const input = required(values.input, 'input');
      await convertSafetensorsFolder(input, out!, graphOptions, values.tokenizer ?? input);
      break;
    }
    default:
      throw new UsageError(`convert needs a source: llama2c, random or safetensors (got '${source ?? ''}').`);
  }
  if (out !== undefined) console.error(`freqkv: wrote ${path.resolve(out)} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return 0;
}

function required(value: string | undefined, name: string): string {
  if (value === undefined || value === '') throw new UsageError(`--${name} is required.`);
  return value;
}

function oneOf<T extends string>(value: string | undefined, name: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')} (got '${value}').`);
  return value as T;
}

function readInput(file: string): Uint8Array {
  if (!fs.existsSync(file)) throw new UsageError(`${file} does not exist.`);
  return fs.readFileSync(file);
}
