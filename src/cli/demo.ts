/**
 * `zgq demo`: build an index over built-in clustered synthetic data, search it, and print
 * recall@10 against exact search and single-thread QPS beside a brute-force scan.
 */
import { ZGQIndex, type Traversal } from '../index.js';
import { clusteredGaussian } from '../data/synthetic.js';
import { bruteForceKnn, recallAtK } from '../data/groundtruth.js';
import { buildProgress } from './progress.js';

export interface DemoOptions {
  n: number;
  dim: number;
  queries: number;
  k: number;
  seed: number;
  ef?: number;
  nProbe?: number;
  rerank?: number;
  traversal?: Traversal;
}

export async function runDemo(o: DemoOptions, log: (line: string) => void = console.log): Promise<void> {
  log(`ZGQ demo: ${o.n} x ${o.dim} clustered Gaussian vectors (seed ${o.seed}), ${o.queries} queries, k = ${o.k}`);
  const ds = clusteredGaussian({ n: o.n, nQueries: o.queries, dim: o.dim, seed: o.seed });

  let t = performance.now();
  const truth = bruteForceKnn(ds.base, ds.nBase, ds.queries, ds.nQueries, o.dim, o.k, 'l2');
  const exactMs = performance.now() - t;

  const index = new ZGQIndex({ dim: o.dim, seed: o.seed });
  const progress = buildProgress();
  t = performance.now();
  await index.build(ds.base, { onProgress: progress.onProgress });
  progress.stop();
  const buildS = (performance.now() - t) / 1000;
  const stats = index.stats();

  const search = { ef: o.ef, nProbe: o.nProbe, rerank: o.rerank, traversal: o.traversal };
  const ids = new Uint32Array(ds.nQueries * o.k);
  // one warm-up pass, then the timed pass: one query per call, one thread
  for (let pass = 0; pass < 2; pass++) {
    t = performance.now();
    for (let q = 0; q < ds.nQueries; q++) {
      const hit = index.search(ds.queries.subarray(q * o.dim, (q + 1) * o.dim), o.k, search);
      ids.set(hit.ids, q * o.k);
    }
  }
  const searchMs = performance.now() - t;
  const recall = recallAtK(ids, truth.ids, ds.nQueries, o.k, o.k);
  const mb = (b: number) => (b / 1048576).toFixed(1);
  log(`index: ${stats.zones} zones (${stats.zoneGroups} groups), PQ ${stats.pqSubspaces} bytes/vector, degree <= ${stats.degree} (mean ${stats.meanDegree.toFixed(1)}), built in ${buildS.toFixed(1)} s`);
  log(`memory: ${mb(stats.memory.total)} MB (vectors ${mb(stats.memory.vectors)}, graph ${mb(stats.memory.graph)}, codes ${mb(stats.memory.codes)}, other ${mb(stats.memory.total - stats.memory.vectors - stats.memory.graph - stats.memory.codes)})`);
  log(`ZGQ        recall@${o.k} ${recall.toFixed(4)}   ${Math.round((ds.nQueries / searchMs) * 1000)} QPS (single thread, one query per call${o.traversal === 'exact' ? ', exact traversal' : ''})`);
  log(`exact scan recall@${o.k} 1.0000   ${Math.round((ds.nQueries / exactMs) * 1000)} QPS (plain TypeScript brute force, the ground truth)`);
}
