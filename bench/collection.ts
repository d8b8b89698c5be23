// Filtered queries on a collection's metadata beside the peers that filter, in one process on the
// same data: ZGQCollection.query with `where` (compiled once, then the index's filtered search),
// hnswlib-node's searchKnn with a filter function over the same admitted labels, and an exact
// scan of the admitted vectors in JS (what a user without an index writes). Recall@10 against
// that exact scan; QPS medians of PASSES interleaved passes; selectivities 1 %, 10 %, 50 %.
//   node --import tsx bench/collection.ts [dataset] [queries]     (default synthetic-100k 500)
import { writeFileSync } from 'node:fs';
import hnswlib from 'hnswlib-node';
import { ZGQCollection, type Where } from '../src/index.js';
import { datasetSpec, loadDataset } from '../src/bench/datasets.js';
import { defaultCacheDir, defaultDataDir } from '../src/bench/paths.js';
import { median } from '../src/bench/metrics.js';

const name = process.argv[2] ?? 'synthetic-100k';
const nq = Number(process.argv[3] ?? 500);
const K = 10;
const PASSES = 3;
const HNSW_M = 16;
const HNSW_EFC = 200;
const ZGQ_EF = [0, 64, 128, 256]; // 0: the collection's defaults
const HNSW_EF = [32, 64, 128, 256, 512];
const out: string[] = [];
const log = (line: string) => {
  console.log(line);
  out.push(line);
};

const ds = await loadDataset(datasetSpec(name, { queries: nq }), { dataDir: defaultDataDir(), cacheDir: defaultCacheDir(), k: K });
const { dim, nBase: n } = ds;
const row = (i: number) => ds.base.subarray(i * dim, (i + 1) * dim);
const queryRows = Array.from({ length: nq }, (_, q) => ds.queries.subarray(q * dim, (q + 1) * dim));
const queryArrays = queryRows.map((r) => Array.from(r)); // hnswlib-node takes plain arrays
/** A document's bucket in [0, 100), independent of its vector. */
const bucketOf = (i: number) => (Math.imul(i ^ 0x9e3779b9, 0x85ebca6b) >>> 0) % 100;

log(`# ${name}: ${n} x ${dim}, ${nq} queries; hnswlib-node 3.0.0 M=${HNSW_M} efConstruction=${HNSW_EFC}; ${new Date().toISOString()}`);
let t = performance.now();
const collection = new ZGQCollection({ dim, metric: 'l2', seed: 1 });
await collection.upsert(Array.from({ length: n }, (_, i) => ({ id: `doc-${i}`, vector: row(i), metadata: { bucket: bucketOf(i), kind: bucketOf(i) % 2 === 0 ? 'even' : 'odd' } })), { threads: 1 });
log(`ZGQ collection: ${n} upserted in ${((performance.now() - t) / 1000).toFixed(1)} s (one thread)`);
t = performance.now();
const hnsw = new hnswlib.HierarchicalNSW('l2', dim);
hnsw.initIndex(n, HNSW_M, HNSW_EFC, 100);
for (let i = 0; i < n; i++) hnsw.addPoint(Array.from(row(i)), i);
log(`hnswlib-node: built in ${((performance.now() - t) / 1000).toFixed(1)} s`);

/** The k nearest admitted rows by a plain scan: the ground truth, and the scan's time. */
function exactScan(admitted: Uint32Array): { ids: Uint32Array; qps: number } {
  const ids = new Uint32Array(nq * K);
  const best = new Float64Array(K);
  const bestIds = new Uint32Array(K);
  const start = performance.now();
  for (let q = 0; q < nq; q++) {
    const x = queryRows[q];
    best.fill(Infinity);
    for (const i of admitted) {
      const o = i * dim;
      let d = 0;
      for (let j = 0; j < dim; j++) {
        const diff = ds.base[o + j] - x[j];
        d += diff * diff;
      }
      if (d >= best[K - 1]) continue;
      let at = K - 1;
      while (at > 0 && best[at - 1] > d) {
        best[at] = best[at - 1];
        bestIds[at] = bestIds[at - 1];
        at--;
      }
      best[at] = d;
      bestIds[at] = i;
    }
    ids.set(bestIds, q * K);
  }
  return { ids, qps: nq / ((performance.now() - start) / 1000) };
}

function recall(found: Uint32Array, truth: Uint32Array): number {
  let hit = 0;
  for (let q = 0; q < nq; q++) {
    const want = new Set(truth.subarray(q * K, (q + 1) * K));
    for (let j = 0; j < K; j++) if (want.has(found[q * K + j])) hit++;
  }
  return hit / (nq * K);
}

