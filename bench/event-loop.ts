// How long the event loop waits while ZGQ works on the calling thread: a build (1 and 2 threads),
// a 20,000-query batch (1 and 2 threads), a 5,000-vector add that lays the index out again, and a
// compact after removing a third. A 1 ms interval timer records the longest gap between its ticks.
//
//   node --import tsx bench/event-loop.ts [--n 20000] [--dim 128]
import { parseArgs } from 'node:util';
import { ZGQIndex } from '../src/index.js';
import { clusteredGaussian } from '../src/data/synthetic.js';

const { values } = parseArgs({ options: { n: { type: 'string', default: '20000' }, dim: { type: 'string', default: '128' } } });
const n = Number(values.n);
const dim = Number(values.dim);
const ds = clusteredGaussian({ n: n + 5000, nQueries: 20000, dim, seed: 1 });

/** The longest wait of the event loop (ms) while `work` runs. */
async function longestWait(work: () => Promise<unknown>): Promise<number> {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  await work();
  clearInterval(timer);
  return Math.max(longest, performance.now() - last);
}

const report = (what: string, ms: number) => console.log(`| ${what} | ${ms.toFixed(1)} ms |`);
console.log(`# longest event-loop wait, ${n} x ${dim} clustered (seed 1)\n\n| call | longest wait |\n| --- | --- |`);
for (const threads of [1, 2]) {
  const fresh = new ZGQIndex({ dim, seed: 1 });
  report(`build, threads ${threads}`, await longestWait(() => fresh.build(ds.base.subarray(0, n * dim), { threads })));
}
const index = new ZGQIndex({ dim, seed: 1 });
await index.build(ds.base.subarray(0, n * dim), { threads: 1 });
for (const threads of [1, 2]) report(`searchBatch of 20000 queries, threads ${threads}`, await longestWait(() => index.searchBatch(ds.queries, 10, { threads })));
const added = Uint32Array.from({ length: 5000 }, (_, i) => n + i);
report('add 5000 (lays the index out again), threads 1', await longestWait(() => index.add(ds.base.subarray(n * dim), added, { threads: 1 })));
index.remove(Array.from({ length: Math.floor(n / 3) }, (_, i) => i * 3));
report('compact after removing a third', await longestWait(() => index.compact()));
process.exit(0);
