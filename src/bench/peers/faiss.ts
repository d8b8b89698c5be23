/**
 * FAISS, measured through a Python child process (scripts/faiss_bench.py) that reads the same
 * fvecs files. faiss-node cannot install without general internet access, so this is the honest
 * way to put FAISS in the same run. The child stays up for the whole run and executes one timed
 * pass per request, which lets its passes interleave with the other libraries'.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ZGQError } from '../../errors.js';
import { exchangeFiles } from '../datasets.js';
import { defaultCacheDir, faissScript } from '../paths.js';
import { ivfLists, nprobeSweep } from '../sweeps.js';
import type { LibraryInfo } from '../types.js';
import type { Peer, PeerContext, PeerIndex, SweepPoint } from './types.js';

/** Re-rank depth of IVF-PQ + IndexRefineFlat: k * K_FACTOR candidates are re-scored exactly. */
export const FAISS_K_FACTOR = 10;
export const FAISS_HNSW_M = 16;
export const FAISS_HNSW_EF_CONSTRUCTION = 200;

type Reply = Record<string, unknown> & { type: string };

/** A running faiss_bench.py: one request in flight at a time. */
class FaissChild {
  private readonly waiting: { resolve: (r: Reply) => void; reject: (e: Error) => void; onProgress?: (r: Reply) => void }[] = [];
  private stderr = '';
  private exited: string | null = null;

