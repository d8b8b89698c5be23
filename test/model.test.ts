// Property test: random sequences of add / re-add / remove / compact / save+load / filtered search,
// some not awaited, run on an index and on a brute-force model of what it should hold (a map from
// id to vector). After every step the index must hold exactly the model's ids, and every search
// must return live, allowed, distinct ids, as many as there are (up to k), with their true
// distances, nearest first, close to the exact answer. ZGQ_MODEL_RUNS sets the number of sequences
// (default 60).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { NO_ID, ZGQIndex } from '../src/index.js';
import { Rng } from '../src/random.js';

const DIM = 8;
const K = 10;
const RUNS = Number(process.env.ZGQ_MODEL_RUNS ?? 60);

type Op =
  | { kind: 'add'; ids: number[]; seed: number; awaited: boolean }
  | { kind: 'remove'; ids: number[] }
  | { kind: 'compact' }
  | { kind: 'reload' }
  | { kind: 'search'; seed: number; filter: 'none' | 'set' | 'predicate'; share: number };

const idArb = fc.integer({ min: 0, max: 6000 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('add' as const), ids: fc.uniqueArray(idArb, { minLength: 1, maxLength: 300 }), seed: fc.nat(), awaited: fc.boolean() }) },
  // a bulk add: an index grown from empty trains when it reaches 4096 vectors
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('add' as const), ids: fc.integer({ min: 0, max: 4000 }).map((from) => Array.from({ length: 2000 }, (_, i) => from + i)), seed: fc.nat(),
      awaited: fc.boolean(),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('remove' as const), ids: fc.array(idArb, { maxLength: 200 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'compact' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reload' as const }) },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('search' as const), seed: fc.nat(), filter: fc.constantFrom('none' as const, 'set' as const, 'predicate' as const), share: fc.double({ min: 0.001, max: 1, noNaN: true }) }),
  },
);

/** Four fixed centres: every step draws from one distribution (training on the first rows stays valid). */
const CENTRES = (() => {
  const rng = new Rng(1);
  return Array.from({ length: 4 }, () => Array.from({ length: DIM }, () => rng.next() * 10));
})();

/** Clustered rows around CENTRES; the seed picks the points, so re-added ids get other vectors. */
function rowsFor(ids: number[], seed: number): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(ids.length * DIM);
  const centres = CENTRES;
  for (let i = 0; i < ids.length; i++) {
    const c = centres[rng.int(4)];
    for (let j = 0; j < DIM; j++) out[i * DIM + j] = c[j] + rng.next();
  }
  return out;
}

/** Whether zones and codebooks exist yet (an index grown from empty trains at its 4096th vector). */
function trained(index: ZGQIndex): boolean {
  try {
    index.stats();
    return true;
  } catch {
    return false;
  }
}

function l2(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let j = 0; j < DIM; j++) s += (a[j] - b[j]) ** 2;
  return s;
}

/** Check one search against the model: exact invariants, then closeness to the exact answer. */
function checkSearch(index: ZGQIndex, model: Map<number, Float32Array>, query: Float32Array, allowed: (id: number) => boolean, hits: { got: number; want: number }): void {
  const filter = (id: number) => allowed(id);
  const { ids, distances } = index.search(query, K, { filter, ef: 64 });
  const truth = [...model.entries()].filter(([id]) => allowed(id)).map(([id, v]) => ({ id, d: l2(query, v) })).sort((a, b) => a.d - b.d);
  const expected = Math.min(K, truth.length);
  const got = [...ids].filter((id) => id !== NO_ID);
  assert.equal(got.length, expected, `results: ${got.length}, allowed live ${truth.length}`);
  assert.equal(new Set(got).size, got.length, 'distinct ids');
  for (let i = 0; i < got.length; i++) {
    const v = model.get(got[i]);
    assert.ok(v, `id ${got[i]} is not in the index`);
    assert.ok(allowed(got[i]), `id ${got[i]} is not allowed by the filter`);
    const d = l2(query, v);
    assert.ok(Math.abs(distances[i] - d) <= 1e-3 * Math.max(1, d), `distance of ${got[i]}: ${distances[i]} vs ${d}`);
    if (i > 0) assert.ok(distances[i] >= distances[i - 1], 'nearest first');
  }
  const best = new Set(truth.slice(0, expected).map((t) => t.id));
  hits.got += got.filter((id) => best.has(id)).length;
  hits.want += expected;
}

test('an index follows a brute-force model through random add / remove / compact / reload / filtered search', async () => {
  const details = await fc.check(
    fc.asyncProperty(fc.array(opArb, { minLength: 4, maxLength: 14 }), fc.boolean(), async (ops, startEmpty) => {
      let index = new ZGQIndex({ dim: DIM, storage: 'float32', seed: 7 });
      const model = new Map<number, Float32Array>();
      if (!startEmpty) {
        const ids = Array.from({ length: 400 }, (_, i) => 1000 + i);
        const rows = rowsFor(ids, 1);
        await index.build(rows, { ids });
        ids.forEach((id, i) => model.set(id, rows.slice(i * DIM, (i + 1) * DIM)));
      }
      const hits = { got: 0, want: 0 };
      let pending: Promise<void>[] = [];
      for (const op of ops) {
        if (op.kind === 'add') {
          const rows = rowsFor(op.ids, op.seed);
          const p = index.add(rows, op.ids, { threads: 1 });
          op.ids.forEach((id, i) => model.set(id, rows.slice(i * DIM, (i + 1) * DIM)));
          if (op.awaited) await p;
          else pending.push(p);
          continue;
        }
        if (op.kind === 'remove') {
          const present = new Set(op.ids.filter((id) => model.has(id)));
          assert.equal(index.remove(op.ids), present.size, 'remove counts what the model holds');
          for (const id of present) model.delete(id);
          continue;
        }
        // the other steps look at the index: what was called before must have applied
        await Promise.all(pending);
        pending = [];
        if (op.kind === 'compact') await index.compact();
        if (op.kind === 'reload' && trained(index)) index = ZGQIndex.fromBytes(index.toBytes());
        assert.equal(index.size, model.size);
        for (const id of [...model.keys()].slice(0, 50)) assert.ok(index.has(id), `has(${id})`);
        if (op.kind === 'search') {
          const rng = new Rng(op.seed);
          const query = rowsFor([0], op.seed);
          const chosen = new Set([...model.keys()].filter(() => rng.next() < op.share));
          const allowed = op.filter === 'none' ? () => true : op.filter === 'set' ? (id: number) => chosen.has(id) : (id: number) => id % 3 === op.seed % 3;
          checkSearch(index, model, query, allowed, hits);
        }
      }
      await Promise.all(pending);
      assert.equal(index.size, model.size);
      if (hits.want > 0) assert.ok(hits.got / hits.want >= 0.9, `recall ${hits.got}/${hits.want}`);
    }),
    { numRuns: RUNS, seed: 42 },
  );
  // the failure itself, after the shrunk counterexample (the test runner does not print causes)
  if (details.failed) assert.fail(`${fc.defaultReportMessage(details)}\n${(details.errorInstance as Error | undefined)?.stack ?? ''}`);
});
