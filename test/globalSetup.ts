// Builds dist/ (extension, worker, webview, CLI) once before any test file runs, so that test
// files running in parallel never load a bundle while another one rewrites it.

import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

export default function setup(): void {
  execFileSync(process.execPath, ['esbuild.js'], { cwd: path.resolve(__dirname, '..'), stdio: 'inherit' });
}
