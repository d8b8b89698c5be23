/**
 * ZGQ itself: one index with default build options, searched over a grid of (ef, nProbe, rerank)
 * and of (ef, nProbe, with the index's zone scans, none or wide ones) with traversal 'exact', which
 * the harness narrows with a pilot.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ZGQIndex, type SearchOptions } from '../../index.js';
import { isInstalled, packageRoot } from '../paths.js';
import { zgqBatchCandidates, zgqCandidates } from '../sweeps.js';
import { queryViews } from './queries.js';
import type { LibraryInfo } from '../types.js';
import type { Peer, PeerContext, PeerIndex, SweepPoint } from './types.js';

/**
 * A grid point's search options (params are numbers): `exact: 1` stands for traversal 'exact',
 * `fullScan: 1` for traversal 'scan' (every stored vector), `fastScan: 1` for 'fastscan'.
 */
export function searchOptions(point: SweepPoint): SearchOptions {
  const { ef, nProbe, rerank, exact, scan, scanRatio, fullScan, fastScan } = point.params;
  if (fullScan === 1) return { traversal: 'scan' };
  if (fastScan === 1) return { traversal: 'fastscan', rerank };
  if (exact !== 1) return { ef, nProbe, rerank };
  const options: SearchOptions = { ef, nProbe, traversal: 'exact' };
  if (scan !== undefined) options.scan = scan;
  if (scanRatio !== undefined) options.scanRatio = scanRatio;
  return options;
}

/**
 * The ZGQ adapter. The build runs on one thread like every peer's (ZGQ's builder can use more:
 * `build(x, { threads })`); batch mode runs `searchBatch` with each of `batchThreads`.
 */
export function zgqPeer(batchThreads: number[]): Peer {
  return {
    library: 'zgq',
    async probe(): Promise<LibraryInfo> {
      const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
      return { library: 'zgq', status: 'ok', version: pkg.version, detail: isInstalled(packageRoot()) ? `installed at ${packageRoot()}` : 'this checkout' };
    },
    async build(ctx: PeerContext): Promise<PeerIndex[]> {
      const { ds, k, progress } = ctx;
      const index = new ZGQIndex({ dim: ds.dim, metric: 'l2', seed: 42 });
      const bar = progress.task(`build ZGQ`, 100);
      // zones and PQ are short; the graph is most of the build (same weights as `zgq demo`)
      const weights = { zones: [0, 10], pq: [10, 25], graph: [25, 95], tune: [95, 100], done: [100, 100] } as const;
      const t0 = performance.now();
      try {
        await index.build(ds.base, {
          threads: 1,
          onProgress: (phase, fraction) => {
            const [from, to] = weights[phase];
            bar.update(Math.round(from + (to - from) * fraction), phase);
          },
        });
      } finally {
        bar.stop();
      }
      // the fast scan's codes are made on its first search: counted here, in build time and memory,
      // since the sweep searches with it
      index.search(ds.queries.subarray(0, ds.dim), k, { traversal: 'fastscan' });
      const buildSeconds = (performance.now() - t0) / 1000;
      const stats = index.stats();
      const { total, ...components } = stats.memory;
      const views = queryViews(ds.queries, ds.nQueries, ds.dim);
      // the grid sweeps ef, nProbe, rerank and traversal (the exact walk's variants also scan and
      // scanRatio); the label gives the index defaults the other points search with
      const { ef, nProbe, rerank, traversal, ...fixed } = index.options.search;
      const fixedText = Object.entries(fixed).map(([n, v]) => `${n}=${v}`).join(' ');
      const label = `ZGQ zones=${stats.zones} degree=${stats.degree} PQ${stats.pqSubspaces}${stats.residual ? ' residual' : ''}; search ${fixedText}`;
      // the configuration a search call gets without options: always timed
      const defaultPoint: SweepPoint = {
        params: traversal === 'scan' ? { fullScan: 1 } : traversal === 'fastscan' ? { fastScan: 1, rerank } : traversal === 'exact' ? { ef, nProbe, exact: 1 } : { ef, nProbe, rerank },
      };
      return [
        {
          library: 'zgq',
          series: 'ZGQ',
          index: label,
          build: {
            library: 'zgq', series: 'ZGQ', index: label, buildSeconds, buildThreads: 1,
            memory: { bytes: total, method: 'ZGQIndex.stats().memory.total (bytes by component)', components: { ...components } },
          },
          points: zgqCandidates(ctx.plan, k),
          pilot: { keep: [defaultPoint] },
          async runSingle(point, nq, repeat, out, lat) {
            const opts = searchOptions(point);
            let i = 0;
            const start = performance.now();
            for (let r = 0; r < repeat; r++) {
              for (let q = 0; q < nq; q++) {
                const t = performance.now();
                const res = index.search(views[q], k, opts);
                lat[i++] = (performance.now() - t) * 1000;
                out.set(res.ids, q * k);
              }
            }
            return (performance.now() - start) / 1000;
          },
          batchThreads,
          batchCandidates: zgqBatchCandidates(ctx.plan, k),
          async runBatch(point, threads, out) {
            const opts = { ...searchOptions(point), threads };
            const start = performance.now();
            const res = await index.searchBatch(ds.queries, k, opts);
            const seconds = (performance.now() - start) / 1000;
            out.set(res.ids);
            return seconds;
          },
          async close() {},
        },
      ];
    },
    async shutdown() {},
  };
}
