// Scratch: weight error of int4 block quantization, plain against "nested" (block scales
// integer multiples of a per-row scale, so the int4 matrix is exactly an int8 per-row matrix).
import { quantizeNBits } from '../src/builder/quantize';
import { createRng } from '../src/engine/random';

function nested(w: Float32Array, n: number, k: number, block: number, maxMult: number): Float32Array {
  const out = new Float32Array(n * k);
  for (let r = 0; r < n; r++) {
    const row = w.subarray(r * k, (r + 1) * k);
    const blocks = Math.ceil(k / block);
    const ideal: number[] = [];
    for (let b = 0; b < blocks; b++) {
      let max = 0;
      for (let i = b * block; i < Math.min(k, (b + 1) * block); i++) max = Math.max(max, Math.abs(row[i]!));
      ideal.push(max / 7);
    }
    const unit = Math.max(...ideal) / maxMult || 1;
    for (let b = 0; b < blocks; b++) {
      // best multiple by squared error
      let best = Infinity;
      let bestScale = unit;
      for (let m = Math.max(1, Math.floor(ideal[b]! / unit)); m <= Math.min(maxMult, Math.ceil(ideal[b]! / unit) + 1); m++) {
        const s = unit * m;
        let e = 0;
        for (let i = b * block; i < Math.min(k, (b + 1) * block); i++) {
          const q = Math.max(-7, Math.min(7, Math.round(row[i]! / s)));
          e += (q * s - row[i]!) ** 2;
        }
        if (e < best) { best = e; bestScale = s; }
      }
      for (let i = b * block; i < Math.min(k, (b + 1) * block); i++) out[r * k + i] = Math.max(-7, Math.min(7, Math.round(row[i]! / bestScale))) * bestScale;
    }
  }
  return out;
}

const rel = (a: Float32Array, b: Float32Array): number => {
  let e = 0, s = 0;
  for (let i = 0; i < a.length; i++) { e += (a[i]! - b[i]!) ** 2; s += b[i]! ** 2; }
  return Math.sqrt(e / s);
};

const random = createRng(3);
const gauss = (): number => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
for (const [name, n, k, gen] of [
  ['gaussian', 256, 896, gauss],
  ['student-t3 (heavy tails)', 256, 896, () => gauss() / Math.sqrt((gauss() ** 2 + gauss() ** 2 + gauss() ** 2) / 3)],
  ['gaussian K=4864', 64, 4864, gauss],
] as const) {
  const w = Float32Array.from({ length: n * k }, gen);
  const line: string[] = [];
  for (const block of [32, 64, 128]) {
    line.push(`b${block} plain ${rel(quantizeNBits(w, n, k, 4, block).dequantized, w).toFixed(4)} nested ${rel(nested(w, n, k, block, 18), w).toFixed(4)}`);
  }
  console.log(`${name}: ${line.join(' | ')}`);
}
