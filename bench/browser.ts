// ZGQ in headless Chromium against ZGQ in Node on the same data, in one run: single-thread build
// time, recall@10 and QPS (one query per call, passes interleaved between the two), plus the size
// of the browser entry (JS + inlined wasm, raw and gzip). Writes bench/results/browser.md.
// Usage: npm run build && node --import tsx bench/browser.ts [--passes 5]
import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { ZGQIndex } from '../src/index.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { bruteForceKnn, recallAtK } from '../src/data/groundtruth.js';
import { readFvecs, readIvecs } from '../src/data/vecs.js';
// @ts-expect-error plain ES module without type declarations
import { findChromium, launchChromium, startServer } from '../scripts/browser-harness.mjs';

const K = 10;
const BATCH_THREADS = 2;
const passes = Number(process.argv[process.argv.indexOf('--passes') + 1] || 5);
const root = fileURLToPath(new URL('..', import.meta.url));
const dataDir = process.env.ZGQ_DATA_DIR ?? `${root}../shared/data`;

interface Set { name: string; dim: number; base: Float32Array; queries: Float32Array; nq: number; truth: Uint32Array }

/** The bench's synthetic-100k: the paper recipe, 30 % outlier queries. */
function synthetic100k(): Set {
  const syn = clusteredGaussian({ n: 100000, nQueries: 1000, dim: 128, seed: 1, outlierFraction: 0.3 });
  return {
    name: 'synthetic-100k', dim: 128, base: syn.base, queries: syn.queries, nq: syn.nQueries,
    truth: bruteForceKnn(syn.base, syn.nBase, syn.queries, syn.nQueries, 128, K, 'l2').ids,
  };
}

async function siftsmall(): Promise<Set> {
  const base = await readFvecs(`${dataDir}/siftsmall/siftsmall_base.fvecs`);
  const queries = await readFvecs(`${dataDir}/siftsmall/siftsmall_query.fvecs`);
  const gt = await readIvecs(`${dataDir}/siftsmall/siftsmall_groundtruth.ivecs`);
  const truth = new Uint32Array(queries.n * K);
  for (let q = 0; q < queries.n; q++) for (let i = 0; i < K; i++) truth[q * K + i] = gt.data[q * gt.dim + i];
  return { name: 'siftsmall', dim: base.dim, base: base.data, queries: queries.data, nq: queries.n, truth };
}

const median = (x: number[]) => [...x].sort((a, b) => a - b)[Math.floor(x.length / 2)];
const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

function bundleSizes(): string[] {
  const rows = ['| file | raw | gzip -9 |', '| --- | --- | --- |'];
  let raw = 0;
  let gz = 0;
  for (const f of ['dist/browser/zgq.js', 'dist/browser/zgq-worker.js', 'build/zgq.wasm']) {
    const bytes = readFileSync(`${root}${f}`);
    const z = gzipSync(bytes, { level: 9 }).length;
    if (f.startsWith('dist/')) {
      raw += bytes.length;
      gz += z;
    }
    rows.push(`| \`${f}\`${f.endsWith('.wasm') ? ' (inlined in zgq.js as base64; for reference)' : ''} | ${kb(bytes.length)} | ${kb(z)} |`);
  }
  rows.push(`| **browser entry, total (JS + wasm)** | **${kb(raw)}** | **${kb(gz)}** |`);
  return rows;
}

