// hnswlib (through hnswlib-node) as the paper's prototype used it: any M and efConstruction, rows
// inserted in their own order or zone by zone (the prototype's "zone-ordered insertion"), searched
// one query per call or as a threaded batch (the prototype's timing: one multi-threaded call for
// the whole query set, its wall time divided by the set's size), here with worker threads that
// each load the index file and search a share of the batch.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { loadPackage } from '../../src/bench/peers/load.js';
import type { HnswIndex, HnswModule } from '../../src/bench/peers/hnswlib.js';
import { createKernels } from '../../src/kernels/wasm.js';
import { buildZones } from '../../src/zones.js';
import { K, since, type PaperData } from './measure.js';

export interface HnswRecipe {
  M: number;
  efConstruction: number;
  /** 'input': rows in their own order (random with respect to the clusters); 'zones': zone by zone. */
  order: 'input' | 'zones';
}

export function recipeLabel(r: HnswRecipe): string {
  return `hnswlib M=${r.M} efC=${r.efConstruction}${r.order === 'zones' ? ' zone-ordered' : ''}`;
}

/**
 * The prototype's zone-ordered insertion: rows grouped by their k-means zone (`zones` zones, ZGQ's
 * own k-means), zone after zone, each zone's rows nearest its centroid first. Returns the order
 * with the zones it came from (zone z's rows are order[zoneStart[z] .. zoneStart[z + 1])).
 */
export function zoneOrder(base: Float32Array, n: number, dim: number, zones: number, seed: number): { order: Uint32Array; zoneStart: Uint32Array; centroids: Float32Array } {
  const z = buildZones(createKernels(), base, n, dim, zones, seed);
  const order = Uint32Array.from(z.order);
  const dist = new Float64Array(n);
  for (let zone = 0; zone < z.nZones; zone++) {
    for (let i = z.zoneStart[zone]; i < z.zoneStart[zone + 1]; i++) {
      let s = 0;
      for (let d = 0; d < dim; d++) {
        const t = base[order[i] * dim + d] - z.centroids[zone * dim + d];
        s += t * t;
      }
      dist[order[i]] = s;
    }
    order.subarray(z.zoneStart[zone], z.zoneStart[zone + 1]).sort((a, b) => dist[a] - dist[b]);
  }
  return { order, zoneStart: z.zoneStart, centroids: z.centroids };
}

let hnswlib: HnswModule | null = null;

/** hnswlib-node, or why it cannot run. */
export function loadHnswlib(): { ok: true } | { ok: false; reason: string } {
  if (hnswlib) return { ok: true };
  const got = loadPackage<HnswModule>('hnswlib-node');
  if (!got.ok) return { ok: false, reason: got.reason };
  hnswlib = got.mod;
  return { ok: true };
}

/** One built hnswlib index, its build time and file size, searchable per query or in batches. */
export class PaperHnsw {
  /** Every index not yet closed (closeAll frees them after a failed run). */
  private static readonly open = new Set<PaperHnsw>();
  private workers: Worker[] = [];
  private readonly dir: string;
  readonly file: string;
  readonly bytes: number;

