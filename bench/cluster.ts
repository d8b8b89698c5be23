// What serving through NATS costs and gives: n x 128 clustered vectors (default 1M) as one index in
// this process (one shard, and the same data in 3 shards), and the 3-shard index published to a
// local nats-server's JetStream and served by 1, 2 and 3 replica processes (`zgq serve --nats
// --shard ...`), searched with ZGQCluster. Per side: recall@10 against exact truth, latency (p50 /
// p99, one request in flight), QPS with 1 and 8 requests in flight, and one batch of every query
// (the exact walk everywhere: SEARCH);
// then the bare NATS round trip (an empty request to an echo in this process) and the shards a
// query reaches. Same data, queries and search options throughout; medians of `passes` passes.
//   npm run build && node --import tsx bench/cluster.ts [n, default 1000000] [passes, default 3]
// Indexes and truth are cached in bench/results/cache. Needs nats-server (Debian: apt-get install nats-server).
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { ZGQIndex } from '../src/index.js';
import { ZGQCluster, publish, type Manifest } from '../src/cluster.js';
import type { Router } from '../src/shards.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { bruteForceKnn, recallAtK } from '../src/data/groundtruth.js';
import { latencyStats, median } from '../src/bench/metrics.js';
import { freePort, startCli, startNats } from '../test/helpers/processes.js';

const n = Number(process.argv[2] ?? 1_000_000);
const passes = Number(process.argv[3] ?? 3);
const nq = 1000;
const dim = 128;
const K = 10;
const SHARDS = 3;
/**
 * One search for every side: the exact-distance walk at each index's other defaults. The defaults
 * calibrated on the 3-shard index (the PQ walk) reach 0.85 on these queries, the 1-shard index's
 * 0.97; with the exact walk both reach about 0.97, so the sides compare at equal recall.
 */
const SEARCH = { traversal: 'exact' } as const;
const cache = join(import.meta.dirname, 'results', 'cache');
mkdirSync(cache, { recursive: true });
const log = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

const ds = clusteredGaussian({ n, nQueries: nq, dim, seed: 42, outlierFraction: 0.3 });
const rows = Array.from({ length: nq }, (_, q) => ds.queries.subarray(q * dim, (q + 1) * dim));

const truthFile = join(cache, `cluster-truth-${n}x${nq}.u32`);
if (!existsSync(truthFile)) {
  log(`exact truth of ${nq} queries over ${n}`);
  writeFileSync(truthFile, bruteForceKnn(ds.base, n, ds.queries, nq, dim, K).ids);
}
const truth = new Uint32Array(readFileSync(truthFile).buffer.slice(0));

/** The index over the data in `shards` shards, built once and cached. */
async function indexFile(shards: number): Promise<string> {
  const file = join(cache, `cluster-${n}-${shards}.zgq`);
  if (existsSync(file)) return file;
  log(`building ${n} x ${dim} in ${shards} shard(s)`);
  const index = new ZGQIndex({ dim, seed: 42 });
  await index.build(ds.base, { shards });
  await index.save(file);
  index.close();
  return file;
}
const oneFile = await indexFile(1);
const shardedFile = await indexFile(SHARDS);

interface Row {
  side: string;
  recall: number;
  p50: number;
  p99: number;
  qps1: number;
  qps8: number;
  batchQps: number;
}

/** One request in flight: per-query latency (µs) and QPS; then 8 in flight; then one batch (recall from it). */
async function measure(side: string, search: (q: Float32Array) => Promise<unknown> | unknown, batch: () => Promise<{ ids: Uint32Array }>): Promise<Row> {
  log(side);
  const lat = new Float64Array(nq);
  const p50: number[] = [];
  const p99: number[] = [];
  const qps1: number[] = [];
  const qps8: number[] = [];
  const batchQps: number[] = [];
  let recall = 0;
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
    const got = await batch();
    batchQps.push(nq / ((performance.now() - tb) / 1000));
    recall = recallAtK(got.ids, truth, nq, K);
  }
  return { side, recall, p50: median(p50), p99: median(p99), qps1: median(qps1), qps8: median(qps8), batchQps: median(batchQps) };
}

