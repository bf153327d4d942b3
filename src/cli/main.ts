// The `freqkv` command line: the engine without VS Code.
//
//   freqkv generate [--model DIR] [--onnx-file FILE] [--prompt TEXT] [--max-tokens N] [--temperature T] [--top-p P]
//                   [--top-k K] [--repetition-penalty R] [--seed S] [--threads N] [--json]
//   freqkv ask [--workspace DIR] [--mode segmented|sequential] [--store DIR] [generate's options] QUESTION
//   freqkv index [--workspace DIR] [--store DIR] [ask's model and cache options]
//   freqkv summarize [generate's options] FILE
//   freqkv convert llama2c --checkpoint FILE --tokenizer FILE --out DIR [--weights float32|int8|int4]
//   freqkv convert random --config FILE --tokenizer DIR --out DIR [--seed S] [--weights …] [--kv-cache float32|float16]
//                  [--gguf FILE.gguf [--gguf-type q4_0|f16|f32]]
//   freqkv convert safetensors --input DIR --out DIR [--weights …]
//   freqkv bench fidelity [--model DIR] [--onnx-file FILE] [--text FILE …] [--json OUT] [--out DIR] …
//   freqkv bench workspace [--workspace DIR] [--json OUT] [--quick]
//   freqkv bench speed [--model DIR …] [--onnx-file FILE] [--contexts 256,1024,4096,16384] [--json OUT] [--markdown OUT] [--quick] …
//   freqkv download [--repo OWNER/NAME] [--variant q4] [--out DIR] [--endpoint URL] [--json]

import { FreqKvError } from '../engine/errors';
import { UsageError } from './args';
import { runGenerate } from './generateCommand';
import { runConvert } from './convertCommand';
import { runBench } from './benchFidelity';
import { runBenchSpeed, runSpeedProbe } from './benchSpeed';
import { runAsk, runIndex, runSummarize } from './workspaceCommands';
import { DOWNLOAD_USAGE, runDownload } from './downloadCommand';
import { GENERATION_OPTIONS_USAGE } from './generationOptions';

const USAGE = `Usage:
  freqkv generate [--prompt TEXT] ${GENERATION_OPTIONS_USAGE}
  freqkv ask [--workspace DIR] [--include GLOB …] [--exclude GLOB …] [--max-file-bytes B]
                  [--mode segmented|sequential] [--store DIR] [--codec float32|int8|rvq]
                  [--store-max-mb M] [--max-workspace-tokens T] [--first-answer-seconds S]
                  ${GENERATION_OPTIONS_USAGE} QUESTION
  freqkv index [--workspace DIR] [--store DIR] [--codec float32|int8|rvq] [--include GLOB …]
                  [--exclude GLOB …] [--max-file-bytes B] [--max-files N] [--store-max-mb M]
                  [--capacity N] [--sinks S] [--retain G] [--recent R] [--threads N] [--json]
  freqkv summarize [--max-file-bytes B] ${GENERATION_OPTIONS_USAGE} FILE
  freqkv convert llama2c --checkpoint FILE --tokenizer FILE --out DIR [--weights float32|int8|int4]
  freqkv convert random --config CONFIG.json --tokenizer DIR --out DIR [--seed S]
                  [--weights float32|int8|int4] [--kv-cache float32|float16]
                  [--gguf FILE.gguf [--gguf-type q4_0|f16|f32]]   (the same weights for llama.cpp; --out optional then)
  freqkv convert safetensors --input DIR --out DIR [--weights float32|int8|int4]
                  (every convert: [--tied-classifier int8|int4|float32] [--matmul-accuracy int8|float32]
                   [--kv-outputs new|present] [--quant-block-size N] [--prefill-graph int8|none])
  freqkv bench fidelity [--model DIR] [--onnx-file FILE] [--text FILE …] [--json OUT] [--out DIR]
                  [--capacities 64,128,256,512] [--retains 0.25,0.5,0.75] [--recent 0,0.25,0.5]
                  [--sinks S] [--samples K] [--sample-tokens T] [--recall-gap G]
                  [--streaming-chunk C] [--threads N]
  freqkv bench workspace [--model DIR] [--onnx-file FILE] [--workspace DIR] [--json OUT] [--quick] [--no-sequential]
                  [--no-fidelity] [--repeats R] [--threads N] [--codec C] [--codecs float32,int8,rvq]
                  [--question Q] [--index-seconds S] [--first-answer-seconds S] [--max-files N]
  freqkv bench speed [--model DIR [--gguf FILE.gguf] …] [--onnx-file FILE] [--shapes qwen2.5-0.5b,…
                  [--int4-variants int4,int4-c4,int4-b128,…]] [--rounds R]
                  [--contexts 256,1024,4096,16384] [--decode-steps 32]
                  [--engines freqkv,transformers.js,llama.cpp] [--caches full,freqkv] [--capacity N]
                  [--threads N] [--prefill-chunk N] [--one-forward-limit N] [--models-dir DIR]
                  [--text FILE] [--json OUT] [--markdown OUT] [--quick] [--append]
  ${DOWNLOAD_USAGE}

The default model is the embedded one (models/stories260K, a tiny story model). --onnx-file picks
the graph of a folder that holds several (onnx-community's model.onnx, model_q4.onnx,
model_fp16.onnx, model_q4f16.onnx, …), by name in DIR or DIR/onnx; without it: the graph
Download Model fetched, the only one, or the first of model.onnx, model_fp32, model_q4,
model_int8, model_uint8, model_quantized, model_q4f16, model_fp16. Before loading, a graph is
rewritten in memory for speed where it has the pattern (int8 arithmetic for MatMulNBits without
an accuracy_level, logits of the last position only, an int8 tied classifier in quantized graphs);
--graph-rewrite off runs the file exactly as exported.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  switch (command) {
    case 'generate':
      return runGenerate(rest);
    case 'ask':
      return runAsk(rest);
    case 'index':
      return runIndex(rest);
    case 'summarize':
      return runSummarize(rest);
    case 'convert':
      return runConvert(rest);
    case 'bench':
      if (rest[0] === 'speed') return runBenchSpeed(rest.slice(1));
      if (rest[0] === 'speed-probe') return runSpeedProbe(rest.slice(1));
      return runBench(rest);
    case 'download':
      return runDownload(rest);
    default:
      throw new UsageError(`unknown command '${command}'.\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof FreqKvError || (error instanceof TypeError && (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))) {
      console.error(`freqkv: ${(error as Error).message}`);
      process.exitCode = 2;
    } else {
      console.error(error);
      process.exitCode = 1;
    }
  },
);
