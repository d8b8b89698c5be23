// Long calls share the event loop and can be stopped: build (zones, PQ, graph), add, compact and
// searchBatch give the loop a turn between their steps, and an AbortSignal stops each one with
// ABORTED, leaving the index as it was.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ZGQError, ZGQIndex } from '../src/index.js';
import { pacing } from '../src/pace.js';
import { clusteredGaussian } from '../src/data/synthetic.js';

const DIM = 24;
const N = 12000;
const ds = clusteredGaussian({ n: N, nQueries: 4000, dim: DIM, seed: 31 });
const isAborted = (e: unknown) => e instanceof ZGQError && e.code === 'ABORTED' && /as it was/.test(e.message);

/** Counts the event-loop turns (setImmediate callbacks) from start until stop. */
function heartbeat(): { turns: () => number; stop: () => void } {
  let turns = 0;
  let running = true;
  const tick = () => {
    if (!running) return;
    turns++;
    setImmediate(tick);
  };
  setImmediate(tick);
  return { turns: () => turns, stop: () => (running = false) };
}

/** The event-loop turns taken while `work` runs. */
async function turnsDuring(work: () => Promise<unknown>): Promise<number> {
  const beat = heartbeat();
  try {
    await work();
  } finally {
    beat.stop();
  }
  return beat.turns();
}

test('every phase of a build, and a batch, give the event loop turns', async () => {
  pacing.everyMs = 0;
  try {
    const index = new ZGQIndex({ dim: DIM, seed: 1 });
    // turns seen by the time each phase reports its end
    const seen: Record<string, number> = {};
    const beat = heartbeat();
    await index.build(ds.base, {
      threads: 1,
      onProgress: (phase, fraction) => {
        if (fraction === 0) seen[`${phase}:start`] = beat.turns();
        if (fraction === 1) seen[`${phase}:end`] = beat.turns();
      },
    });
    beat.stop();
    for (const phase of ['zones', 'pq', 'graph']) assert.ok(seen[`${phase}:end`] > seen[`${phase}:start`], `turns during ${phase}: ${JSON.stringify(seen)}`);
    assert.ok((await turnsDuring(() => index.searchBatch(ds.queries, 10, { threads: 1 }))) > 1);
  } finally {
    pacing.everyMs = 25;
  }
});

test('an aborted build, add, compact or batch throws ABORTED and leaves the index as it was', async () => {
  const index = new ZGQIndex({ dim: DIM, seed: 1 });
  await index.build(ds.base.subarray(0, 6000 * DIM), { threads: 1 });
  const before = await index.searchBatch(ds.queries.subarray(0, 100 * DIM), 10, { threads: 1 });

  // a signal aborted already: nothing starts
  await assert.rejects(index.build(ds.base, { signal: AbortSignal.abort('changed my mind') }), isAborted);
  // aborted in each phase of a rebuild
  for (const at of ['zones', 'pq', 'graph'] as const) {
    const controller = new AbortController();
    await assert.rejects(
      // aborted as the phase starts: it stops at the phase's first step
      index.build(ds.base, { threads: 1, signal: controller.signal, onProgress: (phase, f) => phase === at && f === 0 && controller.abort() }),
      isAborted,
      `abort during ${at}`,
    );
  }
  assert.equal(index.size, 6000);

  // an add that lays the index out again, aborted while it links
  const controller = new AbortController();
  await assert.rejects(
    index.add(ds.base.subarray(6000 * DIM), Uint32Array.from({ length: N - 6000 }, (_, i) => 6000 + i), { threads: 1, signal: controller.signal, onProgress: () => controller.abort() }),
    isAborted,
  );
  assert.equal(index.size, 6000);
  assert.equal(index.has(6000), false);

  index.remove([1, 2, 3]);
  await assert.rejects(index.compact({ signal: AbortSignal.abort() }), isAborted);
  assert.equal(index.stats().deleted, 3);

  // a turn of the event loop between every two slices of the batch: the abort lands after the first
  pacing.everyMs = 0;
  try {
    const batch = new AbortController();
    setImmediate(() => batch.abort());
    await assert.rejects(index.searchBatch(ds.queries, 10, { threads: 1, signal: batch.signal }), isAborted);
  } finally {
    pacing.everyMs = 25;
  }

  // and afterwards everything answers as before
  const after = await index.searchBatch(ds.queries.subarray(0, 100 * DIM), 10, { threads: 1 });
  for (let i = 0; i < after.ids.length; i++) if (![1, 2, 3].includes(before.ids[i])) assert.ok(after.ids.includes(before.ids[i]));
  await index.compact();
  assert.equal(index.stats().deleted, 0);
  await index.add(ds.base.subarray(6000 * DIM, 6010 * DIM), Uint32Array.from({ length: 10 }, (_, i) => 6000 + i));
  assert.equal(index.size, 6007);
  await assert.rejects(index.searchBatch(ds.queries, 10, { signal: 'soon' as unknown as AbortSignal }), (e: unknown) => e instanceof ZGQError && e.code === 'INVALID_ARGUMENT');
});

