// zgq serve over HTTP (src/serve/http.ts): answers equal to the index's own, typed error bodies,
// and writes acknowledged only once the index file holds them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZGQIndex } from '../src/index.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { httpServer, type ErrorBody } from '../src/serve/http.js';
import { startCli } from './helpers/processes.js';

const dim = 16;
const ds = clusteredGaussian({ n: 3000, nQueries: 20, dim, seed: 7, outlierFraction: 0.2 });
const row = (x: Float32Array, i: number) => Array.from(x.subarray(i * dim, (i + 1) * dim));

async function served(options: { readOnly?: boolean; maxBatch?: number; bodyLimit?: number } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'zgq-serve-'));
  const path = join(dir, 'index.zgq');
  const index = new ZGQIndex({ dim });
  await index.build(ds.base, { threads: 1 });
  await index.save(path);
  const app = httpServer(index, { path, ...options });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const call = async (method: string, route: string, body?: unknown): Promise<{ status: number; body: any }> => {
    const r = await fetch(url + route, {
      method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: r.status, body: await r.json() };
  };
  return {
    index, path, call,
    async close() {
      await app.close();
      index.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function assertError(r: { status: number; body: ErrorBody }, status: number, code: string, mentions?: RegExp): void {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body.error.code, code);
  assert.equal(typeof r.body.error.message, 'string');
  if (mentions) assert.match(r.body.error.message, mentions);
}

test('serve: search and batch search answer what the index answers, filters and options included', async () => {
  const s = await served();
  try {
    for (let q = 0; q < 5; q++) {
      const v = row(ds.queries, q);
      const want = s.index.search(v, 10, { ef: 48 });
      const got = await s.call('POST', '/search', { vector: v, k: 10, search: { ef: 48 } });
      assert.equal(got.status, 200);
      assert.deepEqual(got.body.ids, Array.from(want.ids));
      assert.deepEqual(got.body.distances, Array.from(want.distances));
    }
    const vectors = Array.from({ length: ds.nQueries }, (_, q) => row(ds.queries, q));
    const batch = await s.call('POST', '/search/batch', { vectors, k: 5, filter: [1, 2, 3, 500, 2999] });
    assert.equal(batch.status, 200);
    assert.equal(batch.body.results.length, ds.nQueries);
    for (let q = 0; q < ds.nQueries; q++) {
      const want = s.index.search(vectors[q], 5, { filter: [1, 2, 3, 500, 2999] });
      assert.deepEqual(batch.body.results[q].ids, Array.from(want.ids));
    }
    // fewer matches than k: the row is cut, no padding ids or infinite distances
    const few = await s.call('POST', '/search', { vector: vectors[0], k: 10, filter: [42, 43] });
    assert.deepEqual([...few.body.ids].sort((a: number, b: number) => a - b), [42, 43]);
    assert.equal(few.body.distances.length, 2);
    const health = await s.call('GET', '/health');
    assert.deepEqual(health.body, { status: 'ok', size: 3000, dim, metric: 'l2', readOnly: false, writable: true });
    // a request for more than a million results is refused before any search
    const many = await s.call('POST', '/search/batch', { vectors: Array.from({ length: 101 }, () => vectors[0]), k: 10_000 });
    assertError(many, 400, 'INVALID_ARGUMENT', /1010000 results/);
    const stats = await s.call('GET', '/stats');
    assert.equal(stats.body.size, 3000);
    assert.equal(stats.body.zones, s.index.stats().zones);
  } finally {
    await s.close();
  }
});

test('serve: bad requests get typed error bodies, and change nothing', async () => {
  const s = await served({ maxBatch: 4, bodyLimit: 64 * 1024 });
  try {
    const v = row(ds.queries, 0);
    assertError(await s.call('POST', '/search', { vector: v.slice(1) }), 400, 'DIMENSION_MISMATCH');
    assertError(await s.call('POST', '/search', { vector: v, k: 0 }), 400, 'INVALID_ARGUMENT', /k/);
    assertError(await s.call('POST', '/search', { vector: v, search: { eff: 10 } }), 400, 'INVALID_ARGUMENT', /additional/);
    assertError(await s.call('POST', '/search', { vector: v, search: { traversal: 'fast' } }), 400, 'INVALID_ARGUMENT');
    assertError(await s.call('POST', '/search', { vector: ['a', ...v.slice(1)] }), 400, 'INVALID_ARGUMENT');
    assertError(await s.call('POST', '/search', '{"vector": [1, 2'), 400, 'INVALID_ARGUMENT');
    assertError(await s.call('POST', '/search/batch', { vectors: [v, v, v, v, v] }), 400, 'INVALID_ARGUMENT', /4/);
    assertError(await s.call('POST', '/search/batch', { vectors: Array.from({ length: 4 }, () => Array(10_000).fill(0.5)) }), 413, 'PAYLOAD_TOO_LARGE');
    assertError(await s.call('GET', '/nowhere'), 404, 'NOT_FOUND', /nowhere/);
    assertError(await s.call('POST', '/add', { ids: [1, 2], vectors: [v] }), 400, 'INVALID_ARGUMENT', /2 ids for 1 vectors/);
    assertError(await s.call('POST', '/add', { ids: [5000, 5000], vectors: [v, v] }), 400, 'DUPLICATE_ID');
    assertError(await s.call('POST', '/add', { ids: [5000], vectors: [v.slice(2)] }), 400, 'DIMENSION_MISMATCH');
    assertError(await s.call('POST', '/remove', { ids: [-1] }), 400, 'INVALID_ARGUMENT');
    assert.equal(s.index.size, 3000);
    assert.equal(s.index.has(5000), false);
    assert.equal((await ZGQIndex.load(s.path)).size, 3000);
  } finally {
    await s.close();
  }
  const ro = await served({ readOnly: true });
  try {
    assertError(await ro.call('POST', '/add', { ids: [5000], vectors: [row(ds.queries, 0)] }), 409, 'READ_ONLY');
    assertError(await ro.call('POST', '/remove', { ids: [1] }), 409, 'READ_ONLY');
    assert.equal(ro.index.has(1), true);
  } finally {
    await ro.close();
  }
});

test('serve: a write is on disk when it is acknowledged, concurrent writes included, and the next search sees it', async () => {
  const s = await served();
  try {
    // twenty writes at once: each answered only after a save that holds it
    const writes = Array.from({ length: 20 }, (_, i) => s.call('POST', '/add', { ids: [10_000 + i], vectors: [row(ds.queries, i % ds.nQueries)] }));
    const removal = s.call('POST', '/remove', { ids: [0, 1, 2] });
    const answers = await Promise.all(writes);
    for (const a of answers) assert.equal(a.status, 200, JSON.stringify(a.body));
    const removed = await removal;
    assert.equal(removed.body.removed, 3);
    const onDisk = await ZGQIndex.load(s.path);
    for (let i = 0; i < 20; i++) assert.ok(onDisk.has(10_000 + i), `id ${10_000 + i} acknowledged but not in the file`);
    for (const id of [0, 1, 2]) assert.equal(onDisk.has(id), false);
    assert.equal(onDisk.size, 3000 + 20 - 3);
    onDisk.close();
    // an added vector is its own nearest neighbour at once
    const hit = await s.call('POST', '/search', { vector: row(ds.queries, 3), k: 1, search: { ef: 64 } });
    assert.equal(hit.body.ids[0], 10_003, JSON.stringify(hit.body));
  } finally {
    await s.close();
  }
});

test('serve: another writer replacing the file makes the next write answer CONFLICT instead of overwriting it', async () => {
  const s = await served();
  try {
    await ZGQIndex.update(s.path, (other) => void other.remove([5]));
    const r = await s.call('POST', '/add', { ids: [9000], vectors: [row(ds.queries, 0)] });
    assertError(r, 409, 'CONFLICT');
    // from then on writes are refused before they change the served index
    assertError(await s.call('POST', '/add', { ids: [9001], vectors: [row(ds.queries, 1)] }), 409, 'CONFLICT', /restart/);
    assertError(await s.call('POST', '/remove', { ids: [7] }), 409, 'CONFLICT');
    assert.equal(s.index.has(9001), false);
    assert.equal(s.index.has(7), true);
    const health = await s.call('GET', '/health');
    assert.equal(health.body.writable, false);
    assert.match(health.body.reason, /replaced|CONFLICT|another/i);
    const onDisk = await ZGQIndex.load(s.path);
    assert.equal(onDisk.has(5), false, 'the other writer\'s change is kept');
    assert.equal(onDisk.has(9000), false);
    onDisk.close();
  } finally {
    await s.close();
  }
});

test('serve: the zgq serve command answers on its port and stops cleanly on SIGTERM, its writes saved', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'zgq-serve-cli-'));
  const path = join(dir, 'index.zgq');
  try {
    const index = new ZGQIndex({ dim });
    await index.build(ds.base, { threads: 1 });
    await index.save(path);
    index.close();
    const { child, match, stderr } = await startCli(['serve', path, '--port', '0'], /on (http:\/\/127\.0\.0\.1:\d+)/);
    const url = match[1];
    assert.match(stderr(), /3000 vectors, 16 dimensions/);
    const health = await (await fetch(`${url}/health`)).json();
    assert.equal(health.size, 3000);
    const added = await fetch(`${url}/add`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ids: [7777], vectors: [row(ds.queries, 0)] }) });
    assert.equal(added.status, 200);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr());
    assert.match(stderr(), /stopped/);
    const after = await ZGQIndex.load(path);
    assert.equal(after.has(7777), true);
    after.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
