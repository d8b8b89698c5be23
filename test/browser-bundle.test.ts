// A page script that imports 'zgq', bundled as an application would, by esbuild (the browser
// export, dist/browser/zgq.js, folded into one file with no zgq-worker.js copied beside it) and by
// `vite build` (index.html and its assets) and by webpack 5, on a cross-origin isolated page in headless Chromium. A 2-thread build and batch must answer as one
// thread does, with workers started from the inlined script; where the page's CSP forbids blob:
// workers and the worker file is missing, the calls fall back to one thread and stats say why.
// Without a Chromium the test is reported as skipped, with why.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { build as viteBuild } from 'vite';
import webpack from 'webpack';
// @ts-expect-error plain ES module without type declarations
import { findChromium, launchChromium, runPage, startServer } from '../scripts/browser-harness.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const chromium = findChromium() as { path: string | null; why?: string };
const skip = chromium.path === null ? `browser tests skipped: ${chromium.why}` : false;
if (skip) console.log(`# ${skip}`);

/** The application's page script: one build and batch on one thread, the same on two. */
const MAIN = `import { ZGQIndex } from 'zgq';
const dim = 16;
const n = 3000;
const nq = 200;
const x = Float32Array.from({ length: n * dim }, (_, i) => Math.sin(i * 0.37) + Math.cos(i * 0.011 + (i % dim)));
const queries = x.slice(0, nq * dim).map((v, i) => v + 0.01 * Math.sin(i));
const same = (a, b) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
const run = async () => {
  const one = new ZGQIndex({ dim, seed: 3 });
  await one.build(x, { threads: 1 });
  const a = await one.searchBatch(queries, 10, { threads: 1 });
  const two = new ZGQIndex({ dim, seed: 3 });
  await two.build(x, { threads: 2 });
  const b = await two.searchBatch(queries, 10, { threads: 2 });
  await two.add(queries, Array.from({ length: nq }, (_, i) => n + i), { threads: 2 });
  await one.add(queries, Array.from({ length: nq }, (_, i) => n + i), { threads: 1 });
  return {
    crossOriginIsolated: globalThis.crossOriginIsolated,
    parallel: two.stats().parallel,
    sameIds: same(a.ids, b.ids),
    sameDistances: same(a.distances, b.distances),
    sameBytes: same(one.toBytes(), two.toBytes()),
  };
};
window.__results = run().catch((e) => ({ error: String(e && e.stack || e) })).finally(() => { window.__done = true; });
`;

/** A page script of a LangChain app: zgq/langchain (its browser build, importing 'zgq') and @langchain/core, stored in OPFS. */
const LANGCHAIN_MAIN = `import { ZGQVectorStore } from 'zgq/langchain';
import { Document } from '@langchain/core/documents';
const embed = (t) => Array.from({ length: 8 }, (_, j) => Math.cos((t.length + 1) * (j + 1)) + (t.charCodeAt(j % t.length) || 0) / 50);
const embeddings = { embedQuery: async (t) => embed(t), embedDocuments: async (ts) => ts.map(embed) };
const run = async () => {
  const texts = ['alpha', 'beta gamma', 'delta epsilon zeta', 'eta', 'theta iota kappa lambda'];
  const store = await ZGQVectorStore.fromDocuments(texts.map((pageContent, i) => new Document({ pageContent, metadata: { i } })), embeddings);
  const self = await store.similaritySearch('delta epsilon zeta', 1);
  const filtered = await store.similaritySearch('delta epsilon zeta', 5, { i: { $lt: 2 } });
  await store.save('lc-test/store');
  const loaded = await ZGQVectorStore.load('lc-test/store', embeddings);
  const again = await loaded.similaritySearch('delta epsilon zeta', 1);
  return { self: self[0].pageContent, filtered: filtered.map((d) => d.metadata.i).sort(), again: again[0].pageContent, size: loaded.collection.size };
};
window.__results = run().catch((e) => ({ error: String(e && e.stack || e) })).finally(() => { window.__done = true; });
`;

