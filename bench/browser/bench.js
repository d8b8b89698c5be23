// In-browser half of bench/browser.ts: window.zgqLoad(name) fetches a dataset the bench serves and
// builds on one thread; window.zgqPass() times one pass of single queries (one call per query).
import { ZGQIndex } from 'zgq';

let current = null;

async function f32(path) {
  const res = await fetch(path);
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return new Float32Array(await res.arrayBuffer());
}

window.zgqLoad = async (name, dim, k) => {
  current = null;
  const base = await f32(`/data/${name}/base.f32`);
  const queries = await f32(`/data/${name}/queries.f32`);
  const index = new ZGQIndex({ dim });
  const t = performance.now();
  await index.build(base, { threads: 1 });
  const buildMs = performance.now() - t;
  current = { index, queries, dim, k };
  return { buildMs, userAgent: navigator.userAgent };
};

/** One timed pass: the query set `reps` times (so small sets still time over 1000+ queries). */
window.zgqPass = (reps) => {
  const { index, queries, dim, k } = current;
  const nq = queries.length / dim;
  const ids = new Uint32Array(nq * k);
  const t = performance.now();
  for (let r = 0; r < reps; r++) {
    for (let q = 0; q < nq; q++) ids.set(index.search(queries.subarray(q * dim, (q + 1) * dim), k).ids, q * k);
  }
  const ms = (performance.now() - t) / reps;
  return { ms, ids: [...ids] };
};

/** One timed searchBatch of the whole query set on `threads` Web Workers. */
window.zgqBatch = async (threads) => {
  const { index, queries, k } = current;
  const t = performance.now();
  await index.searchBatch(queries, k, { threads });
  return performance.now() - t;
};

window.__results = Promise.resolve({ ready: true });
window.__done = true;
