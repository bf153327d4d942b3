#!/usr/bin/env node
// Runs a TypeScript script of this repository: bundles it with esbuild 
// (onnxruntime-node and transformers.js stay external) into out/scripts/ and executes it with the remaining arguments.
const esbuild = require('esbuild');
const fs = require('node:fs');
const path = require('node:path');

const [script, ...args] = process.argv.slice(2);
if (!script) {
  console.error('usage: node scripts/run-ts.js SCRIPT.ts [args…]');
  process.exit(2);
}
// Inside the repository (out/ is ignored) so that require('onnxruntime-node') resolves.
const outfile = path.join(__dirname, '..', 'out', 'scripts', `${path.basename(script, '.ts')}.js`);
fs.mkdirSync(path.dirname(outfile), { recursive: true });
esbuild.buildSync({ entryPoints: [script], bundle: true, platform: 'node', target: 'node20', format: 'cjs', outfile, external: ['onnxruntime-node', 'playwright-core', '@huggingface/transformers', 'node-llama-cpp'], logLevel: 'warning' });
process.argv = [process.argv[0], outfile, ...args];
require(outfile);