const page = (csp: string, type = 'module') => `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
${csp ? `<meta http-equiv="Content-Security-Policy" content="${csp}">` : ''}
<script type="${type}" src="./main.js"></script>`;

/** webpack 5 with its defaults for a production web app: one classic script, assets beside it. */
function webpackBuild(context: string, outDir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const compiler = webpack({ mode: 'production', context, entry: './web/main.js', output: { path: outDir, filename: 'main.js' } });
    compiler.run((err, stats) => {
      compiler.close(() => {});
      if (err || stats?.hasErrors()) reject(err ?? new Error(stats!.toString({ all: false, errors: true })));
      else resolve();
    });
  });
}

let dir: string;
let browser: { close(): Promise<void> } | undefined;
let server: { url: string; requests: string[]; close(): Promise<void> } | undefined;

before(async () => {
  if (skip) return;
  assert.ok(existsSync(`${root}dist/browser/zgq.js`), 'dist/browser/zgq.js is missing: run npm run build');
  dir = mkdtempSync(join(tmpdir(), 'zgq-bundle-'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(root, join(dir, 'node_modules', 'zgq'), 'dir');
  symlinkSync(join(root, 'node_modules', '@langchain'), join(dir, 'node_modules', '@langchain'), 'dir');
  mkdirSync(join(dir, 'web'));
  writeFileSync(join(dir, 'web', 'main.js'), MAIN);
  // esbuild web/main.js --bundle --format=esm --platform=browser --outdir=out
  await build({ absWorkingDir: dir, entryPoints: ['web/main.js'], bundle: true, format: 'esm', platform: 'browser', outdir: 'out', logLevel: 'silent' });
  writeFileSync(join(dir, 'out', 'index.html'), page(''));
  writeFileSync(join(dir, 'out', 'csp.html'), page("worker-src 'self'"));
  assert.deepEqual(readdirSync(join(dir, 'out')).sort(), ['csp.html', 'index.html', 'main.js']);
  writeFileSync(join(dir, 'web', 'langchain.js'), LANGCHAIN_MAIN);
  await build({ absWorkingDir: dir, entryPoints: { main: 'web/langchain.js' }, bundle: true, format: 'esm', platform: 'browser', outdir: 'langchain-out', logLevel: 'silent' });
  writeFileSync(join(dir, 'langchain-out', 'index.html'), page(''));
  // one copy of the library: zgq/langchain's browser build imports it as 'zgq'
  assert.equal(readFileSync(join(dir, 'langchain-out', 'main.js'), 'utf8').split('ZGQINDEX').length - 1, 1, 'the file magic appears once');
  // vite build, from web/index.html, into vite-out/
  writeFileSync(join(dir, 'web', 'index.html'), page(''));
  await viteBuild({ root: join(dir, 'web'), base: './', logLevel: 'silent', configFile: false, build: { outDir: join(dir, 'vite-out'), emptyOutDir: true } });
  // the same under a CSP without blob: workers, built so that the worker file is emitted, not inlined
  writeFileSync(join(dir, 'web', 'index.html'), page("worker-src 'self'"));
  await viteBuild({ root: join(dir, 'web'), base: './', logLevel: 'silent', configFile: false, build: { outDir: join(dir, 'vite-csp-out'), emptyOutDir: true, assetsInlineLimit: 0 } });
  // webpack: the worker file is an asset it emits (hashed name) beside main.js
  await webpackBuild(dir, join(dir, 'webpack-out'));
  writeFileSync(join(dir, 'webpack-out', 'index.html'), page('', 'text/javascript'));
  writeFileSync(join(dir, 'webpack-out', 'csp.html'), page("worker-src 'self'", 'text/javascript'));
  server = await startServer({ mounts: { '/langchain': join(dir, 'langchain-out'), '/webpack': join(dir, 'webpack-out'), '/vite-csp': join(dir, 'vite-csp-out'), '/vite': join(dir, 'vite-out'), '/': join(dir, 'out') } });
  browser = await launchChromium(chromium.path);
});

after(async () => {
  await browser?.close();
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * Run the page at `path` (requests recorded afresh): no page errors, cross-origin isolated, and 2
 * threads (or, with `threads: 1`, the one-thread fallback) answering as one thread does.
 */
async function runBundle(path: string, threads: 1 | 2, allowConsoleError?: RegExp) {
  server!.requests.length = 0;
  const { results, pageErrors } = await runPage(browser, `${server!.url}${path}`, { timeoutMs: 60_000, allowConsoleError });
  assert.deepEqual(pageErrors, []);
  assert.equal(results.error, undefined, results.error);
  assert.equal(results.crossOriginIsolated, true);
  assert.equal(results.parallel.via, threads === 2 ? 'web-workers' : 'none', `${path}: ${JSON.stringify(results.parallel)}`);
  assert.equal(results.parallel.threads, threads);
  assert.equal(results.sameIds, true);
  assert.equal(results.sameDistances, true);
  assert.equal(results.sameBytes, true);
  return { results, requests: server!.requests as string[] };
}

/** The requests for a worker script (none when the workers start from the inlined Blob URL). */
const workerRequests = (requests: string[]) => requests.filter((r) => r.includes('worker'));

test('esbuild bundle on a COOP/COEP page: 2 threads on inline workers, the same answers as one', { skip }, async () => {
  const { requests } = await runBundle('/', 2);
  assert.deepEqual(workerRequests(requests), []);
});

test('esbuild bundle whose workers cannot start (CSP forbids blob:, no worker file): one thread, reason in stats', { skip }, async () => {
  const { results, requests } = await runBundle('/csp.html', 1, /worker|Content Security Policy|404/i);
  assert.match(results.parallel.reason, /could not start.*inline Blob URL worker.*zgq-worker\.js beside zgq\.js.*one thread/);
  assert.ok(requests.includes('404 GET /zgq-worker.js'), requests.join(', '));
});

test('vite build on a COOP/COEP page: 2 threads on inline workers, the same answers as one', { skip }, async () => {
  const { requests } = await runBundle('/vite/', 2);
  assert.deepEqual(workerRequests(requests), []);
});

test('vite build with assetsInlineLimit 0 under a CSP without blob: workers: 2 threads from the emitted zgq-worker file', { skip }, async () => {
  const { requests } = await runBundle('/vite-csp/', 2, /Content Security Policy/i);
  assert.ok(requests.some((r) => /^200 GET \/vite-csp\/assets\/zgq-worker-[\w-]+\.js$/.test(r)), requests.join(', '));
});

test('webpack 5 on a COOP/COEP page: inline workers; under a CSP without blob: workers, the worker file it emitted', { skip }, async () => {
  for (const [path, fromFile] of [['/webpack/', false], ['/webpack/csp.html', true]] as const) {
    const { requests } = await runBundle(path, 2, /Content Security Policy/i);
    const workerFile = requests.filter((r) => /^200 GET \/webpack\/[0-9a-f]+\.js$/.test(r));
    assert.equal(workerFile.length > 0, fromFile, `${path}: ${requests.join(', ')}`);
  }
});

test('zgq/langchain bundled by esbuild for a browser: one copy of the library, a vector store saved in and loaded from OPFS', { skip }, async () => {
  const { results, pageErrors } = await runPage(browser, `${server!.url}/langchain/`, { timeoutMs: 60_000 });
  assert.deepEqual(pageErrors, []);
  assert.equal(results.error, undefined, results.error);
  assert.deepEqual(results, { self: 'delta epsilon zeta', filtered: [0, 1], again: 'delta epsilon zeta', size: 5 });
});
