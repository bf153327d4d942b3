// Weight error of int4 block quantization: plain max|w| / 7 block scales (quantizeNBits) against
// nested scales, whole multiples of one unit per row so the matrix is also exact int8 values
// (quantizeInt4Nested, what the builder writes with a prefill graph). Prints the relative RMS
// error ‖Ŵ − W‖ / ‖W‖ for Gaussian and heavy-tailed rows at block sizes 32, 64 and 128.
// Usage: node scripts/run-ts.js scripts/nested-quant-error.ts
import { quantizeInt4Nested, quantizeNBits } from '../src/builder/quantize';
import { createRng } from '../src/engine/random';

const relativeError = (approx: Float32Array, exact: Float32Array): number => {
  let error = 0;
  let norm = 0;
  for (let i = 0; i < approx.length; i++) {
    error += (approx[i]! - exact[i]!) ** 2;
    norm += exact[i]! ** 2;
  }
  return Math.sqrt(error / norm);
};

const random = createRng(3);
const gauss = (): number => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
const cases: [string, number, number, () => number][] = [
  ['gaussian', 256, 896, gauss],
  ['student-t3 (heavy tails)', 256, 896, () => gauss() / Math.sqrt((gauss() ** 2 + gauss() ** 2 + gauss() ** 2) / 3)],
  ['gaussian K=4864', 64, 4864, gauss],
];
for (const [name, n, k, draw] of cases) {
  const w = Float32Array.from({ length: n * k }, draw);
  const line = [32, 64, 128].map(
    (block) => `b${block} plain ${relativeError(quantizeNBits(w, n, k, 4, block).dequantized, w).toFixed(4)} nested ${relativeError(quantizeInt4Nested(w, n, k, block).dequantized, w).toFixed(4)}`,
  );
  console.log(`${name}: ${line.join(' | ')}`);
}
