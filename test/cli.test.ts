// The zgq command line (the built dist/, as installed): build / search / info / add / remove over
// .fvecs, .npy, JSON lines, CSV and HDF5 files, checked against the library; bad files give one line and exit 1;
// a bare `zgq`, an unknown command and --version answer at once (issue 17).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dump } from 'npyjs';
import h5wasm from 'h5wasm/node';
import { ZGQIndex } from '../src/index.js';
import { withFileLock } from '../src/lock.js';
import { clusteredGaussian } from '../src/data/synthetic.js';
import { encodeFvecs } from '../src/data/vecs.js';

const MAIN = fileURLToPath(new URL('../dist/cli/zgq.js', import.meta.url));
const DIM = 16;
const ds = clusteredGaussian({ n: 2000, nQueries: 20, dim: DIM, seed: 5 });

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function zgq(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    // the timeout turns a command that would run the 100K demo instead of answering into a failure
    execFile(process.execPath, [MAIN, ...args], { maxBuffer: 64 << 20, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

function rows(data: Float32Array, from: number, to: number): number[][] {
  return Array.from({ length: to - from }, (_, i) => Array.from(data.subarray((from + i) * DIM, (from + i + 1) * DIM)));
}

/** A one-line error naming `what`, exit code 1, no stack trace. */
function assertCleanFailure(run: Run, what: RegExp): void {
  assert.equal(run.code, 1, `exit code (stderr: ${run.stderr})`);
  const lines = run.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${run.stderr}`);
  assert.match(lines[0], /^zgq: /);
  assert.match(lines[0], what);
  assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
}

test('first contact: bare zgq prints help, unknown commands fail with a suggestion, --version and -V print the version', async () => {
  const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  const bare = await zgq();
  assert.equal(bare.code, 0, bare.stderr);
  assert.match(bare.stdout, /^Usage: zgq /);
  for (const name of ['build', 'search', 'info', 'add', 'remove', 'collection', 'bench', 'demo']) assert.match(bare.stdout, new RegExp(`\\n  ${name}\\b`), name);
  assert.doesNotMatch(bare.stdout + bare.stderr, /ZGQ demo:/, 'the demo did not run');

  for (const flag of ['--version', '-V']) {
    const run = await zgq(flag);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${version}\n`);
  }

  const unknown = await zgq('frobnicate');
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /^error: unknown command 'frobnicate'\n/);
  assert.match(unknown.stderr, /\nUsage: zgq /, 'help follows the error');
  const typo = await zgq('serch', 'index.zgq', 'q.npy');
  assert.equal(typo.code, 1);
  assert.match(typo.stderr, /^error: unknown command 'serch'\n\(Did you mean search\?\)/);

  // the demo runs when named (npm start names it)
  const demo = await zgq('demo', '--n', '1000', '--dim', '8', '--queries', '10');
  assert.equal(demo.code, 0, demo.stderr);
  assert.match(demo.stdout, /ZGQ\s+recall@10/);
});

