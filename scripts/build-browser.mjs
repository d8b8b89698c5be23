// Builds the browser entry of the package: dist/browser/zgq.js (ZGQIndex, kernels inlined as
// base64) and dist/browser/zgq-worker.js (the Web Worker it starts), ES modules with no imports.
// The platform seam src/platform.ts (Node: piscina, fs, zlib) is swapped for src/web/platform.ts
// (Web Workers, OPFS / IndexedDB); the build fails if any Node-only module is still reached.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { join, relative } from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = join(root, 'src');
const NODE_ONLY = ['src/platform.ts', 'src/io.ts', 'src/parallel.ts', 'src/lock.ts'];

const swapPlatform = {
  name: 'zgq-web-platform',
  setup(b) {
    b.onResolve({ filter: /^\.\/platform\.js$/ }, (args) =>
      args.resolveDir === src ? { path: join(src, 'web', 'platform.ts') } : undefined,
    );
  },
};

const result = await build({
  absWorkingDir: root,
  entryPoints: { zgq: 'src/index.ts', 'zgq-worker': 'src/web/worker.ts' },
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
});

const inputs = Object.keys(result.metafile.inputs).map((p) => relative(root, join(root, p)));
const leaked = inputs.filter((p) => NODE_ONLY.includes(p) || p.startsWith('node_modules/') || p.startsWith('node:'));
if (leaked.length > 0) {
  console.error(`build-browser: the browser entry reaches Node-only modules: ${leaked.join(', ')}`);
  process.exit(1);
}
