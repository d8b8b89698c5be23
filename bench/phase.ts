import { ZGQIndex } from '../src/index.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
const n = Number(process.argv[2] ?? 20000), dim = Number(process.argv[3] ?? 64);
const ds = clusteredGaussian({ n, nQueries: 10, dim, seed: 1 });
const index = new ZGQIndex({ dim, ...JSON.parse(process.argv[4] ?? '{}') });
let t = performance.now(); let last = '';
await index.build(ds.base, { onProgress: (p, f) => { if (p !== last || f === 1) { console.log(p, f.toFixed(2), (performance.now() - t).toFixed(0)); last = p; } } });