  constructor(private readonly proc: ChildProcessWithoutNullStreams) {
    proc.stderr.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    createInterface({ input: proc.stdout }).on('line', (line) => {
      let msg: Reply;
      try {
        msg = JSON.parse(line) as Reply;
      } catch {
        return; // not a protocol line (a library printing to stdout); ignore
      }
      const head = this.waiting[0];
      if (!head) return;
      if (msg.type === 'progress') head.onProgress?.(msg);
      else {
        this.waiting.shift();
        if (msg.type === 'error') head.reject(new Error(`FAISS child: ${String(msg.message)}`));
        else head.resolve(msg);
      }
    });
    const fail = (why: string) => {
      this.exited = why;
      const err = new Error(`FAISS child ${why}${this.stderr ? `: ${this.stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`);
      for (const w of this.waiting.splice(0)) w.reject(err);
    };
    proc.on('exit', (code, signal) => fail(`exited (${signal ?? `code ${code}`})`));
    proc.on('error', (err) => fail(`could not start: ${err.message}`));
  }

  /** Resolves with the first line the child writes (its hello). */
  hello(): Promise<Reply> {
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  request(msg: Record<string, unknown>, onProgress?: (r: Reply) => void): Promise<Reply> {
    if (this.exited) return Promise.reject(new Error(`FAISS child ${this.exited}`));
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject, onProgress });
      this.proc.stdin.write(`${JSON.stringify(msg)}\n`);
    });
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()));
    this.proc.stdin.end(`${JSON.stringify({ op: 'quit' })}\n`);
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await done;
    clearTimeout(timer);
  }
}

/**
 * Interpreters tried in order: explicit, $ZGQ_BENCH_PYTHON, the venv of `--setup-faiss` in the
 * cache folder (this run's, then the default one), python3, Debian's python3.
 */
export function pythonCandidates(cacheDir: string, explicit?: string): string[] {
  const venv = (dir: string) => join(dir, 'venv', 'bin', 'python');
  const list = [explicit, process.env.ZGQ_BENCH_PYTHON, venv(cacheDir), venv(defaultCacheDir()), 'python3', '/usr/bin/python3'];
  return [...new Set(list.filter((p): p is string => !!p))];
}

async function startChild(python: string): Promise<{ child: FaissChild; hello: Reply } | { reason: string }> {
  const proc = spawn(python, [faissScript()], {
    env: { ...process.env, OMP_NUM_THREADS: '1', PYTHONUNBUFFERED: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const child = new FaissChild(proc);
  try {
    const hello = await child.hello();
    if (hello.ok !== true) {
      await child.close().catch(() => {});
      return { reason: `${python}: ${String(hello.error)}` };
    }
    return { child, hello };
  } catch (err) {
    return { reason: `${python}: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** Largest PQ sub-quantizer count <= 32 that divides dim (FAISS requires it): 32 for d = 128, 28 for 784. */
export function pqSubquantizers(dim: number): number {
  for (let m = Math.min(32, dim); m > 1; m--) if (dim % m === 0) return m;
  return 1;
}

/** The FAISS adapter. */
export function faissPeer(opts: { cacheDir: string; python?: string; batchThreads: number[] }): Peer {
  let child: FaissChild | undefined;
  return {
    library: 'faiss',
    async probe(): Promise<LibraryInfo> {
      if (!existsSync(faissScript())) {
        return { library: 'faiss', status: 'missing', version: null, detail: `the child script ${faissScript()} is not there` };
      }
      const reasons: string[] = [];
      for (const python of pythonCandidates(opts.cacheDir, opts.python)) {
        const got = await startChild(python);
        if ('reason' in got) {
          reasons.push(got.reason);
          continue;
        }
        child = got.child;
        const h = got.hello;
        return {
          library: 'faiss', status: 'ok', version: String(h.faiss),
          detail: `Python ${String(h.python)} (${String(h.executable)}), numpy ${String(h.numpy)}, compile options: ${String(h.compile).trim()}, OMP threads ${String(h.threads)}`,
        };
      }
      return {
        library: 'faiss', status: 'missing', version: null,
        detail: `no Python with faiss and numpy: ${reasons.join('; ')}. Install with \`zgq bench --setup-faiss\` (pip faiss-cpu into a venv in the cache folder) or \`apt-get install python3-faiss\``,
      };
    },
    async build(ctx: PeerContext): Promise<PeerIndex[]> {
      const c = child!;
      const { ds, k, progress } = ctx;
      const files = await exchangeFiles(ds, ctx.cacheDir);
      await c.request({ op: 'load', base: files.base, queries: files.queries, k });
      const nlist = ivfLists(ds.nBase);
      const m = pqSubquantizers(ds.dim);
      const nprobe = nprobeSweep(ctx.plan, nlist).map((v) => ({ params: { nprobe: v } }));
      const specs: { name: string; series: string; index: string; req: Record<string, unknown>; points: SweepPoint[]; exact?: boolean }[] = [
        { name: 'flat', series: 'FAISS Flat (exact)', index: 'IndexFlatL2', req: { kind: 'flat' }, points: [{ params: {} }], exact: true },
        { name: 'ivf', series: 'FAISS IVF-Flat', index: `IVF${nlist},Flat`, req: { kind: 'ivf', nlist }, points: nprobe },
        {
          name: 'ivfpq', series: 'FAISS IVF-PQ+refine', index: `IVF${nlist},PQ${m} + IndexRefineFlat(k_factor=${FAISS_K_FACTOR})`,
          req: { kind: 'ivfpq', nlist, m, kFactor: FAISS_K_FACTOR }, points: nprobe,
        },
        {
          name: 'hnsw', series: `FAISS HNSW${FAISS_HNSW_M}`, index: `HNSW${FAISS_HNSW_M},Flat efConstruction=${FAISS_HNSW_EF_CONSTRUCTION}`,
          req: { kind: 'hnsw', M: FAISS_HNSW_M, efConstruction: FAISS_HNSW_EF_CONSTRUCTION }, points: ctx.plan.hnswEf.map((ef) => ({ params: { efSearch: ef } })),
        },
      ];
      const out: PeerIndex[] = [];
      for (const s of specs) {
        const bar = progress.task(`build FAISS ${s.index}`, 100);
        let built: Reply;
        try {
          built = await c.request({ op: 'build', name: s.name, ...s.req }, (p) => bar.update(Math.round(Number(p.fraction) * 100), String(p.phase)));
        } finally {
          bar.stop();
        }
        out.push({
          library: 'faiss',
          series: s.series,
          index: s.index,
          exact: s.exact,
          build: {
            library: 'faiss', series: s.series, index: s.index, buildSeconds: Number(built.seconds), buildThreads: Number(built.threads),
            memory: { bytes: Number(built.bytes), method: 'faiss.serialize_index size', components: null },
          },
          points: s.points,
          async runSingle(point, nq, repeat, ids, lat) {
            const r = await c.request({ op: 'run', name: s.name, params: point.params, nq, repeat });
            const got = r.ids as number[];
            for (let i = 0; i < got.length; i++) ids[i] = got[i] < 0 ? 0xffffffff : got[i];
            const us = r.latUs as number[];
            for (let i = 0; i < us.length; i++) lat[i] = us[i];
            return Number(r.seconds);
          },
          batchThreads: opts.batchThreads,
          async runBatch(point, threads, ids) {
            const r = await c.request({ op: 'batch', name: s.name, params: point.params, threads });
            const got = r.ids as number[];
            for (let i = 0; i < got.length; i++) ids[i] = got[i] < 0 ? 0xffffffff : got[i];
            return Number(r.seconds);
          },
          async close() {
            await c.request({ op: 'free', name: s.name });
          },
        });
      }
      return out;
    },
    async shutdown() {
      await child?.close();
      child = undefined;
    },
  };
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('error', (err) => reject(new ZGQError('IO', `cannot run ${cmd}: ${err.message}`)));
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new ZGQError('IO', `${cmd} ${args.join(' ')} exited with code ${code}`))));
  });
}

/**
 * Creates `<cacheDir>/venv` with `python -m venv` and installs faiss-cpu and numpy into it with pip
 * (from whatever index pip is configured for). The harness tries that interpreter first.
 * @returns the venv's python.
 */
export async function setupFaissVenv(cacheDir: string, python = 'python3'): Promise<string> {
  const venv = join(cacheDir, 'venv');
  await run(python, ['-m', 'venv', venv]);
  const py = join(venv, 'bin', 'python');
  await run(py, ['-m', 'pip', 'install', 'faiss-cpu', 'numpy']);
  return py;
}
