#!/usr/bin/env node
// Launcher for the bundled CLI. `npm ci` builds dist/ through the `prepare` script; if it is
// missing (for example after `npm ci --ignore-scripts`), say how to build it.
const fs = require('node:fs');
const path = require('node:path');

const bundle = path.join(__dirname, '..', 'dist', 'cli.js');
if (!fs.existsSync(bundle)) {
  console.error(`freqkv: ${bundle} is missing; run 'npm run build' in ${path.dirname(__dirname)} first.`);
  process.exit(2);
}
require(bundle);
