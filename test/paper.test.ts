// The paper reproduction's own machinery (bench/paper/): the prototype's zone-ordered insertion
// order, and hnswlib searched as a threaded batch (the prototype's timing) against one query per call.
import { test } from 'node:test';
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
      assert.ok(recallOf(data, each) > 0.9, `${recipe.order} order: recall ${recallOf(data, each)}`);
      assert.ok(h.bytes > n * dim * 4, 'the saved index holds every row');
      // a timed comparison reports the recall of what its side returned
      const [timing] = await interleave(data, [{ label: 'each', pass: (out) => h.searchEach(64, out) }], 2);
      assert.equal(timing.recall, recallOf(data, each));
      assert.ok(timing.qps > 0 && Number.isFinite(timing.msPerQuery));
    } finally {
      await h.close();
    }
  }
});
