// An index served by replicas over NATS (src/cluster/): answers equal to the index's own, a
// replica lost under load, no replica left, typed errors, and the NATS server restarted. Needs
// Debian's nats-server (.ci/run installs it); skipped, saying so, where it is not installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZGQIndex, ZGQError } from '../src/index.js';
import { ZGQCluster, Replica } from '../src/cluster.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { expectCode, expectCodeAsync } from './helpers/expect.js';
import { NATS_SERVER, freePort, startCli, startNats, stopProcess } from './helpers/processes.js';

const dim = 16;
const ds = clusteredGaussian({ n: 3000, nQueries: 30, dim, seed: 11, outlierFraction: 0.2 });
const row = (i: number) => Array.from(ds.queries.subarray(i * dim, (i + 1) * dim));

test('cluster: replicas over NATS answer as the index does; one lost under load, then none, then the server restarted', { timeout: 120_000 }, async (t) => {
  if (!NATS_SERVER) return t.skip('nats-server is not installed (Debian: apt-get install nats-server; .ci/run installs it)');
  const port = await freePort();
  const url = `nats://127.0.0.1:${port}`;
  let nats = await startNats(port);
  const index = new ZGQIndex({ dim });
  await index.build(ds.base, { threads: 1 });
  const replicas: Replica[] = [];
  let cluster: ZGQCluster | null = null;
  const dir = await mkdtemp(join(tmpdir(), 'zgq-cluster-'));
  const file = join(dir, 'index.zgq');
  try {
    // two replicas of one index, each its own copy (as two processes would load the file)
    await index.save(file);
    for (let r = 0; r < 2; r++) replicas.push(await Replica.start(await ZGQIndex.load(file), { servers: url, name: 'vectors' }));
    cluster = await ZGQCluster.connect(url, 'vectors', { timeoutMs: 3000 });
    assert.equal(cluster.dim, dim);
    assert.equal(cluster.metric, 'l2');

    for (let q = 0; q < 5; q++) {
      const got = await cluster.search(row(q), 10, { ef: 48 });
      const want = index.search(row(q), 10, { ef: 48 });
      assert.deepEqual(got.ids, want.ids);
      assert.deepEqual(got.distances, want.distances);
    }
    const batch = await cluster.searchBatch(ds.queries, 5, { filter: [1, 2, 3, 400, 2999] });
    const wantBatch = await index.searchBatch(ds.queries, 5, { filter: [1, 2, 3, 400, 2999] });
    assert.equal(batch.nq, ds.nQueries);
    assert.deepEqual(batch.ids, wantBatch.ids);

    // typed errors: checked here, or raised by the replica and carried back
    await expectCodeAsync(cluster.search(row(0).slice(1), 10), 'DIMENSION_MISMATCH');
    await expectCodeAsync(cluster.search(row(0), 10, { ef: 0 }), 'INVALID_ARGUMENT');
    await expectCodeAsync(ZGQCluster.connect(url, 'no-such-index', { timeoutMs: 2000 }), 'UNAVAILABLE');
    await expectCodeAsync(ZGQCluster.connect(url, 'bad name'), 'INVALID_ARGUMENT');

    // a replica lost while queries keep coming: every query is answered, by the other
    const load = (async () => {
      const answers: Uint32Array[] = [];
      for (let i = 0; i < 60; i++) answers.push((await cluster!.search(row(i % ds.nQueries), 10)).ids);
      return answers;
    })();
    await new Promise((r) => setTimeout(r, 5));
    await replicas.shift()!.close();
    const answers = await load;
    answers.forEach((ids, i) => assert.deepEqual(ids, index.search(row(i % ds.nQueries), 10).ids));

    // no replica left: a typed error, not a hang
    await replicas.shift()!.close();
    await expectCodeAsync(cluster.search(row(0), 10), 'UNAVAILABLE');

    // the NATS server killed and started again: the client and a new replica reconnect
    replicas.push(await Replica.start(index, { servers: url, name: 'vectors' }));
    assert.deepEqual((await cluster.search(row(1), 10)).ids, index.search(row(1), 10).ids);
    await stopProcess(nats);
    nats = await startNats(port);
    let served: Uint32Array | null = null;
    for (let i = 0; i < 100 && !served; i++) {
      try {
        served = (await cluster.search(row(2), 10)).ids;
      } catch (err) {
        assert.ok(err instanceof ZGQError && ['UNAVAILABLE', 'TIMEOUT', 'IO'].includes(err.code), String(err));
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    assert.deepEqual(served, index.search(row(2), 10).ids, 'served again after the NATS server restarted');
  } finally {
    await cluster?.close().catch(() => undefined);
    for (const r of replicas) await r.close().catch(() => undefined);
    await stopProcess(nats);
    await rm(dir, { recursive: true, force: true });
  }
});

test('cluster: a replica process killed with SIGKILL under a steady load: every query answered, none wrong', { timeout: 120_000 }, async (t) => {
  if (!NATS_SERVER) return t.skip('nats-server is not installed (Debian: apt-get install nats-server; .ci/run installs it)');
  const port = await freePort();
  const url = `nats://127.0.0.1:${port}`;
  const nats = await startNats(port);
  const dir = await mkdtemp(join(tmpdir(), 'zgq-cluster-kill-'));
  const file = join(dir, 'index.zgq');
  let replica: Replica | null = null;
  let cluster: ZGQCluster | null = null;
  let child: ChildProcess | null = null;
  try {
    const index = new ZGQIndex({ dim });
    await index.build(ds.base, { threads: 1 });
    await index.save(file);
    replica = await Replica.start(index, { servers: url, name: 'killed' });
    ({ child } = await startCli(['serve', file, '--nats', url, '--name', 'killed'], /as a replica/));
    // without the resend after attemptMs a query held by the killed replica fails with TIMEOUT
    // (with attemptMs equal to timeoutMs this test fails); the deadline leaves room for a busy machine
    cluster = await ZGQCluster.connect(url, 'killed', { timeoutMs: 10_000, attemptMs: 300 });
    // four queries in flight at a time; the child is killed a quarter of the way through
    const total = 200;
    let next = 0;
    let killedAt = -1;
    const wrong: number[] = [];
    const worker = async () => {
      while (next < total) {
        const i = next++;
        if (i === total / 4 && child!.exitCode === null) {
          killedAt = i;
          child!.kill('SIGKILL');
        }
        const got = await cluster!.search(row(i % ds.nQueries), 10);
        if (got.ids.some((id, j) => id !== index.search(row(i % ds.nQueries), 10).ids[j])) wrong.push(i);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    assert.equal(killedAt, total / 4, 'the replica process was killed mid-load');
    assert.deepEqual(wrong, []);
  } finally {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await cluster?.close().catch(() => undefined);
    await replica?.close().catch(() => undefined);
    await stopProcess(nats);
    await rm(dir, { recursive: true, force: true });
  }
});

test('cluster: large batches split under max_payload, a reply too large refused with the replica alive, slow requests, bad filters, close with work in flight, TIMEOUT', { timeout: 120_000 }, async (t) => {
  if (!NATS_SERVER) return t.skip('nats-server is not installed (Debian: apt-get install nats-server; .ci/run installs it)');
  const { connect, headers } = await import('@nats-io/transport-node');
  const { encodeSearch, ERROR_CODE } = await import('../src/cluster/protocol.js');
  const port = await freePort();
  const url = `nats://127.0.0.1:${port}`;
  const nats = await startNats(port);
  const index = new ZGQIndex({ dim });
  await index.build(ds.base, { threads: 1 });
  let replica: Replica | null = await Replica.start(index, { servers: url, name: 'limits' });
  // attemptMs 1: every request is resent long before its answer, which is still taken
  const cluster = await ZGQCluster.connect(url, 'limits', { timeoutMs: 30_000, attemptMs: 1 });
  const brief = await ZGQCluster.connect(url, 'limits', { timeoutMs: 1500 });
  const raw = await connect({ servers: url });
  try {
    // 3,000 queries at k 50: a 1.2 MB reply, over nats-server's 1 MiB, goes as several requests;
    // attemptMs 1 resends each long before its answer, which is still taken
    const many = new Float32Array(3000 * dim);
    for (let i = 0; i < 3000; i++) many.set(ds.queries.subarray((i % ds.nQueries) * dim, (i % ds.nQueries + 1) * dim), i * dim);
    const got = await cluster.searchBatch(many, 50);
    const want = await index.searchBatch(many, 50);
    assert.deepEqual(got.ids, want.ids);

    // k too large for one message: refused here; sent raw, refused by the replica, which lives on
    await expectCodeAsync(cluster.search(row(0), 140_000), 'INVALID_ARGUMENT');
    const h = headers();
    h.set('k', '140000');
    const reply = await raw.request('zgq.limits.s0.search', encodeSearch(new Float32Array(row(0)), null), { headers: h, timeout: 3000 });
    assert.equal(reply.headers?.get(ERROR_CODE), 'INVALID_ARGUMENT');
    assert.deepEqual((await cluster.search(row(0), 10)).ids, index.search(row(0), 10).ids);

    // filter ids outside [0, 2^32 - 1) are refused, not wrapped
    for (const bad of [2 ** 32 + 7, -1, 7.5]) await expectCodeAsync(cluster.search(row(0), 5, { filter: [bad] }), 'INVALID_ARGUMENT');

    // close() answers the requests it holds before it disconnects
    const pending = cluster.searchBatch(many, 10);
    await new Promise((r) => setTimeout(r, 5));
    await replica.close();
    replica = null;
    assert.equal((await pending).nq, 3000);

    // a listener that never answers: TIMEOUT, not before the deadline (and not never)
    const hole = raw.subscribe('zgq.limits.s0.search', { queue: 'zgq.limits.s0' });
    await raw.flush(); // the server holds the subscription before the request is sent
    const start = performance.now();
    await expectCodeAsync(brief.search(row(0), 10), 'TIMEOUT');
    const waited = performance.now() - start;
    assert.ok(waited >= 1450, `TIMEOUT after ${waited.toFixed(0)} ms, before the 1500 ms deadline`);
    hole.unsubscribe();
  } finally {
    await cluster.close().catch(() => undefined);
    await brief.close().catch(() => undefined);
    await replica?.close().catch(() => undefined);
    await raw.close().catch(() => undefined);
    await stopProcess(nats);
  }
});

test('cluster protocol: search payloads round-trip, and truncated or inconsistent ones are refused by name', async () => {
  const { encodeSearch, decodeSearch, encodeResults, decodeResults, searchChunk } = await import('../src/cluster/protocol.js');
  const queries = Float32Array.from({ length: 3 * 4 }, (_, i) => i - 5.5);
  const filter = Uint32Array.from([1, 7, 4_000_000_000]);
  const back = decodeSearch(encodeSearch(queries, filter), 4);
  assert.deepEqual(back.queries, queries);
  assert.deepEqual(back.filter, filter);
  assert.equal(back.nq, 3);
  assert.equal(decodeSearch(encodeSearch(queries, null), 4).filter, null);
  const bytes = encodeSearch(queries, filter);
  expectCode(() => decodeSearch(bytes.subarray(0, 3), 4), 'INVALID_ARGUMENT');
  expectCode(() => decodeSearch(bytes.subarray(0, 10), 4), 'INVALID_ARGUMENT');
  expectCode(() => decodeSearch(bytes.subarray(0, bytes.length - 4), 4), 'DIMENSION_MISMATCH');
  expectCode(() => decodeSearch(encodeSearch(new Float32Array(0), filter), 4), 'DIMENSION_MISMATCH');
  const ids = Uint32Array.from([3, 1, 0xffffffff]);
  const dist = Float32Array.from([0.5, 1.5, Infinity]);
  assert.deepEqual(decodeResults(encodeResults(ids, dist), 3), { ids, distances: dist });
  expectCode(() => decodeResults(encodeResults(ids, dist), 2), 'IO');
  // requests and replies both stay under the server's largest message
  assert.equal(searchChunk(1 << 20, 128, 10, 0), Math.floor(((1 << 20) - 4) / 512));
  assert.equal(searchChunk(1 << 20, 16, 1000, 0), Math.floor((1 << 20) / 8000));
  expectCode(() => searchChunk(1 << 20, 16, 140_000, 0), 'INVALID_ARGUMENT');
});
