// One weight matrix of the 0.5B shape through onnxruntime's candidate kernels, to see which
// reaches the CPU's int8 limit on prefill-sized (M = 128) and decode-sized (M = 1) inputs.
// Usage: node scripts/run-ts.js scripts/matmul-kernels.ts [--k 896] [--n 4864] [--m 128,1] [--threads 2]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { GraphBuilder, TensorType } from '../src/builder/onnxGraph';
import { quantizeNBits } from '../src/builder/quantize';
import { createRng } from '../src/engine/random';

interface Variant { name: string; build(g: GraphBuilder, a: string, w: Float32Array, n: number, k: number, p: string): string }

const nbits = (bits: 4 | 8, block: number, accuracy: number): Variant => ({
  name: `MatMulNBits ${bits}-bit b${block} acc${accuracy}`,
  build(g, a, w, n, k, p) {
    const q = quantizeNBits(w, n, k, bits, block);
    const packed = g.initializer(`${p}w_q`, TensorType.UINT8, [n, q.kBlocks, (block * bits) / 8], q.packed);
    const scales = g.float(`${p}w_s`, [n * q.kBlocks], q.scales);
    return g.op('MatMulNBits', [a, packed, scales], { K: k, N: n, bits, block_size: block, accuracy_level: accuracy }, 'com.microsoft');
  },
});

/** W [n, k] as int8 [K, N] (MatMulInteger's layout) with one scale per output column. */
function int8Columns(g: GraphBuilder, w: Float32Array, n: number, k: number, p: string): { b: string; scales: string } {
  const wt = new Int8Array(k * n);
  const scales = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    let max = 0;
    for (let i = 0; i < k; i++) max = Math.max(max, Math.abs(w[j * k + i]!));
    scales[j] = max / 127 || 1;
    for (let i = 0; i < k; i++) wt[i * n + j] = Math.round(w[j * k + i]! / scales[j]!);
  }
  return { b: g.initializer(`${p}w_i8`, TensorType.INT8, [k, n], new Uint8Array(wt.buffer)), scales: g.float(`${p}w_scale`, [n], scales) };
}

/** Each row of a [.., K] quantized to uint8 on its own scale (zero point 128), in ONNX operators. */
function uint8Rows(g: GraphBuilder, a: string, p: string): { levels: string; scale: string; zeroPoint: string } {
  const scale = g.op('Div', [g.op('Max', [g.op('ReduceMax', [g.op('Abs', [a])], { axes: [-1], keepdims: 1 }), g.floatScalar(1e-30)]), g.floatScalar(127)]);
  const levels = g.op('Cast', [g.op('Add', [g.op('Round', [g.op('Div', [a, scale])]), g.floatScalar(128)])], { to: TensorType.UINT8 });
  return { levels, scale, zeroPoint: g.initializer(`${p}a_zp`, TensorType.UINT8, [], Uint8Array.of(128)) };
}

const variants: Variant[] = [
  nbits(4, 32, 4),
  nbits(4, 64, 4),
  nbits(4, 128, 4),
  nbits(8, 32, 4),
  nbits(8, 128, 4),
  {
    name: 'DynamicQuantizeMatMul int8 per-column',
    build(g, a, w, n, k, p) {
      const { b, scales } = int8Columns(g, w, n, k, p);
      const zp = g.initializer(`${p}w_zp`, TensorType.INT8, [n], new Uint8Array(n));
      return g.op('DynamicQuantizeMatMul', [a, b, scales, zp], {}, 'com.microsoft');
    },
  },
  {
    name: 'MatMulInteger u8s8, A per row',
    build(g, a, w, n, k, p) {
      const { b, scales } = int8Columns(g, w, n, k, p);
      const rows = uint8Rows(g, a, p);
      const acc = g.op('MatMulInteger', [rows.levels, b, rows.zeroPoint]);
      return g.op('Mul', [g.op('Mul', [g.op('Cast', [acc], { to: TensorType.FLOAT }), rows.scale]), scales]);
    },
  },
  {
    name: 'DynamicQuantizeMatMul, rows normalized',
    build(g, a, w, n, k, p) {
      const { b, scales } = int8Columns(g, w, n, k, p);
      const rowMax = g.op('Max', [g.op('ReduceMax', [g.op('Abs', [a])], { axes: [-1], keepdims: 1 }), g.floatScalar(1e-30)]);
      const y = g.op('DynamicQuantizeMatMul', [g.op('Div', [a, rowMax]), b, scales], {}, 'com.microsoft');
      return g.op('Mul', [y, rowMax]);
    },
  },
  {
    name: 'MatMulIntegerToFloat, A per row',
    build(g, a, w, n, k, p) {
      const { b, scales } = int8Columns(g, w, n, k, p);
      const rows = uint8Rows(g, a, p);
      const y = g.op('MatMulIntegerToFloat', [rows.levels, b, g.floatScalar(1), scales, rows.zeroPoint], {}, 'com.microsoft');
      return g.op('Mul', [y, rows.scale]);
    },
  },
  {
    name: 'MatMul float32',
    build(g, a, w, n, k, p) {
      const wt = new Float32Array(k * n);
      for (let j = 0; j < n; j++) for (let i = 0; i < k; i++) wt[i * n + j] = w[j * k + i]!;
      return g.op('MatMul', [a, g.float(`${p}w_f`, [k, n], wt)]);
    },
  },
];

