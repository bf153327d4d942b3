// Bundles the CLI, the extension, the engine worker, the build worker (Download Model's
// conversions) and the webview. The type check is separate:
// `npm run typecheck` runs tsc; esbuild only strips types. `--production` (what the .vsix is
// built with, through vscode:prepublish) minifies and writes no source maps, so the packaged
// bundles carry no sourceMappingURL pointing at files the .vsix leaves out; the development
// build keeps inline-free external maps for debugging (F5, .vscode/launch.json).
const esbuild = require('esbuild');

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

/** Node bundles: onnxruntime-node is a native addon, vscode is provided by the host, and
 * transformers.js and node-llama-cpp (the speed benchmark's peers, loaded lazily) stay packages of their own. */
const nodeBundle = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: !production,
  minify: production,
  // Engine errors are named after their class (new.target.name) and cross the worker boundary by name.
  keepNames: true,
  external: ['vscode', 'onnxruntime-node', '@huggingface/transformers', 'node-llama-cpp'],
  logLevel: 'warning',
};

const builds = [
  { ...nodeBundle, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js' },
  { ...nodeBundle, entryPoints: ['src/extension/extension.ts'], outfile: 'dist/extension.js' },
  { ...nodeBundle, entryPoints: ['src/worker/engineWorker.ts'], outfile: 'dist/worker.js' },
  { ...nodeBundle, entryPoints: ['src/worker/buildWorker.ts'], outfile: 'dist/build-worker.js' },
  /** The webview runs in a browser iframe: no node, no vscode; one classic script (iife). */
  {
    bundle: true,
    platform: 'browser',
    target: 'es2022',
    format: 'iife',
    sourcemap: !production,
    minify: production,
    logLevel: 'warning',
    entryPoints: ['src/webview/main.ts'],
    outfile: 'dist/webview.js',
  },
];

async function main() {
  if (watch) {
    for (const options of builds) {
      const ctx = await esbuild.context(options);
      await ctx.watch();
    }
    return;
  }
  await Promise.all(builds.map((options) => esbuild.build(options)));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
