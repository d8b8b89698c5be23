// The package's browser entry in headless Chromium (the system browser, driven by playwright-core):
// build and search on seeded clustered data, recall@10 against exact search, the same answers and
// the same index bytes as Node (also after remove, add, a filtered search and an exact walk),
// indexes moving both ways as bytes, OPFS / IndexedDB save and load,
// Web Workers when the page is cross-origin isolated and one thread when it is not, and the demo
// page. Any uncaught page error fails. Without a Chromium the test is reported as skipped, with why.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { NO_ID, ZGQCollection, ZGQIndex } from '../src/index.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { bruteForceKnn, recallAtK } from '../src/data/groundtruth.js';
// @ts-expect-error plain ES module without type declarations
import { findChromium, launchChromium, runPage, startServer } from '../scripts/browser-harness.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const bundle = `${root}dist/browser/zgq.js`;
const chromium = findChromium() as { path: string | null; why?: string };
const skip = chromium.path === null ? `browser tests skipped: ${chromium.why}` : false;
if (skip) console.log(`# ${skip}`);

const DIM = 32;
const K = 10;
const SEED = 11;
const ds = clusteredGaussian({ n: 4000, nQueries: 200, dim: DIM, seed: 5, outlierFraction: 0.2 });

/** A page whose zgq.js has no zgq-worker.js beside it: its workers start from the inlined script. */
const LONELY_PAGE = `<!doctype html><link rel="icon" href="data:,">
<script type="module">
import { ZGQIndex } from '/lonely/zgq.js';
const dim = 8;
const x = Float32Array.from({ length: 2000 * dim }, (_, i) => Math.sin(i * 0.7));
const run = async () => {
  const index = new ZGQIndex({ dim, zones: 4 });
  await index.build(x, { threads: 1 });
  const two = await index.searchBatch(x.subarray(0, 200 * dim), 5, { threads: 2 });
  const one = await index.searchBatch(x.subarray(0, 200 * dim), 5, { threads: 1 });
  return { parallel: index.stats().parallel, same: two.ids.every((id, i) => id === one.ids[i]) && one.ids.length === 1000 };
};
window.__results = run().catch((e) => ({ error: String(e) })).finally(() => { window.__done = true; });
</script>`;

interface PageResults {
  error?: string;
  crossOriginIsolated: boolean;
  userAgent: string;
  parallel: { threads: number; via: string; reason?: string };
  phases: string[];
  nodeIndex: { ids: number[]; distances: number[] };
  built: { ids: number[]; distances: number[] };
  single: { ids: number[]; distances: number[] };
  bytesLength: number;
  errors: Record<string, string>;
  live: { removed: number; size: number; ids: number[]; distances: number[] };
  threadsSameBytes?: boolean;
  threadsSameIds?: boolean;
  opfsSameIds?: boolean;
  collection?: { hits: string[]; count: number; opfs: string[]; idb: string[] };
  idbSameIds?: boolean;
}

test('the browser entry is self-contained: no imports at run time, nothing from Node', async () => {
  assert.ok(existsSync(bundle), `${bundle} is missing: run npm run build`);
  // bundling the bundle again pulls in nothing: a bare or node: import would show as an input or fail
  const again = await build({ entryPoints: [bundle], bundle: true, write: false, metafile: true, platform: 'browser', format: 'esm', logLevel: 'silent' });
  assert.deepEqual(Object.keys(again.metafile.inputs).map((p) => relative(root, join(process.cwd(), p))), ['dist/browser/zgq.js']);
});

