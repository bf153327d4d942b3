import { getLlama } from 'node-llama-cpp';
const llama = await getLlama({ build: 'never', gpu: false, usePrebuiltBinaries: true, progressLogs: false, logLevel: 'warn' });
const model = await llama.loadModel({ modelPath: process.argv[2] });
console.log('tokens', model.tokenize('hello world, def foo():'));
const ctx = await model.createContext({ contextSize: 256, threads: 2, batchSize: 256 });
const seq = ctx.getSequence();
const out = [];
let n = 0;
for await (const t of seq.evaluate([151643, 9707, 1879], { temperature: 0 })) { out.push(t); if (++n >= 8) break; }
console.log('greedy', out);
