// Builds the command line, dist/cli/zgq.js: src/cli/main.ts with the CLI's own dependencies
// (commander, cli-progress, the file readers: npyjs, csv-parse, hyparquet, apache-arrow; fastify for
// `zgq serve`) bundled
// in, so that `npm install zgq` for the library installs none of them. The library stays outside
// the bundle: every import of a library module becomes an import of its compiled file in dist/src,
// so the CLI and a program using both share one ZGQIndex and one ZGQError. Loaded on demand from
// the user's node_modules: the benchmark's peers (hnswlib-node, usearch), its plot renderers
// (vega, vega-lite) and h5wasm for HDF5 files (an optional peer dependency: 4 MiB of WebAssembly
// that most users never need; src/data/hdf5.ts says how to add it). The licences of what is
// bundled are written beside it (dist/cli/THIRD-PARTY-LICENSES.txt).
import { build } from 'esbuild';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = join(root, 'src');
const out = join(root, 'dist', 'cli');
/** Folders of src/ that belong to the command line, not to the library. */
const CLI_ONLY = ['cli', 'bench', 'data', 'serve'].map((d) => join(src, d) + sep);
const ON_DEMAND = ['hnswlib-node', 'usearch', 'vega', 'vega-lite', 'h5wasm'];

const libraryExternal = {
  name: 'zgq-library-external',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (args) => {
      if (!args.resolveDir.startsWith(src)) return undefined;
      const target = join(args.resolveDir, args.path).replace(/\.js$/, '.ts');
      if (!target.startsWith(src + sep) || CLI_ONLY.some((d) => target.startsWith(d))) return undefined;
      const compiled = relative(out, join(root, 'dist', 'src', relative(src, target))).replace(/\.ts$/, '.js');
      return { path: compiled.split(sep).join('/'), external: true };
    });
  },
};

rmSync(out, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: ['src/cli/main.ts'],
  outfile: join(out, 'zgq.js'),
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ON_DEMAND,
  // CommonJS dependencies (commander, cli-progress) call require() for Node's modules
  banner: { js: "import { createRequire as __zgqCreateRequire } from 'node:module';\nconst require = __zgqCreateRequire(import.meta.url);" },
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
  plugins: [libraryExternal],
});

// one licence per bundled package, from its package folder
const packages = new Map();
for (const input of Object.keys(result.metafile.inputs)) {
  const at = input.lastIndexOf('node_modules/');
  if (at < 0) continue;
  const rest = input.slice(at + 'node_modules/'.length).split('/');
  const name = rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  packages.set(name, join(root, input.slice(0, at), 'node_modules', name));
}
const notices = [];
for (const [name, dir] of [...packages].sort()) {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const file = readdirSync(dir).filter((f) => /^licen[cs]e/i.test(f)).map((f) => join(dir, f))[0];
  if (!file && !pkg.license) throw new Error(`build-cli: ${name} has neither a licence file nor a declared licence to ship with the bundle`);
  // a few packages (fastify's abstract-logging) declare their licence in package.json only
  const author = typeof pkg.author === 'string' ? pkg.author : pkg.author?.name;
  const text = file ? readFileSync(file, 'utf8').trim() : `No licence file in the package; its package.json declares ${pkg.license}${author ? `, author ${author}` : ''}.`;
  notices.push(`${name} ${pkg.version} (${pkg.license})\n\n${text}\n`);
}
writeFileSync(join(out, 'THIRD-PARTY-LICENSES.txt'), `The command line (zgq.js) bundles these packages:\n\n${notices.join(`\n${'-'.repeat(72)}\n\n`)}`);
console.log(`build-cli: dist/cli/zgq.js (${(readFileSync(join(out, 'zgq.js')).length / 2 ** 20).toFixed(1)} MiB) with ${[...packages.keys()].sort().join(', ')}`);
