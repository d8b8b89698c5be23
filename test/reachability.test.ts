// Every live vector is reachable from the zone entry points, so some search can return it: after a
// build, after removing most of an index and adding in place, after compaction and after an add
// that lays the index out afresh (issue 15, "Unreachable vectors").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NO_ID, ZGQIndex } from '../src/index.js';
import { unreachableNodes } from '../src/graph.js';
import { clusteredGaussian, randomSphere } from '../src/data/synthetic.js';
import { Rng } from '../src/random.js';
import type { Arena } from '../src/memory.js';
import type { IndexLayout } from '../src/layout.js';
import { loadSiftsmall } from './helpers/siftsmall.js';

const DIM = 32;
const N = 10000;
// seed 3 left 10 of these 10,000 nodes unreachable before connectGraph
const ds = clusteredGaussian({ n: N, nQueries: 0, dim: DIM, seed: 3 });

/** The index's internals a walk needs (test-only access). */
interface Internals {
  built: { kernels: { arena: Arena }; layout: IndexLayout; removed: { bits: Uint8Array | null }; ids: Uint32Array };
}

/**
 * Caller ids of the live vectors that no walk from the zone entry points reaches; with `each`, that
 * a walk from some single entry misses (a search enters at the selected zones' entries only).
 */
function unreachable(index: ZGQIndex, each = false): number[] {
  const { kernels, layout, removed, ids } = (index as unknown as Internals).built;
  const { arena } = kernels;
  const adjacency = arena.u32(layout.adjacencyPtr, layout.n * (layout.degree + 1));
  const entries = arena.u32(layout.zoneEntryPtr, layout.nZones);
  const missed = new Set<number>();
  for (const from of each ? Array.from(entries, (e) => [e]) : [entries]) {
    for (const node of unreachableNodes(adjacency, layout.degree, layout.n, from, removed.bits)) missed.add(ids[node]);
  }
  return [...missed];
}

/**
 * A search with k = the index size returns every live id, once. With removed nodes held, k counts
 * them too, so that the check does not depend on how far a search widens its pool past them.
 */
function assertAllFound(index: ZGQIndex, query: Float32Array, live: Set<number>): void {
  const stats = index.stats();
  assert.equal(stats.size, live.size);
  const k = stats.size + stats.deleted;
  const found = index.search(query, k).ids.filter((id) => id !== NO_ID);
  const distinct = new Set(found);
  assert.equal(distinct.size, found.length, 'no id twice');
  const missing = [...live].filter((id) => !distinct.has(id));
  assert.deepEqual(missing, [], `k = ${k} returns every live id`);
}

function row(data: Float32Array, i: number, dim = DIM): Float32Array {
  return data.subarray(i * dim, (i + 1) * dim);
}

test('synthetic build: every node reachable, k = n returns all n', async () => {
  const index = new ZGQIndex({ dim: DIM });
  await index.build(ds.base, { threads: 1 });
  assert.deepEqual(unreachable(index), []);
  assert.deepEqual(unreachable(index, true), [], 'from each entry alone');
  assertAllFound(index, row(ds.base, 0), new Set(Array.from({ length: N }, (_, i) => i)));
});

test('random unit vectors (every list fills, so linking re-prunes and trims past the degree): lists within the degree, no self link or repeat, all reachable', async () => {
  const dim = 24;
  const n = 6000;
  const sphere = randomSphere({ n, nQueries: 0, dim, seed: 4 });
  const index = new ZGQIndex({ dim, degree: 12 });
  await index.build(sphere.base, { threads: 2 });
  const { kernels, layout } = (index as unknown as Internals).built;
  const stride = layout.degree + 1;
  const adjacency = kernels.arena.u32(layout.adjacencyPtr, layout.n * stride);
  let full = 0;
  for (let i = 0; i < n; i++) {
    const count = adjacency[i * stride];
    assert.ok(count <= layout.degree, `node ${i}: ${count} links, degree ${layout.degree}`);
    const links = Array.from(adjacency.subarray(i * stride + 1, i * stride + 1 + count));
    assert.ok(links.every((j) => j < n && j !== i), `node ${i}: links within [0, n), none to itself`);
    assert.equal(new Set(links).size, count, `node ${i}: no link twice`);
    if (count === layout.degree) full++;
  }
  assert.ok(full > n / 2, `most lists full (${full} of ${n}): the data exercises the re-prunes`);
  assert.deepEqual(unreachable(index), []);
  assertAllFound(index, row(sphere.base, 0, dim), new Set(Array.from({ length: n }, (_, i) => i)));
});