test('zgq build, search, info, add and remove on real files agree with the library', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zgq-cli-'));
  try {
    const base = join(dir, 'base.fvecs');
    writeFileSync(base, encodeFvecs(ds.base.slice(0, 1500 * DIM), DIM));
    const queries = join(dir, 'queries.npy');
    writeFileSync(queries, new Uint8Array(dump(ds.queries, [20, DIM])));
    const index = join(dir, 'index.zgq');

    const built = await zgq('build', base, '-o', index, '--seed', '7', '--threads', '1');
    assert.equal(built.code, 0, built.stderr);
    assert.match(built.stderr, /built 1500 x 16/);

    const info = JSON.parse((await zgq('info', index, '--json')).stdout);
    assert.equal(info.size, 1500);
    assert.equal(info.dim, DIM);
    assert.match((await zgq('info', index)).stdout, /vectors\s+1500 x 16 \(l2\)/);

    // the same index through the library gives the same neighbours
    const lib = new ZGQIndex({ dim: DIM, seed: 7 });
    await lib.build(ds.base.slice(0, 1500 * DIM), { threads: 1 });
    const expected = await lib.searchBatch(ds.queries, 5);
    const json = (await zgq('search', index, queries, '-k', '5', '--format', 'json')).stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(json.length, 20);
    json.forEach((r, q) => {
      assert.equal(r.query, q);
      assert.deepEqual(r.ids, Array.from(expected.ids.subarray(q * 5, q * 5 + 5)));
    });
    const tsv = (await zgq('search', index, queries, '-k', '5')).stdout.trim().split('\n');
    assert.equal(tsv[0], 'query\trank\tid\tdistance');
    assert.equal(tsv.length, 1 + 20 * 5);
    assert.deepEqual(tsv[1].split('\t').slice(0, 3), ['0', '1', String(expected.ids[0])]);
    // --traversal exact: what the library's exact walk returns
    const expectedExact = await lib.searchBatch(ds.queries, 5, { traversal: 'exact' });
    const exact = (await zgq('search', index, queries, '-k', '5', '--format', 'json', '--traversal', 'exact')).stdout.trim().split('\n').map((l) => JSON.parse(l));
    exact.forEach((r, q) => assert.deepEqual(r.ids, Array.from(expectedExact.ids.subarray(q * 5, q * 5 + 5))));
    // --rows file: the rows read from the index file, the PQ walk: what the library's PQ walk returns
    const expectedPq = await lib.searchBatch(ds.queries, 5, { traversal: 'pq', ef: 40, rerank: 4 });
    for (const place of ['file', 'heap']) {
      const served = (await zgq('search', index, queries, '-k', '5', '--format', 'json', '--rows', place, '--ef', '40', '--rerank', '4')).stdout.trim().split('\n').map((l) => JSON.parse(l));
      served.forEach((r, q) => assert.deepEqual(r.ids, Array.from(expectedPq.ids.subarray(q * 5, q * 5 + 5)), place));
    }
    const servedExact = await zgq('search', index, queries, '--rows', 'file', '--traversal', 'exact');
    assert.equal(servedExact.code, 1);
    assert.match(servedExact.stderr, /traversal 'exact' reads the stored rows/);
    const badChoice = await zgq('search', index, queries, '--traversal', 'walk');
    assert.equal(badChoice.code, 1);
    assert.match(badChoice.stderr, /--traversal.*'walk' is invalid\. Allowed choices are pq, exact/);

    // add JSON lines that carry their ids, then search for one of them
    const more = join(dir, 'more.jsonl');
    writeFileSync(more, rows(ds.base, 1500, 2000).map((v, i) => JSON.stringify({ id: 5000 + i, vector: v })).join('\n') + '\n');
    const added = await zgq('add', index, more);
    assert.equal(added.code, 0, added.stderr);
    const probe = join(dir, 'probe.jsonl');
    writeFileSync(probe, JSON.stringify(rows(ds.base, 1700, 1701)[0]) + '\n');
    const hit = JSON.parse((await zgq('search', index, probe, '-k', '1', '--format', 'json')).stdout);
    assert.deepEqual(hit.ids, [5200]);

    // remove it (and compact): never found again; a filter restricts results
    const removed = await zgq('remove', index, '5200', '3');
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stderr, /removed 2 of 2 ids: 1998 vectors/);
    const after = JSON.parse((await zgq('search', index, probe, '-k', '3', '--format', 'json')).stdout);
    assert.ok(!after.ids.includes(5200));
    const allow = join(dir, 'allow.txt');
    writeFileSync(allow, '10\n11\n12\n');
    const filtered = JSON.parse((await zgq('search', index, probe, '-k', '5', '--format', 'json', '--filter', allow)).stdout);
    assert.deepEqual([...filtered.ids].sort(), [10, 11, 12]);
    assert.equal(JSON.parse((await zgq('info', index, '--json')).stdout).size, 1998);

    // results to a file
    const out = join(dir, 'out.tsv');
    assert.equal((await zgq('search', index, queries, '-o', out)).code, 0);
    assert.equal(readFileSync(out, 'utf8').trim().split('\n').length, 1 + 20 * 10);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('zgq tune picks search defaults for a recall target and saves them; zgq build --target-recall tunes at build', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zgq-cli-'));
  try {
    const base = join(dir, 'base.fvecs');
    writeFileSync(base, encodeFvecs(ds.base, DIM));
    const index = join(dir, 'index.zgq');
    assert.equal((await zgq('build', base, '-o', index, '--threads', '1', '--target-recall', '0.9')).code, 0);
    const tuned = await zgq('tune', index, '--recall', '0.99', '--queries', '100');
    assert.equal(tuned.code, 0, tuned.stderr);
    const line = tuned.stdout.trim();
    assert.match(line, /^reached recall@10 0\.99 on 100 of the index's vectors: traversal (pq|exact|scan).*recall@10 (0\.99\d|1\.000), [\d,]+ QPS \(one thread\) -> /);
    // the defaults now in the file are the ones reported
    const saved = JSON.parse((await zgq('info', index, '--json')).stdout).options.search;
    const lib = await ZGQIndex.load(index);
    const report = await lib.tune({ recall: 0.99, queries: 100 });
    assert.equal(line.includes(`traversal ${saved.traversal}`), true, `${line} / ${JSON.stringify(saved)}`);
    assert.ok(report.recall >= 0.99);
    for (const [args, message] of [[['--recall', '1.5'], /--recall must be a number in \(0, 1\]/], [[], /required option '--recall <r>'/]] as const) {
      const bad = await zgq('tune', index, ...args);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, message);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('zgq reports bad files and arguments in one line with exit code 1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zgq-cli-bad-'));
  try {
    const base = join(dir, 'base.jsonl');
    writeFileSync(base, rows(ds.base, 0, 300).map((v) => JSON.stringify(v)).join('\n'));
    const index = join(dir, 'index.zgq');
    assert.equal((await zgq('build', base, '-o', index, '--threads', '1')).code, 0);
    const original = readFileSync(index);

    assertCleanFailure(await zgq('build', join(dir, 'missing.fvecs'), '-o', index), /missing\.fvecs/);
    const badJson = join(dir, 'bad.jsonl');
    writeFileSync(badJson, '[1, 2, 3]\n[1, 2\n');
    assertCleanFailure(await zgq('build', badJson, '-o', join(dir, 'x.zgq')), /bad\.jsonl: line 2 is not valid JSON/);
    const ragged = join(dir, 'ragged.jsonl');
    writeFileSync(ragged, '[1, 2, 3]\n[1, 2]\n');
    assertCleanFailure(await zgq('build', ragged, '-o', join(dir, 'x.zgq')), /ragged\.jsonl: line 2 has 2 numbers/);
    const cube = join(dir, 'cube.npy');
    writeFileSync(cube, new Uint8Array(dump(new Float32Array(8), [2, 2, 2])));
    assertCleanFailure(await zgq('build', cube, '-o', join(dir, 'x.zgq')), /cube\.npy: expected a 2-D array/);
    const junk = join(dir, 'junk.npy');
    writeFileSync(junk, 'not numpy at all');
    assertCleanFailure(await zgq('build', junk, '-o', join(dir, 'x.zgq')), /junk\.npy: not a readable \.npy file/);
    assertCleanFailure(await zgq('build', join(dir, 'data.xlsx'), '-o', join(dir, 'x.zgq')), /data\.xlsx: unknown vector format '\.xlsx'/);

    const wrongDim = join(dir, 'wrong.jsonl');
    writeFileSync(wrongDim, '[1, 2, 3]\n');
    assertCleanFailure(await zgq('search', index, wrongDim), /wrong\.jsonl: queries have 3 values; the index dim is 16/);
    assertCleanFailure(await zgq('add', index, base), /new vectors need ids/);
    assertCleanFailure(await zgq('remove', index, 'seven'), /'seven' is not an integer id/);
    assertCleanFailure(await zgq('remove', index), /no ids to remove/);
    const badIds = join(dir, 'ids.txt');
    writeFileSync(badIds, '1\nx\n');
    assertCleanFailure(await zgq('remove', index, '--ids', badIds), /ids\.txt: line 2 is not an id/);

    const truncated = join(dir, 'truncated.zgq');
    writeFileSync(truncated, original.subarray(0, original.length >> 1));
    assertCleanFailure(await zgq('info', truncated), /truncated\.zgq/);
    assertCleanFailure(await zgq('info', join(dir, 'none.zgq')), /none\.zgq/);
    // failed commands never touched the index file
    assert.deepEqual(readFileSync(index), original);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('zgq reads the files users have: a JSON array of {id, embedding}, int64 .npy ids; string ids refused by line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zgq-cli-files-'));
  try {
    const docs = join(dir, 'docs.json');
    writeFileSync(docs, JSON.stringify(rows(ds.base, 0, 300).map((v, i) => ({ id: 1000 + i, embedding: v, text: `doc ${i}` })), null, 2));
    const index = join(dir, 'index.zgq');
    const built = await zgq('build', docs, '-o', index, '--threads', '1');
    assert.equal(built.code, 0, built.stderr);
    const probe = join(dir, 'probe.json');
    writeFileSync(probe, JSON.stringify(rows(ds.base, 4, 5)));
    assert.deepEqual(JSON.parse((await zgq('search', index, probe, '-k', '1', '--format', 'json')).stdout).ids, [1004]);

    // numpy's default integer is int64; the top of the id range survives
    const base = join(dir, 'base.fvecs');
    writeFileSync(base, encodeFvecs(ds.base.slice(0, 300 * DIM), DIM));
    const ids = join(dir, 'ids.npy');
    writeFileSync(ids, new Uint8Array(dump(BigInt64Array.from({ length: 300 }, (_, i) => BigInt(2 ** 32 - 2 - i)), [300])));
    const byNpy = join(dir, 'npy.zgq');
    const builtNpy = await zgq('build', base, '--ids', ids, '-o', byNpy, '--threads', '1');
    assert.equal(builtNpy.code, 0, builtNpy.stderr);
    assert.deepEqual(JSON.parse((await zgq('search', byNpy, probe, '-k', '1', '--format', 'json')).stdout).ids, [2 ** 32 - 2 - 4]);
    const negative = join(dir, 'negative.npy');
    writeFileSync(negative, new Uint8Array(dump(BigInt64Array.from({ length: 300 }, (_, i) => BigInt(i === 7 ? -1 : i)), [300])));
    assertCleanFailure(await zgq('build', base, '--ids', negative, '-o', join(dir, 'x.zgq')), /negative\.npy: id -1 at position 7 is not an integer in \[0, 4294967294\]/);

    const named = join(dir, 'named.jsonl');
    writeFileSync(named, rows(ds.base, 0, 3).map((v, i) => JSON.stringify({ id: `doc-${i}`, embedding: v })).join('\n'));
    assertCleanFailure(await zgq('build', named, '-o', join(dir, 'x.zgq')), /named\.jsonl: line 1: "id" is the string "doc-0"; an index takes integer ids .*documents with string ids go in a collection: zgq collection upsert/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('zgq builds from CSV with an id column and searches with HDF5 queries (test, or --dataset)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zgq-cli-tables-'));
  try {
    const csv = join(dir, 'base.csv');
    const header = ['id', ...Array.from({ length: DIM }, (_, j) => `x${j}`)].join(',');
    writeFileSync(csv, [header, ...rows(ds.base, 0, 300).map((v, i) => [500 + i, ...v].join(','))].join('\n') + '\n');
    const index = join(dir, 'index.zgq');
    const built = await zgq('build', csv, '-o', index, '--threads', '1');
    assert.equal(built.code, 0, built.stderr);
    assert.match(built.stderr, /built 300 x 16/);

    await h5wasm.ready;
    const hdf5 = join(dir, 'queries.hdf5');
    const f = new h5wasm.File(hdf5, 'w');
    f.create_dataset({ name: 'train', data: ds.base.slice(0, 300 * DIM), shape: [300, DIM] });
    f.create_dataset({ name: 'test', data: ds.base.slice(7 * DIM, 9 * DIM), shape: [2, DIM] });
    f.create_dataset({ name: 'probe', data: ds.base.slice(42 * DIM, 43 * DIM), shape: [1, DIM] });
    f.close();
    const found = (await zgq('search', index, hdf5, '-k', '1', '--format', 'json')).stdout.trim().split('\n').map((l) => JSON.parse(l).ids);
    assert.deepEqual(found, [[507], [508]]);
    const probe = await zgq('search', index, hdf5, '-k', '1', '--format', 'json', '--dataset', 'probe');
    assert.deepEqual(JSON.parse(probe.stdout).ids, [542]);
    assertCleanFailure(await zgq('search', index, hdf5, '--dataset', 'queries'), /queries\.hdf5: no dataset 'queries'; it has .*'test'/);
    const ragged = join(dir, 'ragged.tsv');
    writeFileSync(ragged, '1\t2\n3\tx\n');
    assertCleanFailure(await zgq('build', ragged, '-o', join(dir, 'x.zgq')), /ragged\.tsv: line 2, column 2: "x" is not a number/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('two zgq add processes racing on one index file both land (issue 15: no silent loss)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zgq-cli-race-'));
  try {
    const base = join(dir, 'base.fvecs');
    writeFileSync(base, encodeFvecs(ds.base.slice(0, 1000 * DIM), DIM));
    const index = join(dir, 'index.zgq');
    assert.equal((await zgq('build', base, '-o', index, '--threads', '1')).code, 0);
    const batch = (name: string, from: number, firstId: number): string => {
      const path = join(dir, name);
      writeFileSync(path, rows(ds.base, from, from + 100).map((v, i) => JSON.stringify({ id: firstId + i, vector: v })).join('\n') + '\n');
      return path;
    };
    // several rounds: each pair overlaps in load, add and save, which used to lose one side
    for (let round = 0; round < 3; round++) {
      const a = batch(`a${round}.jsonl`, 1000 + 200 * round, 10_000 + 1000 * round);
      const b = batch(`b${round}.jsonl`, 1100 + 200 * round, 50_000 + 1000 * round);
      const [ra, rb] = await Promise.all([zgq('add', index, a, '--threads', '1'), zgq('add', index, b, '--threads', '1')]);
      assert.equal(ra.code, 0, ra.stderr);
      assert.equal(rb.code, 0, rb.stderr);
    }
    const after = await ZGQIndex.load(index);
    assert.equal(after.size, 1000 + 3 * 200);
    for (let round = 0; round < 3; round++) {
      for (const first of [10_000 + 1000 * round, 50_000 + 1000 * round]) {
        assert.ok(after.has(first) && after.has(first + 99), `ids ${first}.. present`);
      }
    }
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes('.tmp-') || f.endsWith('.lock')), []);

    // a writer that holds the lock: --wait 0 fails at once, naming the file and the holder
    const more = batch('more.jsonl', 1900, 90_000);
    await withFileLock(index, async () => {
      const held = await zgq('add', index, more, '--wait', '0');
      assertCleanFailure(held, /is locked by another writer, pid \d+ on host .*\(LOCKED\)$/);
      assert.ok(held.stderr.includes(index), held.stderr);
      assertCleanFailure(await zgq('remove', index, '5', '--wait', '0.2'), /waited 200 ms/);
    });
    const badWait = await zgq('add', index, more, '--wait', 'soon');
    assert.equal(badWait.code, 1);
    assert.match(badWait.stderr, /--wait must be a number of seconds >= 0/);
    assert.equal((await zgq('add', index, more, '--wait', '0')).code, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('zgq collection upsert, query with --where, delete: a JSON lines file in, answers as the library gives them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zgq-cli-collection-'));
  try {
    const docs = join(dir, 'docs.jsonl');
    const file = join(dir, 'docs.zgq');
    const genre = (i: number) => ['jazz', 'rock', 'folk'][i % 3];
    const lines = Array.from({ length: 600 }, (_, i) => JSON.stringify({ id: i % 2 ? `doc-${i}` : i, embedding: rows(ds.base, i, i + 1)[0], metadata: { genre: genre(i), n: i }, text: `text ${i}` }));
    writeFileSync(docs, lines.slice(0, 400).join('\n') + '\n\n');
    const first = await zgq('collection', 'upsert', file, docs, '--metric', 'l2', '--threads', '1');
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /upserted 400 documents .*: 400 in /);
    writeFileSync(docs, lines.slice(400).join('\n'));
    const second = await zgq('collection', 'upsert', file, docs, '--threads', '1');
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /: 600 in /);

    const queries = join(dir, 'q.jsonl');
    writeFileSync(queries, rows(ds.queries, 0, 3).map((r) => JSON.stringify(r)).join('\n'));
    const where = { genre: 'rock', n: { $lt: 300 } };
    const run = await zgq('collection', 'query', file, queries, '-k', '4', '--where', JSON.stringify(where), '--format', 'json');
    assert.equal(run.code, 0, run.stderr);
    const { ZGQCollection } = await import('../src/index.js');
    const library = await ZGQCollection.load(file);
    const got = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as { query: number; hits: { id: string | number; metadata: { genre: string; n: number }; text: string }[] });
    assert.equal(got.length, 3);
    for (const { query, hits } of got) {
      const expected = library.query(ds.queries.subarray(query * DIM, (query + 1) * DIM), { k: 4, where });
      assert.deepEqual(hits.map((h) => h.id), expected.map((h) => h.id));
      for (const h of hits) assert.ok(h.metadata.genre === 'rock' && h.metadata.n < 300 && h.text === `text ${h.metadata.n}`);
    }

    const deleted = await zgq('collection', 'delete', file, 'doc-1', 'missing');
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.match(deleted.stderr, /deleted 1 of 2 ids: 599 documents/);
    const numeric = await zgq('collection', 'delete', file, '--json', '4');
    assert.match(numeric.stderr, /deleted 1 of 1 ids: 598 documents/);

    writeFileSync(docs, `${lines[0]}\n{"id": "short", "vector": [1, 2]}\n`);
    assertCleanFailure(await zgq('collection', 'upsert', file, docs), /docs\.jsonl: line 2: vector has 2 values; the collection's dim is 16 \(DIMENSION_MISMATCH\)/);
    writeFileSync(docs, 'not json\n');
    assertCleanFailure(await zgq('collection', 'upsert', file, docs), /docs\.jsonl:1: not JSON/);
    writeFileSync(docs, `${lines[0]}\n${lines[2]}\n${lines[0]}\n`);
    assertCleanFailure(await zgq('collection', 'upsert', file, docs), /docs\.jsonl:3: id 0 is also on line 1 \(DUPLICATE_ID\)/);
    assertCleanFailure(await zgq('collection', 'upsert', file, join(dir, 'missing.jsonl')), /cannot read '.*missing\.jsonl'.*\(IO\)/);
    // the index commands refuse a collection's file: writing it as a plain index would drop its documents
    assertCleanFailure(await zgq('remove', file, '0'), /'docs'.*change it with ZGQCollection or zgq collection \(INVALID_ARGUMENT\)/);
    assertCleanFailure(await zgq('collection', 'query', file, queries, '--where', '{"n":{"$near":1}}'), /where\.n\.\$near: unknown operator/);
    assert.equal((await ZGQCollection.load(file)).size, 598, 'failed upserts changed nothing');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
