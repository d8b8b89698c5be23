// The in-browser half of test/browser.test.ts: reads the data and the Node-built index that the
// test serves, runs ZGQ through the package's browser entry, and reports plain JSON through
// window.__results (window.__done marks the end). The Node side does the comparisons.
import { NO_ID, ZGQCollection, ZGQError, ZGQIndex } from 'zgq';

const mode = new URL(location.href).searchParams.get('mode') ?? 'full';

async function fetchBytes(path) {
  const res = await fetch(path);
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** Shared with test/browser.test.ts (a copy there): remove 50 ids, add 100 vectors, filtered batch, exact walk. */
async function liveSteps(index, queries, dim, k) {
  const removed = index.remove(Array.from({ length: 50 }, (_, i) => i * 7));
  await index.add(queries.slice(0, 100 * dim), Array.from({ length: 100 }, (_, i) => 100000 + i), { threads: 1 });
  const filtered = await index.searchBatch(queries, k, { filter: (id) => id % 3 === 0 });
  const exact = await index.searchBatch(queries, k, { traversal: 'exact', threads: 1 });
  return { removed, size: index.size, ids: [...filtered.ids], distances: [...filtered.distances], exactIds: [...exact.ids], exactDistances: [...exact.distances] };
}

async function run() {
  const meta = await (await fetch('/data/meta.json')).json();
  const { dim, k, seed } = meta;
  const base = new Float32Array((await fetchBytes('/data/base.f32')).buffer);
  const queries = new Float32Array((await fetchBytes('/data/queries.f32')).buffer);
  const nodeBytes = await fetchBytes('/data/node.zgq');
  const out = { mode, crossOriginIsolated: globalThis.crossOriginIsolated, userAgent: navigator.userAgent };

  // an index built in Node answers here exactly as in Node
  const fromNode = ZGQIndex.fromBytes(nodeBytes);
  const viaNode = await fromNode.searchBatch(queries, k);
  out.nodeIndex = { ids: [...viaNode.ids], distances: [...viaNode.distances] };
  out.parallel = fromNode.stats().parallel;

  // build here on one thread: same seed and data as Node's build
  const phases = [];
  const index = new ZGQIndex({ dim, seed });
  await index.build(base, { threads: 1, onProgress: (phase, f) => phases.push([phase, f]) });
  out.phases = [...new Set(phases.map(([p]) => p))];
  const batch = await index.searchBatch(queries, k, { threads: 1 });
  out.built = { ids: [...batch.ids], distances: [...batch.distances] };
  const one = index.search(queries.subarray(0, dim), k);
  out.single = { ids: [...one.ids], distances: [...one.distances] };
  const bytes = index.toBytes();
  out.bytesLength = bytes.length;
  const up = await fetch(`/upload/browser-${mode}.zgq`, { method: 'POST', body: bytes });
  if (!up.ok) throw new Error(`upload: HTTP ${up.status}`);

  // a live index: remove, add, filtered search (the same steps as the Node side of the test)
  const live = ZGQIndex.fromBytes(bytes);
  out.live = await liveSteps(live, queries, dim, k);
  const liveUp = await fetch(`/upload/live-${mode}.zgq`, { method: 'POST', body: live.toBytes() });
  if (!liveUp.ok) throw new Error(`upload: HTTP ${liveUp.status}`);

  // typed errors, as in Node
  out.errors = {};
  const code = async (f) => {
    try {
      await f();
      return 'no error';
    } catch (e) {
      return e instanceof ZGQError ? e.code : `not a ZGQError: ${e}`;
    }
  };
  out.errors.dimension = await code(() => index.search(new Float32Array(dim + 1), k));
  out.errors.notFinite = await code(() => index.search(new Float32Array(dim).fill(NaN), k));
  const damaged = bytes.slice();
  damaged[damaged.length - 5] ^= 0xff;
  out.errors.corrupt = await code(() => ZGQIndex.fromBytes(damaged));
  out.errors.empty = await code(() => new ZGQIndex({ dim }).build(new Float32Array(0)));
  out.errors.missingFile = await code(() => ZGQIndex.load('zgq-test/missing.zgq'));
  out.errors.addId = await code(() => live.add(new Float32Array(dim), [1.5]));
  out.noId = NO_ID;

  if (mode === 'full') {
    // several threads on Web Workers: the same index byte for byte, the same answers
    const parallel = new ZGQIndex({ dim, seed });
    await parallel.build(base, { threads: 2 });
    const pBytes = parallel.toBytes();
    out.threadsSameBytes = pBytes.length === bytes.length && pBytes.every((b, i) => b === bytes[i]);
    const pBatch = await parallel.searchBatch(queries, k, { threads: 2 });
    out.threadsSameIds = pBatch.ids.every((id, i) => id === batch.ids[i]);

    // save / load in the origin private file system, then in IndexedDB
    await index.save('zgq-test/opfs.zgq');
    const fromOpfs = await ZGQIndex.load('zgq-test/opfs.zgq');
    out.opfsSameIds = (await fromOpfs.searchBatch(queries, k)).ids.every((id, i) => id === batch.ids[i]);
    // a collection (the same steps as collectionSteps in test/browser.test.ts), saved and loaded in OPFS
    const docs = new ZGQCollection({ dim, seed });
    await docs.upsert(Array.from({ length: 300 }, (_, i) => ({ id: `d${i}`, vector: base.subarray(i * dim, (i + 1) * dim), metadata: { even: i % 2 === 0, n: i } })));
    const where = { even: true, n: { $lt: 200 } };
    const hitIds = (c) => c.query(queries.subarray(0, dim), { k: 5, where }).map((h) => h.id);
    out.collection = { hits: hitIds(docs), count: docs.count(where) };
    await docs.save('zgq-test/docs-opfs.zgq');
    out.collection.opfs = hitIds(await ZGQCollection.load('zgq-test/docs-opfs.zgq'));

    delete FileSystemFileHandle.prototype.createWritable;
    await index.save('zgq-test/idb.zgq');
    const fromIdb = await ZGQIndex.load('zgq-test/idb.zgq');
    out.idbSameIds = (await fromIdb.searchBatch(queries, k)).ids.every((id, i) => id === batch.ids[i]);
    await docs.save('zgq-test/docs-idb.zgq');
    out.collection.idb = hitIds(await ZGQCollection.load('zgq-test/docs-idb.zgq'));
  }
  return out;
}

window.__results = run().then(
  (r) => r,
  (e) => ({ error: String(e?.stack ?? e) }),
).finally(() => {
  window.__done = true;
});
