// Builds the browser entry of the package: dist/browser/zgq.js (ZGQIndex, kernels inlined as
// base64) and dist/browser/zgq-worker.js (the Web Worker it starts), ES modules with no imports;
// and dist/browser/langchain.js, 'zgq/langchain' for browsers (imports 'zgq' and @langchain/core).
// The worker's text is also inlined into zgq.js, which starts its workers from a Blob URL, so a
// bundle of zgq.js needs no file beside it; zgq-worker.js is the fallback where a page's CSP
// forbids blob: workers.
// The platform seam src/platform.ts (Node: piscina, fs, zlib) is swapped for src/web/platform.ts
// (Web Workers, OPFS / IndexedDB); the build fails if any Node-only module is still reached.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, relative } from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = join(root, 'src');
const NODE_ONLY = ['src/platform.ts', 'src/io.ts', 'src/parallel.ts', 'src/lock.ts'];

const swapPlatform = {
  name: 'zgq-web-platform',
  setup(b) {
    // src/platform.ts, imported from any folder of src/
    b.onResolve({ filter: /(^|\/)platform\.js$/ }, (args) =>
      join(args.resolveDir, args.path) === join(src, 'platform.js') ? { path: join(src, 'web', 'platform.ts') } : undefined,
    );
  },
};

const common = {
  absWorkingDir: root,
  outdir: 'dist/browser',
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
  plugins: [swapPlatform],
};

const worker = await build({ ...common, entryPoints: { 'zgq-worker': 'src/web/worker.ts' } });
const workerJs = readFileSync(join(root, 'dist/browser/zgq-worker.js'), 'utf8').replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n');
const main = await build({
  ...common,
  entryPoints: { zgq: 'src/index.ts' },
  define: { __ZGQ_WORKER_SOURCE__: JSON.stringify(workerJs) },
});
// zgq/langchain for browsers: the library imported as 'zgq' (this bundle, resolved by the app's
// bundler) and @langchain/core left to the app, so an app holds one copy of each
const asPackage = {
  name: 'zgq-langchain-imports',
  setup(b) {
    b.onResolve({ filter: /^\.\/index\.js$/ }, (args) => (args.resolveDir === src ? { path: 'zgq', external: true } : undefined));
    b.onResolve({ filter: /^@langchain\/core(\/|$)/ }, (args) => ({ path: args.path, external: true }));
  },
};
const langchain = await build({ ...common, entryPoints: { langchain: 'src/langchain.ts' }, plugins: [asPackage] });
const result = { metafile: { inputs: { ...worker.metafile.inputs, ...main.metafile.inputs, ...langchain.metafile.inputs } } };

const inputs = Object.keys(result.metafile.inputs).map((p) => relative(root, join(root, p)));
const leaked = inputs.filter((p) => NODE_ONLY.includes(p) || p.startsWith('node_modules/') || p.startsWith('node:'));
if (leaked.length > 0) {
  console.error(`build-browser: the browser entry reaches Node-only modules: ${leaked.join(', ')}`);
  process.exit(1);
}
