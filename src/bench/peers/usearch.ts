/**
 * USearch (C++ with SIMD, N-API binding): HNSW with connectivity 16, expansion_add 200, swept over
 * expansion_search. That knob is fixed when an Index is constructed, so the built index is saved
 * once and loaded into a fresh Index per value.
 */
import { existsSync, statSync, unlinkSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileSafe } from '../datasets.js';
import { timedChunks } from '../progress.js';
import type { LibraryInfo } from '../types.js';
import { loadPackage } from './load.js';
import { queryViews } from './queries.js';
import type { Peer, PeerContext, PeerIndex } from './types.js';

/** The part of usearch's API the harness uses. */
interface UIndex {
  add(keys: BigUint64Array, vectors: Float32Array, threads?: number): void;
  search(vectors: Float32Array, k: number, threads: number): { keys: BigUint64Array; counts?: BigUint64Array };
  save(path: string): void;
  load(path: string): void;
  view(path: string): void;
  size(): number;
}
interface UModule {
  Index: new (config: {
    dimensions: number; metric: string; quantization: string; connectivity: number;
    expansion_add: number; expansion_search: number; multi: boolean;
  }) => UIndex;
  MetricKind: { L2sq: string };
  ScalarKind: { F32: string };
}

export const USEARCH_CONNECTIVITY = 16;
export const USEARCH_EXPANSION_ADD = 200;
/** Above this file size, per-value indexes memory-map the saved file (`view`) instead of copying it. */
const VIEW_ABOVE_BYTES = 256 * 1024 * 1024;

/** The usearch adapter. */
export function usearchPeer(batchThreads: number[]): Peer {
  let mod: UModule | undefined;
  const make = (dim: number, expansionSearch: number) =>
    new mod!.Index({
      dimensions: dim, metric: mod!.MetricKind.L2sq, quantization: mod!.ScalarKind.F32, connectivity: USEARCH_CONNECTIVITY,
      expansion_add: USEARCH_EXPANSION_ADD, expansion_search: expansionSearch, multi: false,
    });
  return {
    library: 'usearch',
    async probe(): Promise<LibraryInfo> {
      const got = loadPackage<UModule>('usearch');
      if (!got.ok) return { library: 'usearch', status: 'missing', version: null, detail: got.reason };
      mod = got.mod;
      try {
        const probe = make(2, 16);
        probe.add(new BigUint64Array([0n]), new Float32Array([0, 0]), 1);
        probe.search(new Float32Array([1, 1]), 1, 1);
      } catch (err) {
        mod = undefined;
        return { library: 'usearch', status: 'failed', version: got.version, detail: `addon does not run: ${err instanceof Error ? err.message : String(err)}` };
      }
      return { library: 'usearch', status: 'ok', version: got.version, detail: 'prebuilt N-API binary shipped in the package' };
    },
    async build(ctx: PeerContext): Promise<PeerIndex[]> {
      const { ds, k, progress } = ctx;
      const built = make(ds.dim, 64);
      const seconds = await timedChunks(ds.nBase, progress.task('build usearch', ds.nBase), (from, to) => {
        const keys = new BigUint64Array(to - from);
        for (let i = from; i < to; i++) keys[i - from] = BigInt(i);
        return () => built.add(keys, ds.base.subarray(from * ds.dim, to * ds.dim), 1);
      });
      await mkdir(ctx.cacheDir, { recursive: true });
      const file = join(ctx.cacheDir, `usearch-${fileSafe(ds.name)}-${process.pid}.usearch`);
      built.save(file);
      const bytes = statSync(file).size;
      const mapped = bytes > VIEW_ABOVE_BYTES;
      const byEf = new Map<number, UIndex>();
      const indexFor = (ef: number): UIndex => {
        let idx = byEf.get(ef);
        if (!idx) {
          idx = make(ds.dim, ef);
          if (mapped) idx.view(file);
          else idx.load(file);
          byEf.set(ef, idx);
        }
        return idx;
      };
      const views = queryViews(ds.queries, ds.nQueries, ds.dim);
      const nBase = BigInt(ds.nBase);
      const label = `HNSW connectivity=${USEARCH_CONNECTIVITY} expansion_add=${USEARCH_EXPANSION_ADD} f32`;
      const points = ctx.plan.hnswEf.map((ef) => ({ params: { expansion_search: ef } }));
      // load every per-value index before timing so no pass pays for a load
      for (const p of points) indexFor(p.params.expansion_search);
      return [
        {
          library: 'usearch',
          series: 'usearch',
          index: label,
          build: {
            library: 'usearch', series: 'usearch', index: label, buildSeconds: seconds, buildThreads: 1,
            memory: { bytes, method: 'saved index file size (Index.save)', components: null },
          },
          points,
          async runSingle(point, nq, repeat, out, lat) {
            const idx = indexFor(point.params.expansion_search);
            let i = 0;
            const start = performance.now();
            for (let r = 0; r < repeat; r++) {
              for (let q = 0; q < nq; q++) {
                const t = performance.now();
                const res = idx.search(views[q], k, 1);
                lat[i++] = (performance.now() - t) * 1000;
                const keys = res.keys;
                for (let j = 0; j < k && j < keys.length; j++) out[q * k + j] = keys[j] < nBase ? Number(keys[j]) : 0xffffffff;
              }
            }
            return (performance.now() - start) / 1000;
          },
          batchThreads,
          async runBatch(point, threads, out) {
            const idx = indexFor(point.params.expansion_search);
            const start = performance.now();
            const res = idx.search(ds.queries, k, threads);
            const seconds = (performance.now() - start) / 1000;
            const keys = res.keys;
            for (let j = 0; j < keys.length && j < out.length; j++) out[j] = keys[j] < nBase ? Number(keys[j]) : 0xffffffff;
            return seconds;
          },
          async close() {
            byEf.clear();
            if (existsSync(file)) unlinkSync(file);
          },
        },
      ];
    },
    async shutdown() {},
  };
}