test('searches run between the slices of a filtered batch leave its answers as they would be alone', async () => {
  const index = new ZGQIndex({ dim: DIM, seed: 1 });
  await index.build(ds.base.subarray(0, 6000 * DIM), { threads: 1 });
  const queries = ds.queries.subarray(0, 600 * DIM);
  // a few allowed vectors: both the batch and the searches scan their allowed lists exactly
  const batchFilter = new Set(Array.from({ length: 60 }, (_, i) => i * 97));
  const searchFilter = new Set(Array.from({ length: 50 }, (_, i) => i * 89 + 1));
  const alone = await index.searchBatch(queries, 10, { threads: 1, filter: batchFilter });
  pacing.everyMs = 0;
  try {
    let running = true;
    let searches = 0;
    const interfere = () => {
      if (!running) return;
      const hit = index.search(ds.queries.subarray(700 * DIM, 701 * DIM), 10, { filter: searchFilter });
      assert.ok([...hit.ids].every((id) => searchFilter.has(id)));
      searches++;
      setImmediate(interfere);
    };
    setImmediate(interfere);
    const interleaved = await index.searchBatch(queries, 10, { threads: 1, filter: batchFilter });
    running = false;
    assert.ok(searches > 0, 'searches ran during the batch');
    assert.deepEqual(interleaved.ids, alone.ids);
  } finally {
    pacing.everyMs = 25;
  }
});

test('ids removed while a batch runs are not in its answers', async () => {
  const index = new ZGQIndex({ dim: DIM, seed: 1 });
  await index.build(ds.base.subarray(0, 6000 * DIM), { threads: 1 });
  const queries = ds.queries.subarray(0, 1000 * DIM);
  const before = await index.searchBatch(queries, 10, { threads: 1 });
  // the nearest answer of every query, removed once the batch has given the event loop a turn
  const doomed = [...new Set(Array.from({ length: 1000 }, (_, q) => before.ids[q * 10]))];
  pacing.everyMs = 0;
  try {
    setImmediate(() => index.remove(doomed));
    const during = await index.searchBatch(queries, 10, { threads: 1 });
    const gone = new Set(doomed);
    assert.ok([...during.ids].every((id) => !gone.has(id)));
    assert.deepEqual(during.ids, (await index.searchBatch(queries, 10, { threads: 1 })).ids);
  } finally {
    pacing.everyMs = 25;
  }
});

test('every phase of a build reports progress between its start and its end, never going back', async () => {
  const reports: Record<string, number[]> = {};
  await new ZGQIndex({ dim: DIM, seed: 1 }).build(ds.base, { threads: 1, onProgress: (phase, f) => (reports[phase] ??= []).push(f) });
  for (const phase of ['zones', 'pq', 'graph']) {
    const seen = reports[phase];
    assert.equal(seen[0], 0, phase);
    assert.equal(seen.at(-1), 1, phase);
    assert.ok(seen.some((f) => f > 0 && f < 1), `${phase} reports between 0 and 1: ${seen.length} reports`);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i] >= seen[i - 1], `${phase} progress goes back at report ${i}`);
  }
});
