// CPU profile of default searches only (the build is left out): writes search.cpuprofile and
// prints self time per function. Usage: node --import tsx bench/profile-search.ts [outlierFraction]
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
import { ZGQIndex } from '../src/index.js';
import { clusteredGaussian } from '../src/data/synthetic.js';

const dim = 128;
const ds = clusteredGaussian({ n: 100000, nQueries: 1000, dim, seed: 1, outlierFraction: Number(process.argv[2] ?? 0.3) });
const index = new ZGQIndex({ dim });
await index.build(ds.base, { threads: 1 });
const session = new Session();
session.connect();
await session.post('Profiler.enable');
await session.post('Profiler.start');
for (let r = 0; r < 10; r++) for (let q = 0; q < 1000; q++) index.search(ds.queries.subarray(q * dim, (q + 1) * dim), 10);
const { profile } = await session.post('Profiler.stop');
writeFileSync('search.cpuprofile', JSON.stringify(profile));
const self = new Map<string, number>();
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
profile.samples!.forEach((id, i) => {
  const f = byId.get(id)!.callFrame;
  const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').pop()}`;
  self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas![i] ?? 0));
});
const total = [...self.values()].reduce((a, b) => a + b, 0);
for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`${((100 * us) / total).toFixed(1)} %  ${key}`);
console.log('(wasm-function[i] is the i-th function of build/zgq.wat)');