function rotate(values: Float32Array, by: number): Float32Array {
  if (by === 0) return values;
  const out = new Float32Array(values.length);
  out.set(values.subarray(by));
  out.set(values.subarray(0, by), values.length - by);
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { k: { type: 'string', default: '896' }, n: { type: 'string', default: '4864' }, m: { type: 'string', default: '128,1' }, threads: { type: 'string', default: '2' }, only: { type: 'string' }, layers: { type: 'string', default: '1' } } });
  const k = Number(values.k);
  const n = Number(values.n);
  const random = createRng(1);
  const w = Float32Array.from({ length: n * k }, () => (random() - 0.5) * 0.1);
  const wDown = Float32Array.from({ length: n * k }, () => (random() - 0.5) * 0.1);
  const layers = Number(values.layers);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'matmul-kernels-'));
  console.log(`K=${k} N=${n}, ${values.threads} threads, load ${os.loadavg()[0]!.toFixed(1)}`);
  for (const variant of variants) {
    if (values.only && !variant.name.includes(values.only)) continue;
    const g = new GraphBuilder('mm');
    // `layers` pairs K → N → K with their own weights, so decode reads from memory, not cache.
    const a = g.input('a', TensorType.FLOAT, ['m', k]);
    let y = a;
    for (let layer = 0; layer < layers; layer++) {
      // Every layer's matrix is a different rotation of the same numbers (distinct bytes, so
      // onnxruntime cannot share one copy).
      const up = variant.build(g, y, rotate(w, layer * 1009), n, k, `l${layer}u`);
      y = variant.build(g, up, rotate(wDown, layer * 1013), k, n, `l${layer}d`);
    }
    g.opNamed('y', 'Identity', [y]);
    g.output('y', TensorType.FLOAT, ['m', k]);
    const file = path.join(dir, 'mm.onnx');
    g.save(file, { externalDataFile: 'mm.onnx_data', opsets: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }], producer: 'matmul-kernels' });
    const session = await ort.InferenceSession.create(file, { enableProfiling: Boolean(process.env.PROFILE), profileFilePrefix: path.join(os.tmpdir(), 'mmk'), intraOpNumThreads: Number(values.threads), graphOptimizationLevel: 'all', extra: { session: { 'intra_op.allow_spinning': '0' } } });
    const parts: string[] = [];
    for (const m of values.m.split(',').map(Number)) {
      const input = new ort.Tensor('float32', Float32Array.from({ length: m * k }, () => random() - 0.5), [m, k]);
      for (let i = 0; i < 3; i++) await session.run({ a: input });
      const times: number[] = [];
      const reps = m === 1 ? 200 : 20;
      for (let i = 0; i < reps; i++) {
        const t0 = performance.now();
        await session.run({ a: input });
        times.push(performance.now() - t0);
      }
      times.sort((x, z) => x - z);
      const ms = times[Math.floor(times.length / 2)]!;
      parts.push(`M=${m}: ${ms.toFixed(3)} ms, ${((2 * 2 * layers * m * n * k) / ms / 1e6).toFixed(0)} G op/s`);
    }
    console.log(`${variant.name.padEnd(40)} ${parts.join('   ')}`);
    await session.release();
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
