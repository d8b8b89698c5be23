/**
 * The package as a user gets it: `npm pack` of this checkout (already built by `npm test`),
 * installed into a new app. The library brings only its own runtime dependencies; the `zgq`
 * command runs from the install, reads the user's files with its bundled readers, and says how to
 * add the optional HDF5 reader; `import 'zgq'` builds and searches.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clusteredGaussian } from '../src/data/synthetic.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
/** What only the command line uses: bundled into dist/cli/zgq.js, never installed with the library. */
const CLI_ONLY = ['commander', 'cli-progress', 'npyjs', 'cross-fetch', 'node-fetch', 'csv-parse', 'h5wasm', 'hyparquet', 'hyparquet-compressors', 'apache-arrow', 'fastify', '@nats-io'];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, maxBuffer: 64 << 20, timeout: 240_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

test('the packed package installs with only the library\'s dependencies, and its CLI and library work from the install', { timeout: 300_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'zgq-package-'));
  try {
    const packed = await run(NPM, ['pack', '--ignore-scripts', '--pack-destination', dir, '--json'], ROOT);
    assert.equal(packed.code, 0, packed.stderr);
    const tarball = join(dir, (JSON.parse(packed.stdout) as { filename: string }[])[0].filename);
    const app = join(dir, 'app');
    await run('mkdir', [app], dir);
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    const installed = await run(NPM, ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline'], app);
    assert.equal(installed.code, 0, installed.stderr);
    assert.doesNotMatch(installed.stderr, /install script|allowScripts|prepare/i, 'nothing about scripts on install');

    const modules = await readdir(join(app, 'node_modules'));
    assert.ok(modules.includes('zgq') && modules.includes('piscina') && modules.includes('proper-lockfile'), modules.join(', '));
    for (const name of CLI_ONLY) assert.ok(!modules.includes(name), `${name} is installed with the library`);
    const shipped = await readdir(join(app, 'node_modules', 'zgq', 'dist'));
    assert.deepEqual(shipped.sort(), ['browser', 'cli', 'src']);
    assert.ok(!existsSync(join(app, 'node_modules', 'zgq', 'dist', 'src', 'cli')), 'the unbundled CLI is not shipped');
    assert.ok(!existsSync(join(app, 'node_modules', 'zgq', 'dist', 'src', 'serve')), 'the unbundled server is not shipped');
    assert.ok(readFileSync(join(app, 'node_modules', 'zgq', 'dist', 'cli', 'THIRD-PARTY-LICENSES.txt'), 'utf8').includes('commander'));

    const zgq = join(app, 'node_modules', '.bin', 'zgq');
    const version = await run(zgq, ['--version'], app);
    assert.equal(version.stdout.trim(), (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);

    // the CLI on a user's JSON lines and CSV: build, then search the base's own first rows
    const dim = 8;
    const ds = clusteredGaussian({ n: 400, nQueries: 1, dim, seed: 3 });
    const row = (i: number) => Array.from(ds.base.subarray(i * dim, (i + 1) * dim));
    await writeFile(join(app, 'base.jsonl'), Array.from({ length: 400 }, (_, i) => JSON.stringify({ id: 1000 + i, embedding: row(i) })).join('\n'));
    await writeFile(join(app, 'q.csv'), `${Array.from({ length: dim }, (_, j) => `d${j}`).join(',')}\n${[0, 1, 2].map((i) => row(i).join(',')).join('\n')}\n`);
    const built = await run(zgq, ['build', 'base.jsonl', '-o', 'base.zgq'], app);
    assert.equal(built.code, 0, built.stderr);
    const searched = await run(zgq, ['search', 'base.zgq', 'q.csv', '-k', '1', '--format', 'json'], app);
    assert.equal(searched.code, 0, searched.stderr);
    assert.deepEqual(searched.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { ids: number[] }).ids[0]), [1000, 1001, 1002]);

    // HDF5 needs the optional h5wasm, and says so
    await writeFile(join(app, 'data.hdf5'), Buffer.concat([Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(2048)]));
    const hdf5 = await run(zgq, ['build', 'data.hdf5', '-o', 'h.zgq'], app);
    assert.equal(hdf5.code, 1);
    assert.match(hdf5.stderr, /^zgq: reading HDF5 files needs the h5wasm package, an optional dependency: npm install h5wasm@0\.10 \(UNSUPPORTED_PLATFORM\)\n$/);

    // the library, imported by name
    await writeFile(join(app, 'use.mjs'), `
      import { ZGQIndex } from 'zgq';
      const dim = 8, n = 300;
      const data = new Float32Array(n * dim).map((_, i) => Math.sin(i * 12.9898) * 43758.5453 % 1);
      const index = new ZGQIndex({ dim, seed: 1 });
      await index.build(data, { threads: 1 });
      const hit = index.search(data.subarray(5 * dim, 6 * dim), 1);
      console.log(JSON.stringify({ n: index.size, top: hit.ids[0] }));
    `);
    const used = await run(process.execPath, ['use.mjs'], app);
    assert.equal(used.code, 0, used.stderr);
    assert.deepEqual(JSON.parse(used.stdout), { n: 300, top: 5 });

    // 'zgq/langchain' needs the optional peer @langchain/core, which the library does not install
    assert.ok(!modules.includes('@langchain'), '@langchain/core is installed with the library');
    await writeFile(join(app, 'lc.mjs'), `
      import { ZGQVectorStore } from 'zgq/langchain';
      const embeddings = { embedDocuments: async (t) => t.map((s) => [s.length, 1]), embedQuery: async (s) => [s.length, 1] };
      const store = await ZGQVectorStore.fromTexts(['a', 'bbb', 'ccccc'], [{ n: 1 }, { n: 3 }, { n: 5 }], embeddings, { options: { metric: 'l2' } });
      const [doc] = await store.similaritySearch('xyz', 1, { n: { $gte: 2 } });
      console.log(doc.pageContent);
    `);
    const withoutPeer = await run(process.execPath, ['lc.mjs'], app);
    assert.notEqual(withoutPeer.code, 0);
    assert.match(withoutPeer.stderr, /@langchain\/core/);
    const peer = await run(NPM, ['install', '@langchain/core@1.4.0', '--no-audit', '--no-fund', '--prefer-offline'], app);
    assert.equal(peer.code, 0, peer.stderr);
    const withPeer = await run(process.execPath, ['lc.mjs'], app);
    assert.equal(withPeer.code, 0, withPeer.stderr);
    assert.equal(withPeer.stdout.trim(), 'bbb');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
