// A live index beside hnswlib-node, in one process on the same data: build 100K, add 50K, remove
// 30 %, compact, one-vector adds, and filtered search at several selectivities. Recall@10 against
// brute force on what each index should hold; times on one thread.
//
//   node --import tsx bench/mutate.ts [--n 100000] [--dim 128] [--queries 1000]
import { parseArgs } from 'node:util';
import hnswlib from 'hnswlib-node';
import { type SearchFilter, ZGQIndex } from '../src/index.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { bruteForceKnn, recallAtK } from '../src/data/groundtruth.js';
import { Rng } from '../src/random.js';

const { values } = parseArgs({ options: { n: { type: 'string', default: '100000' }, dim: { type: 'string', default: '128' }, queries: { type: 'string', default: '1000' } } });
const n = Number(values.n);
const dim = Number(values.dim);
const nq = Number(values.queries);
const extra = n / 2;
const ds = clusteredGaussian({ n: n + extra, nQueries: nq, dim, seed: 21 });
const K = 10;
const HNSW_M = 16;
const HNSW_EFC = 200;
/** Single-vector adds timed (after one untimed) for the per-call cost. */
const SINGLE = 21;

const rowsOf = (ids: ArrayLike<number>): Float32Array => {
  const out = new Float32Array(ids.length * dim);
  for (let i = 0; i < ids.length; i++) out.set(ds.base.subarray(ids[i] * dim, (ids[i] + 1) * dim), i * dim);
  return out;
};
const truthAmong = (ids: number[]): Uint32Array => {
  const t = bruteForceKnn(rowsOf(ids), ids.length, ds.queries, nq, dim, K, 'l2');
  return Uint32Array.from(t.ids, (i) => ids[i]);
};
const seconds = (t0: number) => (performance.now() - t0) / 1000;
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

function zgqPass(index: ZGQIndex, filter?: SearchFilter): { ids: Uint32Array; qps: number } {
  const ids = new Uint32Array(nq * K);
  const t0 = performance.now();
  for (let q = 0; q < nq; q++) ids.set(index.search(ds.queries.subarray(q * dim, (q + 1) * dim), K, filter ? { filter } : undefined).ids, q * K);
  return { ids, qps: nq / seconds(t0) };
}

type Hnsw = InstanceType<typeof hnswlib.HierarchicalNSW>;
const queryRows = Array.from({ length: nq }, (_, q) => Array.from(ds.queries.subarray(q * dim, (q + 1) * dim)));
function hnswPass(index: Hnsw, ef: number, filter?: Set<number>): { ids: Uint32Array; qps: number } {
  index.setEf(ef);
  const ids = new Uint32Array(nq * K).fill(0xffffffff);
  const fn = filter ? (label: number) => filter.has(label) : undefined;
  const t0 = performance.now();
  for (let q = 0; q < nq; q++) {
    const r = fn ? index.searchKnn(queryRows[q], K, fn) : index.searchKnn(queryRows[q], K);
    ids.set(r.neighbors, q * K);
  }
  return { ids, qps: nq / seconds(t0) };
}

/** Median of three passes by QPS (recall is the same every pass). */
function median3<T extends { qps: number }>(run: () => T): T {
  const runs = [run(), run(), run()].sort((a, b) => a.qps - b.qps);
  return runs[1];
}

const lines: string[] = [];
const log = (s: string) => {
  lines.push(s);
  console.log(s);
};
log(`# live index: ${n} x ${dim} clustered (seed 21), +${extra}, -30 %, ${nq} queries, k=${K}, one thread`);
log(`# hnswlib-node 3.0.0 M=${HNSW_M} efConstruction=${HNSW_EFC}; ZGQ defaults`);
log('');
log('| step | ZGQ | hnswlib-node |');
log('| --- | --- | --- |');

const baseIds = range(0, n);
let t0 = performance.now();
const zgq = new ZGQIndex({ dim });
await zgq.build(rowsOf(baseIds), { ids: baseIds, threads: 1 });
const zBuild = seconds(t0);
const baseRows = baseIds.map((i) => Array.from(ds.base.subarray(i * dim, (i + 1) * dim)));
t0 = performance.now();
const hnsw = new hnswlib.HierarchicalNSW('l2', dim);
hnsw.initIndex(n + extra + SINGLE + 1, HNSW_M, HNSW_EFC, 100);
for (let i = 0; i < n; i++) hnsw.addPoint(baseRows[i], i);
const hBuild = seconds(t0);
log(`| build ${n} | ${zBuild.toFixed(1)} s | ${hBuild.toFixed(1)} s |`);

const addIds = range(n, n + extra);
const addRows = addIds.map((i) => Array.from(ds.base.subarray(i * dim, (i + 1) * dim)));
t0 = performance.now();
await zgq.add(rowsOf(addIds), addIds, { threads: 1 });
const zAdd = seconds(t0);
t0 = performance.now();
for (let i = 0; i < extra; i++) hnsw.addPoint(addRows[i], addIds[i]);
const hAdd = seconds(t0);
log(`| add ${extra} (one call) | ${zAdd.toFixed(1)} s | ${hAdd.toFixed(1)} s (addPoint each) |`);