const chromium = findChromium() as { path: string | null; why?: string };
if (!chromium.path) throw new Error(chromium.why);
const sets = [synthetic100k()];
try {
  sets.push(await siftsmall());
} catch (e) {
  console.log(`siftsmall skipped: ${(e as Error).message}`);
}
const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const files: Record<string, Uint8Array> = {};
for (const s of sets) {
  files[`/data/${s.name}/base.f32`] = bytesOf(s.base);
  files[`/data/${s.name}/queries.f32`] = bytesOf(s.queries);
}
const server = await startServer({ mounts: { '/': `${root}bench/browser`, '/zgq/': `${root}dist/browser` }, files });
const browser = await launchChromium(chromium.path);
const lines: string[] = [];
try {
  const page = await browser.newPage();
  page.on('pageerror', (e: Error) => console.error(`page error: ${e.stack ?? e}`));
  await page.goto(`${server.url}/`);
  await page.waitForFunction(() => (globalThis as unknown as { __done?: boolean }).__done === true);
  lines.push(`Node ${process.version} vs Chromium ${browser.version()} (headless, playwright-core), one thread each, ${passes} timed passes after one warm-up, interleaved; QPS is the median pass. searchBatch: all queries in one call (Node worker threads; Web Workers in the cross-origin isolated page).`, '');
  lines.push(
    `| dataset | where | build s | recall@10 | QPS | browser / Node QPS | same ids as Node | searchBatch QPS, 1 / ${BATCH_THREADS} threads |`,
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const s of sets) {
    const node = new ZGQIndex({ dim: s.dim });
    let t = performance.now();
    await node.build(s.base, { threads: 1 });
    const nodeBuild = performance.now() - t;
    const web = await page.evaluate(([name, dim, k]: [string, number, number]) => (globalThis as any).zgqLoad(name, dim, k), [s.name, s.dim, K] as [string, number, number]);
    const nodeMs: number[] = [];
    const webMs: number[] = [];
    let nodeIds = new Uint32Array(0);
    let webIds: number[] = [];
    const reps = Math.ceil(1000 / s.nq);
    for (let pass = 0; pass <= passes; pass++) {
      const ids = new Uint32Array(s.nq * K);
      t = performance.now();
      for (let r = 0; r < reps; r++) {
        for (let q = 0; q < s.nq; q++) ids.set(node.search(s.queries.subarray(q * s.dim, (q + 1) * s.dim), K).ids, q * K);
      }
      const ms = (performance.now() - t) / reps;
      const w = await page.evaluate((n: number) => (globalThis as any).zgqPass(n), reps);
      if (pass === 0) {
        nodeIds = ids;
        webIds = w.ids;
        continue;
      }
      nodeMs.push(ms);
      webMs.push(w.ms);
    }
    // batches: worker threads in Node, Web Workers in the (cross-origin isolated) page
    const batch: Record<string, number[]> = {};
    for (let pass = 0; pass <= passes; pass++) {
      for (const threads of [1, BATCH_THREADS]) {
        t = performance.now();
        await node.searchBatch(s.queries, K, { threads });
        const nodeBatch = performance.now() - t;
        const webBatch = await page.evaluate((n: number) => (globalThis as any).zgqBatch(n), threads);
        if (pass === 0) continue;
        (batch[`node${threads}`] ??= []).push(nodeBatch);
        (batch[`web${threads}`] ??= []).push(webBatch);
      }
    }
    const batchQps = (key: string) => Math.round(s.nq / (median(batch[key]) / 1000));
    const nodeQps = s.nq / (median(nodeMs) / 1000);
    const webQps = s.nq / (median(webMs) / 1000);
    const same = webIds.every((id, i) => id === nodeIds[i]);
    const recall = (ids: ArrayLike<number>) => recallAtK(Uint32Array.from(ids), s.truth, s.nq, K, K).toFixed(4);
    const n = s.base.length / s.dim;
    lines.push(`| ${s.name} (${n} × ${s.dim}, ${s.nq} queries) | Node | ${(nodeBuild / 1000).toFixed(2)} | ${recall(nodeIds)} | ${Math.round(nodeQps)} | | | ${batchQps('node1')} / ${batchQps(`node${BATCH_THREADS}`)} |`);
    lines.push(`| | Chromium | ${(web.buildMs / 1000).toFixed(2)} | ${recall(webIds)} | ${Math.round(webQps)} | ${(webQps / nodeQps).toFixed(2)}× | ${same ? 'yes' : 'no'} | ${batchQps('web1')} / ${batchQps(`web${BATCH_THREADS}`)} |`);
    console.log(lines.slice(-2).join('\n'));
  }
  await page.close();
} finally {
  await browser.close();
  await server.close();
}
lines.push('', ...bundleSizes());
const out = [`Command: \`npm run build && node --import tsx bench/browser.ts --passes ${passes}\`, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC.`, '', ...lines, ''].join('\n');
writeFileSync(`${root}bench/results/browser.md`, out);
console.log(out);
