/**
 * Where the benchmark finds things: the package root (so paths work from `src/` under tsx and
 * from `dist/src/` alike), the shared datasets beside the repository, the on-disk cache and the
 * default output folder.
 */
import { existsSync, readFileSync } from 'node:fs';
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

/** `$ZGQ_DATA_DIR`, else `../shared/data` relative to the package root. */
export function defaultDataDir(): string {
  return process.env.ZGQ_DATA_DIR ? resolve(process.env.ZGQ_DATA_DIR) : resolve(packageRoot(), '..', 'shared', 'data');
}

/** `bench/results/cache` under the package root (gitignored): ground truth, fvecs for FAISS, peer index files. */
export function defaultCacheDir(): string {
  return join(packageRoot(), 'bench', 'results', 'cache');
}

/** `bench/results` under the package root. */
export function defaultOutDir(): string {
  return join(packageRoot(), 'bench', 'results');
}

/** The Python child that measures FAISS. */
export function faissScript(): string {
  return join(packageRoot(), 'scripts', 'faiss_bench.py');
}