test("bundlers resolve 'zgq' to the browser entry for the web and to dist/src for Node", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zgq-consumer-'));
  try {
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(root, join(dir, 'node_modules', 'zgq'), 'dir');
    writeFileSync(join(dir, 'app.js'), "import { ZGQIndex } from 'zgq';\nconsole.log(ZGQIndex);\n");
    const inputs = async (platform: 'browser' | 'node') => {
      const r = await build({
        absWorkingDir: dir, entryPoints: ['app.js'], bundle: true, write: false, metafile: true, platform, format: 'esm', external: ['piscina'], logLevel: 'silent',
      });
      return Object.keys(r.metafile.inputs);
    };
    const web = await inputs('browser');
    assert.ok(web.some((p) => p.endsWith('dist/browser/zgq.js')), web.join(', '));
    assert.ok(!web.some((p) => p.includes('dist/src/')), web.join(', '));
    const node = await inputs('node');
    assert.ok(node.some((p) => p.endsWith('dist/src/index.js')), node.join(', '));
    assert.ok(!node.some((p) => p.includes('dist/browser/')), node.join(', '));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The page's liveSteps (test/browser/page.js), in Node. */
async function liveSteps(index: ZGQIndex, queries: Float32Array, dim: number, k: number) {
  const removed = index.remove(Array.from({ length: 50 }, (_, i) => i * 7));
  await index.add(queries.slice(0, 100 * dim), Array.from({ length: 100 }, (_, i) => 100000 + i), { threads: 1 });
  const filtered = await index.searchBatch(queries, k, { filter: (id) => id % 3 === 0 });
  const exact = await index.searchBatch(queries, k, { traversal: 'exact', threads: 1 });
  return { removed, size: index.size, ids: [...filtered.ids], distances: [...filtered.distances], exactIds: [...exact.ids], exactDistances: [...exact.distances] };
}

let browser: { close(): Promise<void>; version(): string } | undefined;
let server: { url: string; uploads: Map<string, Uint8Array>; requests: string[]; close(): Promise<void> } | undefined;
let nodeIndex: ZGQIndex;
let nodeBytes: Uint8Array;
let nodeIds: Uint32Array;
let nodeDistances: Float32Array;
let truth: Uint32Array;
let nodeLive: Awaited<ReturnType<typeof liveSteps>>;
let nodeLiveBytes: Uint8Array;

before(async () => {
  if (skip) return;
  assert.ok(existsSync(bundle), `${bundle} is missing: run npm run build`);
  nodeIndex = new ZGQIndex({ dim: DIM, seed: SEED });
  await nodeIndex.build(ds.base, { threads: 1 });
  nodeBytes = nodeIndex.toBytes();
  ({ ids: nodeIds, distances: nodeDistances } = await nodeIndex.searchBatch(ds.queries, K, { threads: 1 }));
  const live = ZGQIndex.fromBytes(nodeBytes);
  nodeLive = await liveSteps(live, ds.queries, DIM, K);
  nodeLiveBytes = live.toBytes();
  truth = bruteForceKnn(ds.base, ds.nBase, ds.queries, ds.nQueries, DIM, K, 'l2').ids;
  const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  server = await startServer({
    mounts: { '/': `${root}test/browser`, '/zgq/': `${root}dist/browser`, '/demo/': `${root}examples/browser` },
    files: {
      // the entry without its worker file beside it
      '/lonely/zgq.js': readFileSync(bundle),
      '/lonely.html': LONELY_PAGE,
      '/data/meta.json': JSON.stringify({ dim: DIM, k: K, seed: SEED }),
      '/data/base.f32': bytesOf(ds.base),
      '/data/queries.f32': bytesOf(ds.queries),
      '/data/node.zgq': nodeBytes,
    },
  });
  browser = await launchChromium(chromium.path);
  console.log(`# Chromium ${browser!.version()}`);
});

after(async () => {
  await browser?.close();
  await server?.close();
});

async function open(path: string): Promise<PageResults> {
  const { results, pageErrors } = await runPage(browser, `${server!.url}${path}`);
  assert.deepEqual(pageErrors, []);
  assert.equal(results.error, undefined, results.error);
  return results as PageResults;
}

function checkAgainstNode(r: PageResults, mode: string): void {
  // an index built in Node answers the same in the browser
  assert.deepEqual(r.nodeIndex.ids, [...nodeIds]);
  assert.deepEqual(r.nodeIndex.distances, [...nodeDistances]);
  // the browser's own one-thread build: recall, and the same answers and bytes as Node's build
  const recall = recallAtK(Uint32Array.from(r.built.ids), truth, ds.nQueries, K, K);
  console.log(`# ${mode}: browser recall@10 = ${recall.toFixed(4)}`);
  assert.ok(recall >= 0.95, `browser recall@10 ${recall}`);
  assert.deepEqual(r.built.ids, [...nodeIds]);
  assert.deepEqual(r.built.distances, [...nodeDistances]);
  assert.deepEqual(r.single.ids, [...nodeIds.subarray(0, K)]);
  assert.deepEqual(r.phases, ['zones', 'pq', 'graph', 'tune', 'done']);
  const uploaded = server!.uploads.get(`browser-${mode}.zgq`);
  assert.ok(uploaded, 'the page uploaded its index');
  assert.equal(r.bytesLength, uploaded.length);
  assert.ok(Buffer.from(uploaded).equals(Buffer.from(nodeBytes)), 'browser and Node builds are the same bytes');
  // and the browser's bytes load in Node
  const back = ZGQIndex.fromBytes(uploaded);
  const hit = back.search(ds.queries.subarray(0, DIM), K);
  assert.deepEqual([...hit.ids], [...nodeIds.subarray(0, K)]);
  // remove, add, a filtered search and the exact walk give the same answers and the same index as in Node
  assert.deepEqual(r.live, nodeLive);
  assert.ok(Buffer.from(server!.uploads.get(`live-${mode}.zgq`)!).equals(Buffer.from(nodeLiveBytes)), 'live index bytes as in Node');
  assert.ok(r.live.ids.every((id) => id === NO_ID || id % 3 === 0), 'the filter holds');
  assert.deepEqual(r.errors, {
    dimension: 'DIMENSION_MISMATCH', notFinite: 'NOT_FINITE', corrupt: 'CORRUPT_FILE', empty: 'EMPTY_INPUT', missingFile: 'IO', addId: 'INVALID_ARGUMENT',
  });
}

test('browser entry, cross-origin isolated page: Web Workers, bytes, OPFS and IndexedDB', { skip }, async () => {
  const r = await open('/?mode=full');
  assert.equal(r.crossOriginIsolated, true);
  assert.equal(r.parallel.via, 'web-workers');
  assert.ok(r.parallel.threads >= 1);
  checkAgainstNode(r, 'full');
  assert.equal(r.threadsSameBytes, true, 'a 2-worker build gives the same bytes');
  assert.equal(r.threadsSameIds, true, 'a 2-worker batch gives the same answers');
  assert.equal(r.opfsSameIds, true, 'save / load through OPFS');
  assert.equal(r.idbSameIds, true, 'save / load through IndexedDB');
  // a collection answers as in Node, before and after save / load through OPFS and IndexedDB
  const docs = new ZGQCollection({ dim: DIM, seed: SEED });
  await docs.upsert(Array.from({ length: 300 }, (_, i) => ({ id: `d${i}`, vector: ds.base.subarray(i * DIM, (i + 1) * DIM), metadata: { even: i % 2 === 0, n: i } })));
  const where = { even: true, n: { $lt: 200 } };
  const hits = docs.query(ds.queries.subarray(0, DIM), { k: 5, where }).map((h) => h.id);
  assert.equal(hits.length, 5);
  assert.deepEqual(r.collection, { hits, count: 100, opfs: hits, idb: hits });
});

test('browser entry, page without COOP/COEP: one thread, same results', { skip }, async () => {
  const r = await open('/?mode=plain&coi=0');
  assert.equal(r.crossOriginIsolated, false);
  assert.equal(r.parallel.via, 'none');
  assert.equal(r.parallel.threads, 1);
  assert.match(r.parallel.reason ?? '', /cross-origin isolated/);
  checkAgainstNode(r, 'plain');
});

test('browser entry without its worker file: workers start from the inlined script', { skip }, async () => {
  server!.requests.length = 0;
  const { results, pageErrors } = await runPage(browser, `${server!.url}/lonely.html`);
  assert.deepEqual(pageErrors, []);
  assert.equal(results.error, undefined, results.error);
  assert.equal(results.parallel.via, 'web-workers', JSON.stringify(results.parallel));
  assert.equal(results.same, true);
  assert.deepEqual(server!.requests.filter((r: string) => r.includes('worker')), []);
});

test('browser demo page runs to the end', { skip }, async () => {
  const r = (await open('/demo/?n=3000&queries=100')) as unknown as { zgq: { recall: number }; exact: { recall: number } };
  assert.ok(r.zgq.recall >= 0.9, `demo recall ${r.zgq.recall}`);
  assert.equal(r.exact.recall, 1);
});

test('browser entry on WebGPU (navigator.gpu; SwiftShader in headless Chromium): a batch scanning every row gives the CPU scan\'s ids, the zones\' scan the recall of the index', { skip }, async () => {
  const r = (await open('/gpu.html')) as unknown as { hasGpu: boolean; scanDevice: { ran: string; reason: string | null }; scanSame: boolean; zonesDevice: { ran: string }; zones: number[] };
  assert.equal(r.hasGpu, true, 'navigator.gpu');
  assert.equal(r.scanDevice.ran, 'gpu', JSON.stringify(r.scanDevice));
  assert.equal(r.scanSame, true);
  assert.equal(r.zonesDevice.ran, 'gpu');
  const recall = recallAtK(Uint32Array.from(r.zones), truth, ds.nQueries, K, K);
  assert.ok(recall >= 0.95, `recall@10 on WebGPU ${recall}`);
});
