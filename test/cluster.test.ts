// A cluster index (src/cluster/): published to JetStream, its shards served by replicas over NATS,
// searched and changed through ZGQCluster: answers equal to the sharded index's own, writes seen
// by later searches and by replicas started after them, a shard with no replica (typed error, or
// flagged partial results), 3 shards x 2 replica processes with one SIGKILLed under load and the
// NATS server restarted, limits and typed errors. Needs Debian's nats-server (.ci/run installs
// it); skipped, saying so, where it is not installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ZGQIndex, ZGQError } from '../src/index.js';
import { FollowingReplica, ZGQCluster, Replica, publish } from '../src/cluster.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { expectCode, expectCodeAsync } from './helpers/expect.js';
import { NATS_SERVER, ZGQ_CLI, freePort, startCli, startNats, stopProcess } from './helpers/processes.js';

const dim = 16;
const ds = clusteredGaussian({ n: 3000, nQueries: 30, dim, seed: 11, outlierFraction: 0.2 });
const row = (i: number) => Array.from(ds.queries.subarray(i * dim, (i + 1) * dim));
const NO_NATS = 'nats-server is not installed (Debian: apt-get install nats-server; .ci/run installs it)';

/**
 * A nats-server with JetStream on a free loopback port, its store in a temp folder, messages up to
 * `maxPayload` bytes (its default: 1 MiB); `stop` removes both.
 */
