// Build time of 100K x 128 (paper recipe) on one and on two threads, in one process, and a check
// that both builds give the same index bytes. Usage: node --import tsx bench/build-threads.ts [n]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZGQIndex } from '../src/index.js';
import { clusteredGaussian } from '../src/data/synthetic.js';

const n = Number(process.argv[2] ?? 100000);
const ds = clusteredGaussian({ n, nQueries: 0, dim: 128, seed: 1, outlierFraction: 0.3 });
const dir = mkdtempSync(join(tmpdir(), 'zgq-threads-'));
try {
  for (const threads of [1, 2]) {
    const index = new ZGQIndex({ dim: 128 });
    const t = performance.now();
    await index.build(ds.base, { threads });
    console.log(`threads ${threads}: build ${((performance.now() - t) / 1000).toFixed(1)} s`);
    await index.save(join(dir, `${threads}.zgq`));
  }
  console.log('same index bytes:', readFileSync(join(dir, '1.zgq')).equals(readFileSync(join(dir, '2.zgq'))));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