test('siftsmall build with defaults: every node reachable, k = n returns all 10,000', async (t) => {
  const sift = await loadSiftsmall(t);
  if (!sift) return;
  const index = new ZGQIndex({ dim: sift.base.dim });
  await index.build(sift.base.data);
  assert.deepEqual(unreachable(index), []);
  assert.deepEqual(unreachable(index, true), [], 'from each entry alone');
  assertAllFound(index, row(sift.base.data, 0, sift.base.dim), new Set(Array.from({ length: sift.base.n }, (_, i) => i)));
});

test('99 % removed, 50 added in place, compacted, then a re-laid-out add: nothing is left unreachable', async () => {
  // the last rows are held out for the adds (rows of the same clusters: the trained PQ fits them)
  const built = N - 325;
  const index = new ZGQIndex({ dim: DIM });
  await index.build(ds.base.subarray(0, built * DIM), { threads: 1 });
  // a first add lays the index out with room for in-place adds
  await index.add(row(ds.base, 0).slice(), [N]);
  const live = new Set(Array.from({ length: built }, (_, i) => i).concat(N));

  const perm = new Rng(5).permutation(built);
  const gone = Array.from(perm.subarray(0, Math.round(built * 0.99)));
  assert.equal(index.remove(gone), gone.length);
  for (const id of gone) live.delete(id);
  assert.deepEqual(unreachable(index), [], 'removal changes no edge: removed nodes are crossed');

  // 25 held-out vectors and 25 that sit where removed ones were (their nearest nodes are all removed)
  const added = new Float32Array(50 * DIM);
  added.set(ds.base.subarray(built * DIM, (built + 25) * DIM));
  for (let i = 0; i < 25; i++) added.set(row(ds.base, gone[i]), (25 + i) * DIM);
  const addedIds = Array.from({ length: 50 }, (_, i) => 2 * N + i);
  for (let i = 0; i < 50; i++) {
    await index.add(row(added, i).slice(), [addedIds[i]]);
    live.add(addedIds[i]);
  }
  assert.equal(index.stats().appended, 50, 'the adds went in place');
  assert.deepEqual(unreachable(index), []);
  for (let i = 0; i < 50; i++) {
    assert.equal(index.search(row(added, i), 1).ids[0], addedIds[i], `added vector ${i} finds itself at rank 0`);
  }
  assertAllFound(index, row(added, 0), live);

  await index.compact();
  assert.equal(index.stats().deleted, 0);
  assert.deepEqual(unreachable(index, true), [], 'compaction left no islands');
  assertAllFound(index, row(added, 0), live);

  // more than an in-place add takes: laid out afresh
  const more = ds.base.subarray((built + 25) * DIM);
  const moreIds = Array.from({ length: 300 }, (_, i) => 3 * N + i);
  await index.add(more, moreIds);
  for (const id of moreIds) live.add(id);
  assert.equal(index.stats().appended, 0, 'laid out afresh');
  assert.deepEqual(unreachable(index, true), []);
  assertAllFound(index, row(more, 0), live);
  for (let i = 0; i < 300; i += 30) assert.equal(index.search(row(more, i), 1).ids[0], moreIds[i]);
});

test('removing every vector, then adding in place: the new ones are reached through removed nodes', async () => {
  const index = new ZGQIndex({ dim: DIM });
  await index.build(ds.base.subarray(0, 2000 * DIM), { threads: 1 });
  await index.add(row(ds.base, 2000).slice(), [2000]);
  index.remove(Array.from({ length: 2001 }, (_, i) => i));
  const ids = Array.from({ length: 20 }, (_, i) => 5000 + i);
  for (let i = 0; i < 20; i++) await index.add(row(ds.base, 3000 + i).slice(), [ids[i]]);
  assert.equal(index.stats().appended, 20);
  assert.deepEqual(unreachable(index), []);
  for (let i = 0; i < 20; i++) assert.equal(index.search(row(ds.base, 3000 + i), 1).ids[0], ids[i]);
});