  private constructor(
    readonly recipe: HnswRecipe,
    private readonly index: HnswIndex,
    readonly buildSeconds: number,
    private readonly data: PaperData,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), 'zgq-paper-'));
    this.file = join(this.dir, 'index.bin');
    try {
      index.writeIndexSync(this.file);
      this.bytes = statSync(this.file).size;
    } catch (err) {
      rmSync(this.dir, { recursive: true, force: true });
      throw err;
    }
    PaperHnsw.open.add(this);
  }

  /** Close every index still open: its workers and its file. */
  static async closeAll(): Promise<void> {
    for (const h of [...PaperHnsw.open]) await h.close();
  }

  /** Build over data's base in the recipe's order (zone order from `order` when given). */
  static build(data: PaperData, recipe: HnswRecipe, order: Uint32Array | null): PaperHnsw {
    const { base, nBase: n, dim } = data.ds;
    if (recipe.order === 'zones' && !order) throw new Error('a zone-ordered recipe needs its order');
    const index = new hnswlib!.HierarchicalNSW('l2', dim);
    index.initIndex(n, recipe.M, recipe.efConstruction, 100);
    let seconds = 0;
    // rows converted a chunk at a time, outside the timed part (hnswlib-node takes number[] only)
    for (let from = 0; from < n; from += 10_000) {
      const to = Math.min(n, from + 10_000);
      const rows: number[][] = [];
      for (let i = from; i < to; i++) {
        const row = recipe.order === 'zones' ? order![i] : i;
        rows.push(Array.from(base.subarray(row * dim, (row + 1) * dim)));
      }
      const start = performance.now();
      for (let i = from; i < to; i++) index.addPoint(rows[i - from], recipe.order === 'zones' ? order![i] : i);
      seconds += since(start);
    }
    return new PaperHnsw(recipe, index, seconds, data);
  }

  /** One query per call, every query once; ids to out. */
  searchEach(ef: number, out: Uint32Array, data: PaperData = this.data): number {
    this.index.setEf(ef);
    const rows = data.queryRows;
    const start = performance.now();
    for (let q = 0; q < rows.length; q++) {
      const got = this.index.searchKnn(rows[q], K).neighbors;
      for (let j = 0; j < K; j++) out[q * K + j] = j < got.length ? got[j] : 0xffffffff;
    }
    return since(start);
  }

  /**
   * Every query of `data` in one threaded call: `threads` workers, each with its own copy of the
   * index (loaded from the file once) and its contiguous share of the queries (handed over before
   * the clock starts), search their shares; seconds from the request to the last share's answer.
   */
  async searchBatch(ef: number, threads: number, out: Uint32Array, data: PaperData = this.data): Promise<number> {
    await this.prepareBatch(threads, data);
    const start = performance.now();
    await Promise.all(this.workers.map((w) => this.ask(w, { op: 'run', ef })));
    const seconds = since(start);
    out.set(this.batchIds!.subarray(0, out.length));
    return seconds;
  }

  private batchFor: { threads: number; data: PaperData } | null = null;
  private batchIds: Uint32Array | null = null;

  private async prepareBatch(threads: number, data: PaperData): Promise<void> {
    if (this.batchFor?.threads === threads && this.batchFor.data === data) return;
    // forgotten first: a worker that fails to start below must not leave the old description
    this.batchFor = null;
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers = [];
    const { dim, nQueries: nq } = data.ds;
    const shared = new SharedArrayBuffer(nq * K * 4);
    for (let t = 0; t < threads; t++) {
      const from = Math.floor((t * nq) / threads);
      const to = Math.floor(((t + 1) * nq) / threads);
      const w = new Worker(new URL('./hnsw-worker.mjs', import.meta.url), {
        workerData: { file: this.file, dim, k: K, queries: data.ds.queries.slice(from * dim, to * dim), from, out: shared },
      });
      await this.ask(w, null);
      this.workers.push(w);
    }
    this.batchFor = { threads, data };
    this.batchIds = new Uint32Array(shared);
  }

  /** Post `msg` (none: wait for the worker's first message) and wait for the answer. */
  private ask(w: Worker, msg: unknown): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => done(err);
      const onExit = (code: number) => done(new Error(`an hnswlib batch worker exited (code ${code})`));
      const onMessage = () => done(null);
      const done = (err: Error | null) => {
        w.off('error', onError);
        w.off('exit', onExit);
        w.off('message', onMessage);
        if (err) reject(err);
        else resolve();
      };
      w.once('error', onError);
      w.once('exit', onExit);
      w.once('message', onMessage);
      if (msg !== null) w.postMessage(msg);
    });
  }

  async close(): Promise<void> {
    PaperHnsw.open.delete(this);
    this.batchFor = null;
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers = [];
    rmSync(this.dir, { recursive: true, force: true });
  }
}