function zgqPass(where: Where, ef: number): { ids: Uint32Array; qps: number } {
  const ids = new Uint32Array(nq * K).fill(0xffffffff);
  const options = ef ? { k: K, where, ef, includeMetadata: false, includeText: false } : { k: K, where, includeMetadata: false, includeText: false };
  const start = performance.now();
  for (let q = 0; q < nq; q++) {
    const hits = collection.query(queryRows[q], options);
    for (let j = 0; j < hits.length; j++) ids[q * K + j] = Number((hits[j].id as string).slice(4));
  }
  return { ids, qps: nq / ((performance.now() - start) / 1000) };
}

function hnswPass(allowed: Uint8Array, ef: number): { ids: Uint32Array; qps: number } {
  hnsw.setEf(ef);
  const ids = new Uint32Array(nq * K).fill(0xffffffff);
  const filter = (label: number) => allowed[label] === 1;
  const start = performance.now();
  for (let q = 0; q < nq; q++) {
    const r = hnsw.searchKnn(queryArrays[q], K, filter);
    for (let j = 0; j < r.neighbors.length; j++) ids[q * K + j] = r.neighbors[j];
  }
  return { ids, qps: nq / ((performance.now() - start) / 1000) };
}

// a filter met for the first time: planned, its fields indexed (first) and compiled into a bitmap
t = performance.now();
collection.count({ bucket: { $lt: 37 } });
const firstCompile = performance.now() - t;
const compiles: number[] = [];
for (let v = 1; v <= 21; v++) {
  t = performance.now();
  collection.count({ bucket: { $lt: v + 0.5 } });
  compiles.push(performance.now() - t);
}
log(`compiling a filter at ${n} documents: ${firstCompile.toFixed(1)} ms the first time (the field's index built), then ${median(compiles).toFixed(2)} ms (median of 21 new filters); repeated filters are cached`);
log('');
log('| filter | admitted | exact scan (JS) QPS | ZGQ: recall@10, QPS at each ef (defaults, 64, 128, 256) | hnswlib-node: recall@10, QPS at ef 32-512 | ZGQ best QPS at recall@10 ≥ 0.95 | hnswlib-node best | ZGQ / hnswlib-node |');
log('| --- | ---: | ---: | --- | --- | ---: | ---: | ---: |');
const filters: [string, Where, (i: number) => boolean][] = [
  ['1 %: bucket < 1', { bucket: { $lt: 1 } }, (i) => bucketOf(i) < 1],
  ['10 %: bucket < 10', { bucket: { $lt: 10 } }, (i) => bucketOf(i) < 10],
  ['50 %: kind = even', { kind: 'even' }, (i) => bucketOf(i) % 2 === 0],
];
for (const [label, where, admits] of filters) {
  const allowed = new Uint8Array(n);
  const list: number[] = [];
  for (let i = 0; i < n; i++) if (admits(i)) (allowed[i] = 1), list.push(i);
  const admitted = Uint32Array.from(list);
  if (collection.count(where) !== admitted.length) throw new Error(`${label}: the collection admits ${collection.count(where)}, the bench ${admitted.length}`);
  const truth = exactScan(admitted).ids;
  const scanQps: number[] = [];
  const zgq = ZGQ_EF.map(() => ({ qps: [] as number[], recall: 0 }));
  const hn = HNSW_EF.map(() => ({ qps: [] as number[], recall: 0 }));
  for (let pass = 0; pass < PASSES; pass++) {
    scanQps.push(exactScan(admitted).qps);
    ZGQ_EF.forEach((ef, e) => {
      const r = zgqPass(where, ef);
      zgq[e].qps.push(r.qps);
      zgq[e].recall = recall(r.ids, truth);
    });
    HNSW_EF.forEach((ef, e) => {
      const r = hnswPass(allowed, ef);
      hn[e].qps.push(r.qps);
      hn[e].recall = recall(r.ids, truth);
    });
  }
  const cell = (rows: { qps: number[]; recall: number }[]) => rows.map((r) => `${r.recall.toFixed(3)} ${median(r.qps).toFixed(0)}`).join('; ');
  const best = (rows: { qps: number[]; recall: number }[]) => Math.max(0, ...rows.filter((r) => r.recall >= 0.95).map((r) => median(r.qps)));
  const zb = best(zgq);
  const hb = best(hn);
  log(`| ${label} | ${admitted.length} | ${median(scanQps).toFixed(0)} | ${cell(zgq)} | ${cell(hn)} | ${zb ? zb.toFixed(0) : '–'} | ${hb ? hb.toFixed(0) : '–'} | ${zb && hb ? `${(zb / hb).toFixed(2)}×` : '–'} |`);
}
writeFileSync(new URL('./results/collection.md', import.meta.url), out.join('\n') + '\n');
