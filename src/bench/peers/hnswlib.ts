/**
 * hnswlib-node (N-API binding of hnswlib): HNSW with M = 16, efConstruction = 200, swept over ef.
 * Its API takes `number[]` only, so queries are converted once before any timed loop.
 */
import { statSync, unlinkSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { timedChunks } from '../progress.js';
import { fileSafe } from '../datasets.js';
import type { LibraryInfo } from '../types.js';
import { loadPackage } from './load.js';
import type { Peer, PeerContext, PeerIndex } from './types.js';

/** The part of hnswlib-node's API the harness uses. */
export interface HnswIndex {
  initIndex(maxElements: number, m?: number, efConstruction?: number, randomSeed?: number): void;
  addPoint(point: number[], label: number): void;
  setEf(ef: number): void;
  searchKnn(query: number[], k: number): { distances: number[]; neighbors: number[] };
  writeIndexSync(path: string): void;
}
export interface HnswModule {
  HierarchicalNSW: new (space: 'l2', dim: number) => HnswIndex;
}

export const HNSW_M = 16;
export const HNSW_EF_CONSTRUCTION = 200;

/** Rows of a flat array as `number[]` (the only input hnswlib-node accepts). */
export function toArrays(x: Float32Array, from: number, to: number, dim: number): number[][] {
  const rows: number[][] = [];
  for (let i = from; i < to; i++) rows.push(Array.from(x.subarray(i * dim, (i + 1) * dim)));
  return rows;
}

/** The hnswlib-node adapter. */
export function hnswlibPeer(): Peer {
  let mod: HnswModule | undefined;
  let version = '';
  return {
    library: 'hnswlib-node',
    async probe(): Promise<LibraryInfo> {
      const got = loadPackage<HnswModule>('hnswlib-node');
      if (!got.ok) return { library: 'hnswlib-node', status: 'missing', version: null, detail: got.reason };
      try {
        // a tiny index proves the addon works, not just that the JS wrapper loads
        const probe = new got.mod.HierarchicalNSW('l2', 2);
        probe.initIndex(1, HNSW_M, HNSW_EF_CONSTRUCTION, 1);
        probe.addPoint([0, 0], 0);
        probe.searchKnn([1, 1], 1);
      } catch (err) {
        return { library: 'hnswlib-node', status: 'failed', version: got.version, detail: `addon does not run: ${err instanceof Error ? err.message : String(err)}` };
      }
      mod = got.mod;
      version = got.version;
      return { library: 'hnswlib-node', status: 'ok', version, detail: 'N-API addon built from source at install' };
    },
    async build(ctx: PeerContext): Promise<PeerIndex[]> {
      const { ds, k, progress } = ctx;
      const index = new mod!.HierarchicalNSW('l2', ds.dim);
      index.initIndex(ds.nBase, HNSW_M, HNSW_EF_CONSTRUCTION, 100);
      const seconds = await timedChunks(ds.nBase, progress.task('build hnswlib-node', ds.nBase), (from, to) => {
        const rows = toArrays(ds.base, from, to, ds.dim);
        return () => {
          for (let i = from; i < to; i++) index.addPoint(rows[i - from], i);
        };
      });
      await mkdir(ctx.cacheDir, { recursive: true });
      const file = join(ctx.cacheDir, `hnswlib-${fileSafe(ds.name)}-${process.pid}.bin`);
      index.writeIndexSync(file);
      const bytes = statSync(file).size;
      unlinkSync(file);
      const queries = toArrays(ds.queries, 0, ds.nQueries, ds.dim);
      const label = `HNSW M=${HNSW_M} efConstruction=${HNSW_EF_CONSTRUCTION}`;
      return [
        {
          library: 'hnswlib-node',
          series: 'hnswlib-node',
          index: label,
          build: {
            library: 'hnswlib-node', series: 'hnswlib-node', index: label, buildSeconds: seconds, buildThreads: 1,
            memory: { bytes, method: 'saved index file size (writeIndexSync): vectors + links + labels', components: null },
          },
          points: ctx.plan.hnswEf.map((ef) => ({ params: { ef } })),
          async runSingle(point, nq, repeat, out, lat) {
            index.setEf(point.params.ef);
            let i = 0;
            const start = performance.now();
            for (let r = 0; r < repeat; r++) {
              for (let q = 0; q < nq; q++) {
                const t = performance.now();
                const res = index.searchKnn(queries[q], k);
                lat[i++] = (performance.now() - t) * 1000;
                const ids = res.neighbors; // nearest first
                for (let j = 0; j < ids.length && j < k; j++) out[q * k + j] = ids[j];
              }
            }
            return (performance.now() - start) / 1000;
          },
          batchThreads: [],
          batchNote: 'hnswlib-node has no batch search (searchKnn takes one query)',
          async runBatch() {
            return NaN;
          },
          async close() {},
        },
      ];
    },
    async shutdown() {},
  };
}
