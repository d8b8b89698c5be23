// What serving through NATS costs: one index searched in this process, and the same index file
// served by 1 and 2 replica processes (`zgq serve --nats`) through a local nats-server, searched
// with ZGQCluster: per-query latency (p50 / p99, one request in flight), QPS with 8 requests in
// flight, and one batch of every query. Same data, queries and search options throughout.
//   npm run build && node --import tsx bench/cluster.ts [n, default 100000] [passes, default 3]
// Needs nats-server (Debian: apt-get install nats-server).
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZGQIndex } from '../src/index.js';
import { ZGQCluster } from '../src/cluster.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { latencyStats, median } from '../src/bench/metrics.js';
import { freePort, startCli, startNats } from '../test/helpers/processes.js';

const n = Number(process.argv[2] ?? 100_000);
const passes = Number(process.argv[3] ?? 3);
const nq = 1000;
const dim = 128;
const K = 10;

const ds = clusteredGaussian({ n, nQueries: nq, dim, seed: 42, outlierFraction: 0.3 });
const rows = Array.from({ length: nq }, (_, q) => ds.queries.subarray(q * dim, (q + 1) * dim));
const dir = mkdtempSync(join(tmpdir(), 'zgq-bench-cluster-'));
const file = join(dir, 'index.zgq');
const index = new ZGQIndex({ dim });
await index.build(ds.base);
await index.save(file);

const port = await freePort();
const url = `nats://127.0.0.1:${port}`;
const children: ChildProcess[] = [await startNats(port)];

interface Row {
  side: string;
  p50: number;
  p99: number;
  qps1: number;
  qps8: number;
  batchQps: number;
}

/** One request in flight: per-query latency (µs) and QPS; then 8 in flight; then one batch. */
async function measure(side: string, search: (q: Float32Array) => Promise<unknown> | unknown, batch: () => Promise<unknown>): Promise<Row> {
  const lat = new Float64Array(nq);
  const p50: number[] = [];
  const p99: number[] = [];
  const qps1: number[] = [];
  const qps8: number[] = [];
  const batchQps: number[] = [];
  for (let q = 0; q < nq; q++) await search(rows[q]); // warm-up
  for (let p = 0; p < passes; p++) {
    const start = performance.now();
    for (let q = 0; q < nq; q++) {
      const t = performance.now();
      await search(rows[q]);
      lat[q] = (performance.now() - t) * 1000;
    }
    qps1.push(nq / ((performance.now() - start) / 1000));
    const s = latencyStats(lat);
    p50.push(s.p50);
    p99.push(s.p99);
    let next = 0;
    const t8 = performance.now();
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < nq) await search(rows[next++]);
    }));
    qps8.push(nq / ((performance.now() - t8) / 1000));
    const tb = performance.now();
    await batch();
    batchQps.push(nq / ((performance.now() - tb) / 1000));
  }
  return { side, p50: median(p50), p99: median(p99), qps1: median(qps1), qps8: median(qps8), batchQps: median(batchQps) };
}

const results: Row[] = [];
try {
  results.push(await measure('ZGQIndex in this process', (q) => index.search(q, K), () => index.searchBatch(ds.queries, K)));
  for (const replicas of [1, 2]) {
    while (children.length - 1 < replicas) children.push((await startCli(['serve', file, '--nats', url, '--name', 'bench'], /as a replica/)).child);
    const cluster = await ZGQCluster.connect(url, 'bench');
    results.push(await measure(`ZGQCluster, ${replicas} replica process${replicas > 1 ? 'es' : ''}`, (q) => cluster.search(q, K), () => cluster.searchBatch(ds.queries, K)));
    await cluster.close();
  }
} finally {
  for (const c of children.reverse()) c.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
console.log(`# ${n} x ${dim} clustered (paper recipe), ${nq} queries, k = ${K}, the index's default search; medians of ${passes} passes`);
console.log('| side | p50 µs | p99 µs | QPS, 1 in flight | QPS, 8 in flight | QPS, one batch of 1,000 |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const r of results) console.log(`| ${r.side} | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} | ${r.qps1.toFixed(0)} | ${r.qps8.toFixed(0)} | ${r.batchQps.toFixed(0)} |`);
process.exit(0);