async function natsServer(maxPayload?: number): Promise<{ url: string; port: number; dir: string; proc: () => ChildProcess; restart: () => Promise<void>; stop: () => Promise<void> }> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'zgq-cluster-'));
  let config: string | undefined;
  if (maxPayload) {
    config = join(dir, 'nats.conf');
    await writeFile(config, `max_payload: ${maxPayload}\n`);
  }
  let proc = await startNats(port, join(dir, 'js'), config);
  return {
    url: `nats://127.0.0.1:${port}`, port, dir, proc: () => proc,
    restart: async () => {
      await stopProcess(proc);
      proc = await startNats(port, join(dir, 'js'), config);
    },
    stop: async () => {
      await stopProcess(proc);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The index over ds in 3 shards. */
async function shardedIndex(): Promise<ZGQIndex> {
  const index = new ZGQIndex({ dim });
  await index.build(ds.base, { threads: 1, shards: 3 });
  assert.equal(index.stats().shards, 3);
  return index;
}

test('cluster: 3 shards served by replicas answer as the sharded index does; writes seen by later searches and by a late replica; a shard with none left', { timeout: 120_000 }, async (t) => {
  if (!NATS_SERVER) return t.skip(NO_NATS);
  const nats = await natsServer();
  const index = await shardedIndex();
  const replicas: Replica[] = [];
  let cluster: ZGQCluster | null = null;
  try {
    await expectCodeAsync(ZGQCluster.connect(nats.url, 'vectors', { timeoutMs: 2000 }), 'NOT_FOUND');
    const manifest = await publish(nats.url, index, 'vectors');
    assert.equal(manifest.version, 1);
    assert.equal(manifest.shards.length, 3);
    for (let p = 0; p < 3; p++) replicas.push(await Replica.start({ servers: nats.url, name: 'vectors', shards: [p] }));
    cluster = await ZGQCluster.connect(nats.url, 'vectors', { timeoutMs: 3000 });
    assert.equal(cluster.dim, dim);
    assert.equal(cluster.info.size, 3000);
    const status = await cluster.status();
    assert.deepEqual(status.shards.map((s) => s.replica?.size), manifest.shards.map((s) => s.size));

    // routed, scattered and merged as the index does in one process
    for (let q = 0; q < 10; q++) {
      for (const options of [{ ef: 48 }, { nProbe: 2 }, {}]) {
        const got = await cluster.search(row(q), 10, options);
        const want = index.search(row(q), 10, options);
        assert.deepEqual(got.ids, want.ids, `query ${q} ${JSON.stringify(options)}`);
        assert.deepEqual(got.distances, want.distances);
        assert.deepEqual(got.missing, []);
      }
    }
    const filter = [1, 2, 3, 400, 2999];
    assert.deepEqual((await cluster.searchBatch(ds.queries, 5, { filter })).ids, (await index.searchBatch(ds.queries, 5, { filter })).ids);
    assert.deepEqual((await cluster.searchBatch(ds.queries, 10, { traversal: 'scan' })).ids, (await index.searchBatch(ds.queries, 10, { traversal: 'scan' })).ids);

    // typed errors: checked here, or raised by a replica and carried back
    await expectCodeAsync(cluster.search(row(0).slice(1), 10), 'DIMENSION_MISMATCH');
    await expectCodeAsync(cluster.search(row(0), 10, { ef: 0 }), 'INVALID_ARGUMENT');
    await expectCodeAsync(cluster.add([row(0)], [1, 2]), 'INVALID_ARGUMENT');
    await expectCodeAsync(cluster.add([row(0).map(() => NaN)], [1]), 'NOT_FINITE');
    await expectCodeAsync(ZGQCluster.connect(nats.url, 'bad name'), 'INVALID_ARGUMENT');
    await expectCodeAsync(Replica.start({ servers: nats.url, name: 'vectors', shards: [3] }), 'INVALID_ARGUMENT');

    // writes: acknowledged once in the stream, then seen by this client's searches; the same
    // writes on the index in process leave it answering alike
    const fresh = Array.from({ length: 40 }, (_, i) => row(i % ds.nQueries).map((v, j) => v + 0.002 * i * (j % 2 ? 1 : -1)));
    const freshIds = fresh.map((_, i) => 10_000 + i);
    await cluster.add(fresh, freshIds);
    await index.add(fresh, freshIds);
    for (let i = 0; i < fresh.length; i += 7) assert.equal((await cluster.search(fresh[i], 1)).ids[0], freshIds[i], `added vector ${i} found first`);
    // an id another shard holds is replaced there, and removals reach every shard
    const moved = Array.from(ds.base.subarray(2000 * dim, 2001 * dim));
    await cluster.add([row(3)], [2000]);
    await index.add([row(3)], [2000]);
    await cluster.remove([5, 6, 10_001]);
    index.remove([5, 6, 10_001]);
    assert.notEqual((await cluster.search(moved, 1)).ids[0], 2000, 'the replaced vector is gone');
    for (let q = 0; q < ds.nQueries; q++) {
      assert.deepEqual((await cluster.search(row(q), 10, { ef: 64 })).ids, index.search(row(q), 10, { ef: 64 }).ids, `query ${q} after the writes`);
    }

    // a replica started after the writes applies them before it serves: shard 0's first replica gone
    const late = await Replica.start({ servers: nats.url, name: 'vectors', shards: [0, 1] });
    await replicas[0].close();
    replicas[0] = late;
    assert.ok(late.applied >= 3);
    for (let q = 0; q < ds.nQueries; q++) assert.deepEqual((await cluster.search(row(q), 10, { ef: 64 })).ids, index.search(row(q), 10, { ef: 64 }).ids);

    // shard 2 with no replica: a typed error naming its zones, or on request the other shards'
    // results flagged as partial
    await replicas[2].close();
    replicas.splice(2, 1);
    const [start, end] = cluster.info.shards[2].zones;
    const routed: number[] = [];
    let failed: ZGQError | null = null;
    for (let q = 0; q < ds.nQueries; q++) {
      try {
        await cluster.search(row(q), 10);
      } catch (err) {
        assert.ok(err instanceof ZGQError && err.code === 'UNAVAILABLE', String(err));
        failed = err;
        routed.push(q);
      }
    }
    assert.ok(routed.length > 0 && routed.length < ds.nQueries, `some queries reach shard 2 (${routed.length})`);
    assert.match(failed!.message, new RegExp(`shard 2 of 3 \\(zones ${start}-${end - 1} of \\d+\\)`));
    const partial = await cluster.searchBatch(ds.queries, 10, { partial: true });
    assert.deepEqual(partial.missing.map((m) => [m.shard, m.zones, m.error.code]), [[2, [start, end], 'UNAVAILABLE']]);
    assert.deepEqual([...partial.incomplete.keys()].filter((q) => partial.incomplete[q]), routed);
    const want = await index.searchBatch(ds.queries, 10);
    for (let q = 0; q < ds.nQueries; q++) {
      if (partial.incomplete[q]) continue;
      assert.deepEqual(partial.ids.subarray(q * 10, q * 10 + 10), want.ids.subarray(q * 10, q * 10 + 10), `complete query ${q}`);
    }
  } finally {
    await cluster?.close().catch(() => undefined);
    for (const r of replicas) await r.close().catch(() => undefined);
    await nats.stop();
  }
});

test('cluster: 3 shards x 2 replica processes; one SIGKILLed under a steady load, every query answered and none wrong; the NATS server restarted, serving resumes', { timeout: 180_000 }, async (t) => {
  if (!NATS_SERVER) return t.skip(NO_NATS);
  const nats = await natsServer();
  const file = join(nats.dir, 'index.zgq');
  const children: ChildProcess[] = [];
  let cluster: ZGQCluster | null = null;
  try {
    const index = await shardedIndex();
    await index.save(file);
    const run = promisify(execFile);
    const published = await run(process.execPath, [ZGQ_CLI, 'cluster', 'publish', file, '--nats', nats.url, '--name', 'killed']);
    assert.match(published.stderr, /published .* as 'killed' version 1: 3000 vectors in 3 shards/);
    await Promise.all([0, 1, 2, 0, 1, 2].map(async (p) => {
      children.push((await startCli(['serve', '--nats', nats.url, '--name', 'killed', '--shard', String(p)], /zgq: serving shards/)).child);
    }));
    const info = JSON.parse((await run(process.execPath, [ZGQ_CLI, 'cluster', 'info', '--nats', nats.url, '--name', 'killed'])).stdout);
    assert.deepEqual(info.shards.map((s: { replica: { version: number } }) => s.replica.version), [1, 1, 1]);

    // without the resend after attemptMs a query held by the killed replica fails with TIMEOUT;
    // the deadline leaves room for a busy machine
    cluster = await ZGQCluster.connect(nats.url, 'killed', { timeoutMs: 10_000, attemptMs: 300 });
    const want = (i: number) => index.search(row(i % ds.nQueries), 10).ids;
    const total = 200;
    let next = 0;
    let killedAt = -1;
    const wrong: number[] = [];
    const worker = async () => {
      while (next < total) {
        const i = next++;
        if (i === total / 4) {
          killedAt = i;
          children[0].kill('SIGKILL');
        }
        const got = await cluster!.search(row(i % ds.nQueries), 10);
        if (got.ids.some((id, j) => id !== want(i)[j])) wrong.push(i);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    assert.equal(killedAt, total / 4, 'a replica process was killed mid-load');
    assert.deepEqual(wrong, []);

    // the NATS server killed and started again (JetStream's store kept): client and replicas reconnect
    await nats.restart();
    let served: Uint32Array | null = null;
    for (let i = 0; i < 100 && !served; i++) {
      try {
        served = (await cluster.search(row(2), 10)).ids;
      } catch (err) {
        assert.ok(err instanceof ZGQError && ['UNAVAILABLE', 'TIMEOUT', 'IO'].includes(err.code), String(err));
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    assert.deepEqual(served, want(2), 'served again after the NATS server restarted');
    // and writes go through the restarted server's stream to every replica alive
    await cluster.add([row(4)], [77_777]);
    assert.equal((await cluster.search(row(4), 1)).ids[0], 77_777);
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await cluster?.close().catch(() => undefined);
    await nats.stop();
  }
});

test('cluster: large batches split under max_payload, a reply too large refused with the replica alive, slow requests, bad filters, close with work in flight, TIMEOUT', { timeout: 120_000 }, async (t) => {
  if (!NATS_SERVER) return t.skip(NO_NATS);
  const { connect, headers } = await import('@nats-io/transport-node');
  const { encodeSearch, ERROR_CODE } = await import('../src/cluster/protocol.js');
  const nats = await natsServer();
  const url = nats.url;
  const index = new ZGQIndex({ dim });
  await index.build(ds.base, { threads: 1 });
  await publish(url, index, 'limits');
  let replica: Replica | null = await Replica.start({ servers: url, name: 'limits' });
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
    const reply = await raw.request('zgq.limits.v1.s0.search', encodeSearch(new Float32Array(row(0)), null), { headers: h, timeout: 3000 });
    assert.equal(reply.headers?.get(ERROR_CODE), 'INVALID_ARGUMENT');
    assert.deepEqual((await cluster.search(row(0), 10)).ids, index.search(row(0), 10).ids);

    // headers that are not counts are refused; a request waiting for a write not made yet holds up
    // no other request, and gets TIMEOUT at its budget
    const raws = async (set: Record<string, string>) => {
      const rh = headers();
      for (const [key, value] of Object.entries(set)) rh.set(key, value);
      return raw.request('zgq.limits.v1.s0.search', encodeSearch(new Float32Array(row(0)), null), { headers: rh, timeout: 5000 });
    };
    const bads: Record<string, string>[] = [{ 'after-seq': 'abc' }, { 'budget-ms': '-5' }, { k: '2.5' }];
    for (const bad of bads) assert.equal((await raws(bad)).headers?.get(ERROR_CODE), 'INVALID_ARGUMENT', JSON.stringify(bad));
    const waiting = raws({ 'after-seq': '999999', 'budget-ms': '1500' });
    const before = performance.now();
    assert.deepEqual((await cluster.search(row(1), 10)).ids, index.search(row(1), 10).ids);
    assert.ok(performance.now() - before < 1000, 'a search behind a waiting one is answered at once');
    assert.equal((await waiting).headers?.get(ERROR_CODE), 'TIMEOUT');

    // filter ids outside [0, 2^32 - 1) are refused, not wrapped
    for (const bad of [2 ** 32 + 7, -1, 7.5]) await expectCodeAsync(cluster.search(row(0), 5, { filter: [bad] }), 'INVALID_ARGUMENT');

    // close() answers the requests it holds before it disconnects
    const pending = cluster.searchBatch(many, 10);
    await new Promise((r) => setTimeout(r, 5));
    await replica.close();
    replica = null;
    assert.equal((await pending).nq, 3000);

    // a listener that never answers: TIMEOUT, not before the deadline (and not never)
    const hole = raw.subscribe('zgq.limits.v1.s0.search', { queue: 'zgq.limits.v1.s0' });
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
    await nats.stop();
  }
});

test('cluster versions and the write stream: writes in several messages under a small max_payload; a following replica moves to a new version and an old client follows it; a stream missing writes refused at start, one deleted stops the replica', { timeout: 120_000 }, async (t) => {
  if (!NATS_SERVER) return t.skip(NO_NATS);
  const { jetstreamManager } = await import('@nats-io/jetstream');
  const { connect } = await import('@nats-io/transport-node');
  const nats = await natsServer(64 * 1024);
  let follower: FollowingReplica | null = null;
  let cluster: ZGQCluster | null = null;
  try {
    const first = await shardedIndex();
    await publish(nats.url, first, 'versions');
    const events: string[] = [];
    follower = await FollowingReplica.start({ servers: nats.url, name: 'versions', onEvent: (m) => events.push(m) });
    cluster = await ZGQCluster.connect(nats.url, 'versions', { timeoutMs: 5000 });

    // 2,000 vectors: three add messages of at most 64 KiB; 20,000 ids: two remove messages
    const added = Float32Array.from({ length: 2000 * dim }, (_, i) => ds.base[(i * 7) % ds.base.length] + 0.01 * Math.sin(i));
    const addedIds = Array.from({ length: 2000 }, (_, i) => 50_000 + i);
    await cluster.add(added, addedIds);
    await cluster.remove(Array.from({ length: 20_000 }, (_, i) => i));
    const after = await cluster.searchBatch(ds.queries, 10);
    assert.ok(after.ids.every((id) => id >= 50_000 && id < 52_000), 'only the added vectors are left');
    assert.equal((await cluster.search(added.subarray(1234 * dim, 1235 * dim), 1)).ids[0], 51_234);

    // version 2: another index (2 shards) over the base vectors; the writes before it are not in it
    const second = new ZGQIndex({ dim });
    await second.build(ds.base, { threads: 1, shards: 2 });
    assert.equal((await publish(nats.url, second, 'versions')).version, 2);
    // the replica serves version 2 beside version 1, then stops version 1
    for (let i = 0; i < 300 && follower.version < 2; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(follower.version, 2, events.join('\n'));
    assert.match(events.at(-1)!, /now serving version 2 .*version 1 stopped/);
    // the old client finds version 1 gone and moves to version 2 by itself
    assert.deepEqual((await cluster.search(row(0), 10, { ef: 48 })).ids, second.search(row(0), 10, { ef: 48 }).ids);
    assert.equal(cluster.info.version, 2);
    assert.equal(cluster.info.shards.length, 2);
    // writes after version 2 reach it, routed by its own zones
    await cluster.add([row(5)], [88_888]);
    assert.equal((await cluster.search(row(5), 1)).ids[0], 88_888);

    // writes since the version purged from the stream: a new replica refuses to start without them
    const nc = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.purge('ZGQ_versions');
    await expectCodeAsync(Replica.start({ servers: nats.url, name: 'versions' }), 'CORRUPT_FILE');
    // the stream deleted under a running replica: it stops serving, saying why
    await jsm.streams.delete('ZGQ_versions');
    let timer: ReturnType<typeof setTimeout> | undefined;
    const failed = await Promise.race([follower.failure, new Promise<null>((r) => (timer = setTimeout(() => r(null), 15_000)))]);
    clearTimeout(timer);
    await nc.close();
    assert.equal(failed?.code, 'CORRUPT_FILE');
    assert.match(failed!.message, /was deleted/);
  } finally {
    await cluster?.close().catch(() => undefined);
    await follower?.close().catch(() => undefined);
    await nats.stop();
  }
});


test('cluster protocol: search payloads round-trip, and truncated or inconsistent ones are refused by name', async () => {
  const { encodeSearch, decodeSearch, encodeResults, decodeResults, searchChunk, HEADER_ROOM } = await import('../src/cluster/protocol.js');
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
  assert.equal(searchChunk(1 << 20, 128, 10, 0), Math.floor(((1 << 20) - HEADER_ROOM - 4) / 512));
  assert.equal(searchChunk(1 << 20, 16, 1000, 0), Math.floor(((1 << 20) - HEADER_ROOM) / 8000));
  expectCode(() => searchChunk(1 << 20, 16, 140_000, 0), 'INVALID_ARGUMENT');

  // an id two shards hold for a moment (an add moving it) is kept once, at its nearest
  const { dropRepeats } = await import('../src/cluster/client.js');
  const NO = 0xffffffff;
  const rowIds = Uint32Array.from([7, 3, 7, 9, NO, 5, 5, 5, 5, 5]);
  const rowDist = Float32Array.from([1, 2, 3, 4, Infinity, 1, 1, 2, 3, 4]);
  dropRepeats(rowIds, rowDist, 2, 5);
  assert.deepEqual([...rowIds], [7, 3, 9, NO, NO, 5, NO, NO, NO, NO]);
  assert.deepEqual([...rowDist], [1, 2, 4, Infinity, Infinity, 1, Infinity, Infinity, Infinity, Infinity]);
});

test('cluster storage: write messages and zone tables round-trip; malformed writes and manifests refused by name', async () => {
  const { encodeAdd, encodeRemove, decodeWrite, addChunk, removeChunk } = await import('../src/cluster/writes.js');
  const { HEADER_ROOM } = await import('../src/cluster/protocol.js');
  const { encodeZoneTables, decodeZoneTables, parseManifest } = await import('../src/cluster/manifest.js');
  const ids = Uint32Array.from([4, 9, 4_000_000_000]);
  const vectors = Float32Array.from({ length: 3 * 4 }, (_, i) => i / 3 - 1);
  assert.deepEqual(decodeWrite('add', encodeAdd(ids, vectors), 4), { op: 'add', ids, vectors });
  assert.deepEqual(decodeWrite('remove', encodeRemove(ids), 4), { op: 'remove', ids });
  expectCode(() => decodeWrite('add', encodeAdd(ids, vectors), 5), 'INVALID_ARGUMENT');
  expectCode(() => decodeWrite('add', encodeAdd(ids, vectors).subarray(0, 20), 4), 'INVALID_ARGUMENT');
  expectCode(() => decodeWrite('remove', new Uint8Array(6), 4), 'INVALID_ARGUMENT');
  expectCode(() => decodeWrite('upsert', new Uint8Array(4), 4), 'INVALID_ARGUMENT');
  // a write invalid as a whole is refused as a whole (every replica skips it alike)
  expectCode(() => decodeWrite('add', encodeAdd(Uint32Array.from([4, 9, 4]), vectors), 4), 'INVALID_ARGUMENT');
  expectCode(() => decodeWrite('add', encodeAdd(Uint32Array.from([4, 9, 0xffffffff]), vectors), 4), 'INVALID_ARGUMENT');
  expectCode(() => decodeWrite('add', encodeAdd(ids, vectors.map((v, i) => (i === 7 ? NaN : v))), 4), 'NOT_FINITE');
  // payloads leave room for their headers under max_payload
  assert.equal(addChunk(1 << 20, 768), Math.floor(((1 << 20) - HEADER_ROOM - 4) / (4 + 768 * 4)));
  assert.ok(4 + addChunk(1 << 20, 16) * (4 + 16 * 4) + HEADER_ROOM <= 1 << 20);
  assert.equal(removeChunk(1 << 20), ((1 << 20) - HEADER_ROOM) / 4);
  expectCode(() => addChunk(2000, 768), 'INVALID_ARGUMENT');

  // the zone tables of a real sharded index, through their container and back
  const index = new ZGQIndex({ dim });
  await index.build(ds.base, { threads: 1, shards: 2 });
  const { shards, routing } = await index.shardFiles();
  assert.equal(shards.length, 2);
  assert.equal(shards[0].size + shards[1].size, 3000);
  const manifest = parseManifest('t', JSON.stringify({
    kind: 'zgq-cluster', format: 1, version: 1, dim, metric: 'l2', ...routing, seq: 0, zones: 'z',
    shards: shards.map((s, p) => ({ object: `s${p}`, bytes: s.bytes.length, size: s.size, zoneStart: p ? shards[0].zones.nZones : 0, zones: s.zones.nZones })),
    publishedAt: '',
  }));
  const bytes = encodeZoneTables(shards.map((s) => s.zones), dim, 'l2');
  assert.deepEqual(decodeZoneTables(bytes, manifest, 't'), shards.map((s) => s.zones));
  expectCode(() => decodeZoneTables(bytes, { ...manifest, dim: dim + 1 }, 't'), 'CORRUPT_FILE');
  const damaged = bytes.slice();
  damaged[damaged.length - 3] ^= 1;
  expectCode(() => decodeZoneTables(damaged, manifest, 't'), 'CORRUPT_FILE');
  // each shard's file is an index of its own
  assert.equal(ZGQIndex.fromBytes(shards[1].bytes).size, shards[1].size);
  expectCode(() => parseManifest('t', '{'), 'CORRUPT_FILE');
  expectCode(() => parseManifest('t', JSON.stringify({ ...manifest, format: 2 })), 'UNSUPPORTED_VERSION');
  expectCode(() => parseManifest('t', JSON.stringify({ ...manifest, shards: [] })), 'CORRUPT_FILE');
  expectCode(() => parseManifest('t', JSON.stringify({ ...manifest, traversal: 'walk' })), 'CORRUPT_FILE');
  expectCode(() => parseManifest('t', JSON.stringify({ ...manifest, metric: 'hamming' })), 'CORRUPT_FILE');
  expectCode(() => parseManifest('t', JSON.stringify({ ...manifest, shards: [manifest.shards[1], manifest.shards[0]] })), 'CORRUPT_FILE');
  // shard counts a build accepts
  for (const bad of [0, 1.5, 257]) await expectCodeAsync(new ZGQIndex({ dim }).build(ds.base, { shards: bad }), 'INVALID_ARGUMENT');
});
