/**
 * Where the benchmark finds things: the package root (so paths work from `src/` under tsx and
 * from `dist/src/` alike), the datasets, the on-disk cache and the default output folder, for a
 * clone and for an installed package.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ZGQError } from '../errors.js';

let root: string | undefined;

/** Folder holding ZGQ's package.json, found by walking up from this module. */
export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'zgq') return (root = dir);
      } catch {
        // an unreadable package.json on the way up is not ours; keep walking
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new ZGQError('IO', `cannot find the zgq package root above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** Where the bench's inputs and outputs go, for a package at `root` (see benchPaths). */
export interface BenchPaths {
  /** Datasets (siftsmall/, fashion-mnist/, words/). */
  data: string;
  /** Ground truth, fvecs for FAISS, peer index files. */
  cache: string;
  /** Reports (bench-results.json, summary.md, plots). */
  out: string;
}

/**
 * From a clone: the shared datasets beside the repository, the cache and reports under
 * bench/results. From an installed package (its root inside node_modules), nothing is written
 * inside node_modules: the cache goes to the user's cache directory ($XDG_CACHE_HOME/zgq, else
 * ~/.cache/zgq; %LOCALAPPDATA%\zgq on Windows), reports to ./zgq-bench, and datasets are read from
 * ./data unless --data-dir or $ZGQ_DATA_DIR says otherwise.
 */
export function benchPaths(root: string, env: NodeJS.ProcessEnv, cwd: string, home: string): BenchPaths {
  const dataEnv = env.ZGQ_DATA_DIR ? resolve(env.ZGQ_DATA_DIR) : undefined;
  if (!isInstalled(root)) {
    return { data: dataEnv ?? resolve(root, '..', 'shared', 'data'), cache: join(root, 'bench', 'results', 'cache'), out: join(root, 'bench', 'results') };
  }
  const cacheBase = env.XDG_CACHE_HOME || (process.platform === 'win32' && env.LOCALAPPDATA) || join(home, '.cache');
  return { data: dataEnv ?? join(cwd, 'data'), cache: join(cacheBase, 'zgq'), out: join(cwd, 'zgq-bench') };
}

/** Whether the package at `root` was installed (it lies inside a node_modules folder) rather than cloned. */
export function isInstalled(root: string): boolean {
  return root.split(/[\\/]/).includes('node_modules');
}

const paths = (): BenchPaths => benchPaths(packageRoot(), process.env, process.cwd(), homedir());

/** The datasets' folder (see benchPaths). */
export function defaultDataDir(): string {
  return paths().data;
}

/** The bench's cache (see benchPaths). */
export function defaultCacheDir(): string {
  return paths().cache;
}

/** Where reports go (see benchPaths). */
export function defaultOutDir(): string {
  return paths().out;
}

/** The Python child that measures FAISS. */
export function faissScript(): string {
  return join(packageRoot(), 'scripts', 'faiss_bench.py');
}
