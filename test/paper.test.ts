// The paper reproduction's own machinery (bench/paper/): the prototype's zone-ordered insertion
// order, and hnswlib searched as a threaded batch (the prototype's timing) against one query per call.
import { test } from 'node:test';
import { existsSync } from 'node:fs';
import assert from 'node:assert/strict';
import { K, paperData, recallOf, interleave } from '../bench/paper/measure.js';
import { PaperHnsw, loadHnswlib, zoneOrder } from '../bench/paper/hnsw.js';

test('paper: the zone order is a permutation, zone after zone, each zone nearest its centroid first', () => {
  const n = 3000;
  const dim = 16;
  const data = paperData('clustered', n, 10, dim);
  const { order, zoneStart, centroids } = zoneOrder(data.ds.base, n, dim, 20, 42);
  assert.deepEqual(Array.from(order).sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i));
  assert.equal(zoneStart[zoneStart.length - 1], n);
  let zonesWithRows = 0;
  for (let z = 0; z + 1 < zoneStart.length; z++) {
    let last = -1;
    if (zoneStart[z + 1] > zoneStart[z]) zonesWithRows++;
    for (let i = zoneStart[z]; i < zoneStart[z + 1]; i++) {
      let d2 = 0;
      for (let d = 0; d < dim; d++) d2 += (data.ds.base[order[i] * dim + d] - centroids[z * dim + d]) ** 2;
      assert.ok(d2 >= last, `zone ${z}: row ${order[i]} is nearer its centroid than the row before it`);
      last = d2;
    }
  }
  assert.ok(zonesWithRows >= 10, `only ${zonesWithRows} zones hold rows`);
});

test('paper: hnswlib as one threaded call finds what it finds one query per call, in either insertion order', async (t) => {
  const loaded = loadHnswlib();
  if (!loaded.ok) return t.skip(`hnswlib-node does not load: ${loaded.reason}`);
  const n = 2000;
  const dim = 16;
  const data = paperData('clustered', n, 60, dim);
  const { order } = zoneOrder(data.ds.base, n, dim, 16, 42);
  for (const recipe of [{ M: 8, efConstruction: 64, order: 'input' }, { M: 12, efConstruction: 80, order: 'zones' }] as const) {
    const h = PaperHnsw.build(data, recipe, order);
    try {
      const each = new Uint32Array(data.ds.nQueries * K);
      const batch = new Uint32Array(data.ds.nQueries * K);
      h.searchEach(64, each);
      for (const threads of [1, 2, 3]) {
        batch.fill(0);
        await h.searchBatch(64, threads, batch);
        assert.deepEqual(batch, each, `${recipe.order} order, ${threads} threads`);
      }
      // the same workers at another ef answer as one query per call at that ef
      const narrow = new Uint32Array(data.ds.nQueries * K);
      h.searchEach(10, narrow);
      await h.searchBatch(10, 3, batch);
      assert.deepEqual(batch, narrow, 'a second batch on the same workers at ef 10');
      assert.notDeepEqual(narrow, each, 'ef 10 and ef 64 should differ somewhere on this data');
      assert.ok(recallOf(data, each) > 0.9, `${recipe.order} order: recall ${recallOf(data, each)}`);
      assert.ok(h.bytes > n * dim * 4, 'the saved index holds every row');
      // a timed comparison reports the recall of what its side returned
      const [timing] = await interleave(data, [{ label: 'each', pass: (out) => h.searchEach(64, out) }], 2);
      assert.equal(timing.recall, recallOf(data, each));
      assert.ok(timing.qps > 0 && Number.isFinite(timing.msPerQuery));
    } finally {
      await h.close();
    }
    assert.equal(existsSync(h.file), false, 'close() removes the index file');
  }
  // the zone-ordered recipe inserts in the order given: another order builds another graph
  const shuffled = PaperHnsw.build(data, { M: 12, efConstruction: 80, order: 'zones' }, Uint32Array.from({ length: n }, (_, i) => i));
  const ordered = PaperHnsw.build(data, { M: 12, efConstruction: 80, order: 'zones' }, order);
  try {
    const a = new Uint32Array(data.ds.nQueries * K);
    const b = new Uint32Array(data.ds.nQueries * K);
    shuffled.searchEach(16, a);
    ordered.searchEach(16, b);
    assert.notDeepEqual(a, b);
  } finally {
    await shuffled.close();
    await ordered.close();
  }
});

test('paper: interleaved timing reports each side\'s median pass, alternating the order of the sides', async () => {
  const data = paperData('clustered', 500, 4, 8);
  const calls: string[] = [];
  const side = (label: string, seconds: number[]) => {
    let i = 0;
    return {
      label,
      pass(out: Uint32Array) {
        calls.push(label);
        out.set(data.truth);
        return seconds[i++];
      },
    };
  };
  // one warm-up pass each, then five rounds
  const [a, b] = await interleave(data, [side('a', [9, 1, 5, 3, 100, 2]), side('b', [9, 4, 4, 4, 4, 40])], 5);
  assert.deepEqual(calls, ['a', 'b', 'a', 'b', 'b', 'a', 'a', 'b', 'b', 'a', 'a', 'b']);
  assert.equal(a.msPerQuery, (3 * 1000) / 4);
  assert.equal(b.qps, 4 / 4);
  assert.equal(a.recall, 1);
});
