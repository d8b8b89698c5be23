// ZGQ demo page: seeded clustered data, an exact brute-force scan as ground truth, then a ZGQ
// index built here (progress bar) and searched one query per call. Results also go to
// window.__results so the browser tests can run this page.
import { ZGQIndex } from 'zgq';

const K = 10;
const $ = (id) => document.getElementById(id);
const params = new URL(location.href).searchParams;
const setup = {
  n: Number(params.get('n') ?? 20000),
  dim: Number(params.get('dim') ?? 64),
  queries: Number(params.get('queries') ?? 500),
};
for (const [name, value] of Object.entries(setup)) $('form').elements[name].value = value;

/** Small seeded generator (mulberry32) with Gaussian draws (Box-Muller). */
function rng(seed) {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { uniform, gauss: () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform()) };
}

/** n base vectors and nq queries around max(10, n / 1000) Gaussian centres (spread 0.3), row-major. */
function clustered(n, nq, dim, seed) {
  const r = rng(seed);
  const clusters = Math.max(10, Math.round(n / 1000));
  const centres = Float32Array.from({ length: clusters * dim }, r.gauss);
  const draw = (count) => {
    const x = new Float32Array(count * dim);
    for (let i = 0; i < count; i++) {
      const c = Math.floor(r.uniform() * clusters) * dim;
      for (let j = 0; j < dim; j++) x[i * dim + j] = centres[c + j] + 0.3 * r.gauss();
    }
    return x;
  };
  return { base: draw(n), queries: draw(nq) };
}

/** Exact k nearest (squared L2) of one query: the ground truth, and the baseline to beat. */
function bruteForce(base, n, dim, q, k) {
  const ids = new Int32Array(k).fill(-1);
  const dist = new Float32Array(k).fill(Infinity);
  for (let i = 0; i < n; i++) {
    let d = 0;
    for (let j = 0; j < dim; j++) {
      const t = base[i * dim + j] - q[j];
      d += t * t;
    }
    if (d >= dist[k - 1]) continue;
    let p = k - 1;
    for (; p > 0 && dist[p - 1] > d; p--) {
      dist[p] = dist[p - 1];
      ids[p] = ids[p - 1];
    }
    dist[p] = d;
    ids[p] = i;
  }
  return ids;
}

const paint = () => new Promise((resolve) => setTimeout(resolve, 0));
const fmt = (x) => Math.round(x).toLocaleString('en-US');

function row(name, recall, qps, build) {
  const tr = document.createElement('tr');
  for (const text of [name, recall.toFixed(4), fmt(qps), build]) tr.appendChild(document.createElement('td')).textContent = text;
  $('rows').appendChild(tr);
}

async function run({ n, dim, queries: nq }) {
  $('status').textContent = `Generating ${n.toLocaleString('en-US')} × ${dim} vectors and ${nq} queries (seed 1)…`;
  await paint();
  const { base, queries } = clustered(n, nq, dim, 1);

  $('status').textContent = 'Exact search (brute force) for the ground truth…';
  await paint();
  let t = performance.now();
  const truth = [];
  for (let q = 0; q < nq; q++) truth.push(bruteForce(base, n, dim, queries.subarray(q * dim, (q + 1) * dim), K));
  const exactQps = nq / ((performance.now() - t) / 1000);
  row('exact scan (plain JS)', 1, exactQps, '–');

  // progress: zones (k-means) and PQ training are about a third of the build, the graph the rest
  const span = { zones: [0, 0.2], pq: [0.2, 0.35], graph: [0.35, 0.95], tune: [0.95, 1], done: [1, 1] };
  const index = new ZGQIndex({ dim, seed: 1 });
  t = performance.now();
  await index.build(base, {
    onProgress: (phase, f) => {
      const [a, b] = span[phase];
      $('progress').value = a + (b - a) * f;
      $('status').textContent = `Building the index: ${phase} ${(f * 100).toFixed(0)} %`;
    },
  });
  const buildMs = performance.now() - t;
  const stats = index.stats();
  const p = stats.parallel;
  $('threads').textContent = p.via === 'none'
    ? `Built on one thread: ${p.reason}.`
    : `Built with ${p.threads} Web Workers sharing one WebAssembly memory (the page is cross-origin isolated).`;

  $('status').textContent = 'Searching…';
  await paint();
  let hits = 0;
  let zgqMs = Infinity;
  // one warm-up pass, then the best of two timed passes
  for (let pass = 0; pass < 3; pass++) {
    hits = 0;
    t = performance.now();
    for (let q = 0; q < nq; q++) {
      const found = index.search(queries.subarray(q * dim, (q + 1) * dim), K).ids;
      for (const id of found) if (truth[q].includes(id)) hits++;
    }
    if (pass > 0) zgqMs = Math.min(zgqMs, performance.now() - t);
  }
  const recall = hits / (nq * K);
  const zgqQps = nq / (zgqMs / 1000);
  row('ZGQ', recall, zgqQps, `${(buildMs / 1000).toFixed(2)} s`);

  t = performance.now();
  await index.searchBatch(queries, K);
  const batchQps = nq / ((performance.now() - t) / 1000);
  $('batch').textContent = `searchBatch of all ${nq} queries: ${fmt(batchQps)} QPS on ${p.via === 'none' ? 'one thread' : `${p.threads} workers`}. ` +
    `Index: ${stats.zones} zones, PQ ${stats.pqSubspaces} bytes per vector, ${(stats.memory.total / 1048576).toFixed(1)} MB.`;
  $('status').textContent = `Done: ZGQ answers ${(zgqQps / exactQps).toFixed(0)}× faster than the exact scan at recall@10 ${recall.toFixed(3)}.`;
  return {
    setup: { n, dim, queries: nq },
    parallel: p,
    zgq: { recall, qps: zgqQps, buildMs, batchQps },
    exact: { recall: 1, qps: exactQps },
  };
}

$('form').addEventListener('submit', (event) => {
  // a fresh page per run keeps memory use flat and the URL shareable
  event.preventDefault();
  const f = new FormData($('form'));
  location.search = new URLSearchParams({ n: f.get('n'), dim: f.get('dim'), queries: f.get('queries') }).toString();
});

window.__results = run(setup).then(
  (r) => r,
  (e) => {
    $('status').textContent = `Failed: ${e.message}`;
    return { error: String(e?.stack ?? e) };
  },
).finally(() => {
  window.__done = true;
});