const results: Row[] = [];
const dir = mkdtempSync(join(tmpdir(), 'zgq-bench-cluster-'));
const port = await freePort();
const url = `nats://127.0.0.1:${port}`;
const nats = await startNats(port, join(dir, 'js'));
const children: ChildProcess[] = [];
let roundTrip = 0;
let fanOut = 0;
let publishSeconds = 0;
const startSeconds: string[] = [];
try {
  for (const [file, shards] of [[oneFile, 1], [shardedFile, SHARDS]] as const) {
    const index = await ZGQIndex.load(file);
    results.push(await measure(`ZGQIndex in this process, ${shards} shard${shards > 1 ? 's' : ''}`, (q) => index.search(q, K, SEARCH), () => index.searchBatch(ds.queries, K, SEARCH)));
    if (shards === SHARDS) {
      log(`publishing ${file}`);
      const t = performance.now();
      await publish(url, index, 'bench');
      publishSeconds = (performance.now() - t) / 1000;
    }
    index.close();
  }

  // the transport alone: an empty request answered by an echo on the same server
  const nc = await connect({ servers: url });
  const echo = nc.subscribe('bench.echo', {
    callback: (_err, msg) => {
      msg.respond(msg.data);
    },
  });
  const empty = new Uint8Array(0);
  for (let i = 0; i < 1000; i++) await nc.request('bench.echo', empty);
  const echoes: number[] = [];
  for (let p = 0; p < passes; p++) {
    const lat = new Float64Array(nq);
    for (let i = 0; i < nq; i++) {
      const t = performance.now();
      await nc.request('bench.echo', empty);
      lat[i] = (performance.now() - t) * 1000;
    }
    echoes.push(latencyStats(lat).p50);
  }
  roundTrip = median(echoes);
  echo.unsubscribe();
  await nc.close();

  const layouts: [string, string[]][] = [['1 process serving shards 0-2', ['0,1,2']], ['2 processes (shards 0-1, 2)', ['0,1', '2']], ['3 processes, one shard each', ['0', '1', '2']]];
  for (const [label, shardLists] of layouts) {
    const t = performance.now();
    const started = await Promise.all(shardLists.map((list) => startCli(['serve', '--nats', url, '--name', 'bench', '--shard', list], /zgq: serving shards/)));
    startSeconds.push(`${label}: ${((performance.now() - t) / 1000).toFixed(1)} s`);
    children.push(...started.map((s) => s.child));
    const cluster = await ZGQCluster.connect(url, 'bench');
    // the client's own routing at the index's default nProbe
    const inside = cluster as unknown as { router: Router; manifest: Manifest };
    const lists = inside.router.routeBatch(ds.queries, nq, inside.manifest.nProbe, SHARDS, false);
    fanOut = lists.reduce((sum, list) => sum + list.length, 0) / nq;
    results.push(await measure(`ZGQCluster, ${label}`, (q) => cluster.search(q, K, SEARCH), () => cluster.searchBatch(ds.queries, K, SEARCH)));
    await cluster.close();
    for (const c of children.splice(0)) {
      const gone = new Promise((resolve) => c.once('exit', resolve));
      c.kill('SIGTERM');
      await gone;
    }
  }
} finally {
  for (const c of children) c.kill('SIGKILL');
  nats.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
console.log(`# ${n} x ${dim} clustered (paper recipe, seed 42), ${nq} queries, k = ${K}, search ${JSON.stringify(SEARCH)}; medians of ${passes} passes`);
console.log('| side | recall@10 | p50 µs | p99 µs | QPS, 1 in flight | QPS, 8 in flight | QPS, one batch of 1,000 |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of results) {
  console.log(`| ${r.side} | ${r.recall.toFixed(3)} | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} | ${r.qps1.toFixed(0)} | ${r.qps8.toFixed(0)} | ${r.batchQps.toFixed(0)} |`);
}
console.log(`\nNATS round trip alone (empty request to an echo in this process), p50: ${roundTrip.toFixed(0)} µs`);
console.log(`Shards a query reaches at the default nProbe: ${fanOut.toFixed(2)} of ${SHARDS} on average`);
console.log(`Publishing the ${SHARDS}-shard index: ${publishSeconds.toFixed(1)} s; replicas loading it from JetStream until they serve: ${startSeconds.join('; ')}`);
process.exit(0);
