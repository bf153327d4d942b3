// Where a decode step and a prefill chunk spend their time, per onnxruntime operator type.
// Runs the model with onnxruntime's profiler on: prefills L tokens (chunks of 128), decodes
// `steps` tokens, and sums the profiler's node events per op type, apart for prefill and decode.
// Usage: node scripts/run-ts.js scripts/op-profile.ts --model DIR [--context 512] [--steps 16] [--out DIR]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { inspectModelFolder } from '../src/engine/model/modelFolder';
import { DecoderSession } from '../src/engine/model/decoderSession';
import { argmax } from '../src/engine/generate/sampler';
import { createRng } from '../src/engine/random';

interface ProfileEvent { cat: string; name: string; dur: number; ts: number; args?: { op_name?: string } }

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      context: { type: 'string', default: '512' },
      steps: { type: 'string', default: '16' },
      threads: { type: 'string', default: '2' },
      out: { type: 'string', default: fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'op-profile-')) },
    },
  });
  if (!values.model) throw new Error('--model DIR is required');
  const folder = inspectModelFolder(values.model);
  fs.mkdirSync(values.out, { recursive: true });
  const prefix = path.join(values.out, 'ort');
  const session = await DecoderSession.open(folder, {
    threads: Number(values.threads),
    onnxruntime: { enableProfiling: true, profileFilePrefix: prefix },
  });
  const context = Number(values.context);
  const steps = Number(values.steps);
  const vocab = folder.config.vocabSize;
  const cache = session.createCache(context + steps + 1);
  const random = createRng(context);
  const prompt = Array.from({ length: context }, () => Math.floor(random() * vocab));
  const marks: { kind: 'prefill' | 'decode'; start: number; end: number }[] = [];
  let logits: Float32Array = new Float32Array(0);
  const origin = performance.timeOrigin;
  for (let at = 0; at < context; at += 128) {
    const start = (origin + performance.now()) * 1000;
    const last = at + 128 >= context;
    logits = await session.forward(prompt.slice(at, at + 128), cache, { logits: last ? 'last' : 'none' });
    marks.push({ kind: 'prefill', start, end: (origin + performance.now()) * 1000 });
  }
  let token = argmax(logits.subarray(logits.length - vocab));
  for (let i = 0; i < steps; i++) {
    const start = (origin + performance.now()) * 1000;
    logits = await session.forward([token], cache, { logits: 'last' });
    marks.push({ kind: 'decode', start, end: (origin + performance.now()) * 1000 });
    token = argmax(logits);
  }
  const file = (session as unknown as { session: { endProfiling(): void } }).session;
  file.endProfiling();
  const written = fs.readdirSync(values.out).filter((f) => f.startsWith('ort') && f.endsWith('.json'));
  const events = JSON.parse(fs.readFileSync(path.join(values.out, written.sort().at(-1)!), 'utf8')) as ProfileEvent[];
  // Profiler timestamps are microseconds since the session's start; align runs by order instead.
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run');
  const byKind: Record<string, { wallUs: number; runUs: number; ops: Map<string, number>; count: number }> = {};
  runs.forEach((run, index) => {
    const mark = marks[index];
    if (!mark) return;
    const bucket = (byKind[mark.kind] ??= { wallUs: 0, runUs: 0, ops: new Map(), count: 0 });
    bucket.count++;
    bucket.wallUs += mark.end - mark.start;
    bucket.runUs += run.dur;
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
      if (e.ts < run.ts || e.ts > run.ts + run.dur) continue;
      const op = e.args?.op_name ?? '?';
      bucket.ops.set(op, (bucket.ops.get(op) ?? 0) + e.dur);
    }
  });
  for (const [kind, b] of Object.entries(byKind)) {
    const kernels = [...b.ops.values()].reduce((a, c) => a + c, 0);
    console.log(`${kind}: ${b.count} runs, wall ${(b.wallUs / b.count / 1000).toFixed(2)} ms, model_run ${(b.runUs / b.count / 1000).toFixed(2)} ms, kernels ${(kernels / b.count / 1000).toFixed(2)} ms per run`);
    for (const [op, us] of [...b.ops.entries()].sort((a, c) => c[1] - a[1]).slice(0, 14)) {
      console.log(`  ${op.padEnd(34)} ${(us / b.count / 1000).toFixed(3).padStart(8)} ms  ${((100 * us) / b.runUs).toFixed(1).padStart(5)} %`);
    }
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