const all = range(0, n + extra);
const truthAll = truthAmong(all);
const zAfterAdd = median3(() => zgqPass(zgq));
const hAfterAdd = median3(() => hnswPass(hnsw, 64));
t0 = performance.now();
const fresh = new ZGQIndex({ dim });
await fresh.build(rowsOf(all), { ids: all, threads: 1 });
const freshBuild = seconds(t0);
const freshPass = median3(() => zgqPass(fresh));
log(`| recall@10 after add (QPS) | ${recallAtK(zAfterAdd.ids, truthAll, nq, K, K).toFixed(4)} (${zAfterAdd.qps.toFixed(0)}); fresh build: ${recallAtK(freshPass.ids, truthAll, nq, K, K).toFixed(4)} (${freshPass.qps.toFixed(0)}), built in ${freshBuild.toFixed(1)} s | ${recallAtK(hAfterAdd.ids, truthAll, nq, K, K).toFixed(4)} (${hAfterAdd.qps.toFixed(0)}) at ef 64 |`);

const perm = new Rng(5).permutation(n + extra);
const gone = Array.from(perm.subarray(0, Math.round(0.3 * (n + extra))));
const kept = Array.from(perm.subarray(gone.length)).sort((a, b) => a - b);
t0 = performance.now();
zgq.remove(gone);
const zRemove = seconds(t0);
t0 = performance.now();
for (const id of gone) hnsw.markDelete(id);
const hRemove = seconds(t0);
log(`| remove ${gone.length} | ${(zRemove * 1000).toFixed(0)} ms | ${(hRemove * 1000).toFixed(0)} ms (markDelete) |`);
const truthKept = truthAmong(kept);
const zTomb = median3(() => zgqPass(zgq));
const hTomb = median3(() => hnswPass(hnsw, 64));
log(`| recall@10 with removals (QPS) | ${recallAtK(zTomb.ids, truthKept, nq, K, K).toFixed(4)} (${zTomb.qps.toFixed(0)}) | ${recallAtK(hTomb.ids, truthKept, nq, K, K).toFixed(4)} (${hTomb.qps.toFixed(0)}) at ef 64 |`);
t0 = performance.now();
await zgq.compact();
const zCompact = seconds(t0);
const zComp = median3(() => zgqPass(zgq));
const fresh2 = new ZGQIndex({ dim });
await fresh2.build(rowsOf(kept), { ids: kept, threads: 1 });
const fresh2Pass = median3(() => zgqPass(fresh2));
log(`| compact (QPS after) | ${zCompact.toFixed(1)} s: recall@10 ${recallAtK(zComp.ids, truthKept, nq, K, K).toFixed(4)} (${zComp.qps.toFixed(0)}); fresh build: ${recallAtK(fresh2Pass.ids, truthKept, nq, K, K).toFixed(4)} (${fresh2Pass.qps.toFixed(0)}) | (no compaction: deleted nodes stay) |`);

// the cost of one add call: one vector at a time, re-adding removed vectors (ZGQ) or adding copies
// of them under new labels (hnswlib-node), one untimed first
const single: number[] = [];
const hSingle: number[] = [];
for (let i = 0; i <= SINGLE; i++) {
  const id = gone[i];
  t0 = performance.now();
  await zgq.add(rowsOf([id]), [id], { threads: 1 });
  if (i > 0) single.push(seconds(t0) * 1000);
  const row = Array.from(ds.base.subarray(id * dim, (id + 1) * dim));
  t0 = performance.now();
  hnsw.addPoint(row, n + extra + i);
  if (i > 0) hSingle.push(seconds(t0) * 1000);
}
single.sort((a, b) => a - b);
hSingle.sort((a, b) => a - b);
log(`| add 1 vector (median of ${SINGLE}) | ${single[SINGLE >> 1].toFixed(2)} ms (in place: ${zgq.stats().appended} appended) | ${hSingle[SINGLE >> 1].toFixed(2)} ms |`);
log('');

log('| filter selectivity | allowed | ZGQ recall@10 | ZGQ QPS, Set | ZGQ QPS, prepared | hnswlib-node recall@10 (ef 64) | QPS | hnswlib-node recall@10 (ef 256) | QPS |');
log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
const rng = new Rng(8);
// the same live set in both: ZGQ re-added gone[0..SINGLE], hnswlib-node holds them under new labels
const live = kept.concat(gone.slice(0, SINGLE + 1)).sort((a, b) => a - b);
for (let i = 0; i <= SINGLE; i++) {
  hnsw.unmarkDelete(gone[i]);
  hnsw.markDelete(n + extra + i);
}
for (const selectivity of [0.5, 0.1, 0.02, 0.005]) {
  const allowed = live.filter(() => rng.next() < selectivity);
  const set = new Set(allowed);
  const truth = truthAmong(allowed);
  const z = median3(() => zgqPass(zgq, set));
  const prepared = zgq.prepareFilter(set);
  const zp = median3(() => zgqPass(zgq, prepared));
  const h64 = median3(() => hnswPass(hnsw, 64, set));
  const h256 = median3(() => hnswPass(hnsw, 256, set));
  const r = (ids: Uint32Array) => recallAtK(ids, truth, nq, K, K).toFixed(4);
  log(`| ${selectivity} | ${allowed.length} | ${r(z.ids)} | ${z.qps.toFixed(0)} | ${zp.qps.toFixed(0)} | ${r(h64.ids)} | ${h64.qps.toFixed(0)} | ${r(h256.ids)} | ${h256.qps.toFixed(0)} |`);
}
process.exit(0);
