// Writes test/fixtures/v1-small.zgq and its expected answers. Run once per released format version;
// the files are committed so that every later version proves it still reads them.
import { writeFileSync } from 'node:fs';
import { ZGQIndex } from '../src/index.js';
import { clusteredGaussian } from '../src/data/synthetic.js';

const ds = clusteredGaussian({ n: 300, nQueries: 1, dim: 8, seed: 1 });
const index = new ZGQIndex({ dim: 8, seed: 1 });
await index.build(ds.base, { ids: Uint32Array.from({ length: 300 }, (_, i) => 5000 + i) });
await index.save(new URL('../test/fixtures/v1-small.zgq', import.meta.url).pathname);
const query = Array.from(ds.queries);
writeFileSync(new URL('../test/fixtures/v1-small.json', import.meta.url), JSON.stringify({ query, ids: Array.from(index.search(ds.queries, 5).ids) }) + '\n');
