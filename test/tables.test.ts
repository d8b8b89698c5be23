/**
 * Parquet and Arrow IPC vector files: written here with hyparquet-writer and apache-arrow in the
 * layouts pandas, Polars, pyarrow and LanceDB produce, read back through readVectorFile, compared
 * value by value; every refusal names the file, the row or the column.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteFile } from 'hyparquet-writer';
import {
  Field, FixedSizeList, Float16, Float32, Float64, Int64, List, Table, Uint32, Utf8, tableToIPC, vectorFromArray,
} from 'apache-arrow';
import { Rng } from '../src/random.js';
import { readVectorFile } from '../src/data/files.js';
import { expectCodeAsync } from './helpers/expect.js';

function rows(n: number, dim: number, seed = 7): number[][] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => Array.from({ length: dim }, () => Math.fround(rng.normal())));
}

function flat(r: number[][]): Float32Array {
  return Float32Array.from(r.flat());
}

/** The 3-level LIST of FLOAT that pyarrow and Polars write for a list<float32> column. */
const LIST_OF_FLOAT = [
  { name: 'embedding', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  { name: 'element', type: 'FLOAT', repetition_type: 'REQUIRED' },
] as const;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'zgq-tables-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('Parquet: a list<float> column with int64 ids across row groups, and a wide table of doubles', async () => {
  await withDir(async (dir) => {
    const vectors = rows(1000, 12);
    const path = join(dir, 'emb.parquet');
    parquetWriteFile({
      filename: path,
      columnData: [
        { name: 'id', data: vectors.map((_, i) => BigInt(5000 + i)) },
        { name: 'text', data: vectors.map((_, i) => `doc ${i}`) },
        { name: 'embedding', data: vectors },
      ],
      schema: [
        { name: 'root', num_children: 3 },
        { name: 'id', type: 'INT64', repetition_type: 'REQUIRED' },
        { name: 'text', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
        ...LIST_OF_FLOAT,
      ],
      rowGroupSize: 300, // four row groups, the last one short
    });
    const r = await readVectorFile(path);
    assert.equal(r.n, 1000);
    assert.equal(r.dim, 12);
    assert.deepEqual(r.data, flat(vectors));
    assert.deepEqual(r.ids, Uint32Array.from({ length: 1000 }, (_, i) => 5000 + i));

    const wide = join(dir, 'wide.parquet');
    const few = rows(50, 3, 9);
    parquetWriteFile({
      filename: wide,
      columnData: [0, 1, 2].map((j) => ({ name: `f${j}`, data: few.map((row) => row[j]), type: 'DOUBLE' as const })),
    });
    const w = await readVectorFile(wide);
    assert.equal(w.dim, 3);
    assert.equal(w.ids, null);
    assert.deepEqual(w.data, flat(few));
  });
});

test('Parquet: refusals name the file, the row or the columns', async () => {
  await withDir(async (dir) => {
    const write = (name: string, columnData: object[], schema?: object[]) => {
      const path = join(dir, name);
      parquetWriteFile({ filename: path, columnData, schema } as Parameters<typeof parquetWriteFile>[0]);
      return path;
    };
    const listSchema = (extra: object[]) => [{ name: 'root', num_children: 1 + extra.length }, ...extra, ...LIST_OF_FLOAT];
    const ragged = write('ragged.parquet', [{ name: 'embedding', data: [[1, 2], [3, 4], [5]] }], listSchema([]));
    await expectCodeAsync(() => readVectorFile(ragged), 'CORRUPT_FILE', /ragged\.parquet: row 2 has 1 numbers; earlier rows have 2/);
    const nulls = write('null.parquet', [{ name: 'embedding', data: [[1, 2], null] }], listSchema([]));
    await expectCodeAsync(() => readVectorFile(nulls), 'CORRUPT_FILE', /null\.parquet: row 1: the vector is null/);
    const strings = write('strid.parquet', [{ name: 'id', data: ['a', 'b'] }, { name: 'embedding', data: [[1], [2]] }],
      listSchema([{ name: 'id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' }]));
    await expectCodeAsync(() => readVectorFile(strings), 'INVALID_ARGUMENT', /strid\.parquet: row 0: id is the string "a"; an index takes integer ids.*zgq collection upsert/);
    const two = write('two.parquet', [{ name: 'a', data: [[1]] }, { name: 'b', data: [[2]] }], [
      { name: 'root', num_children: 2 },
      { ...LIST_OF_FLOAT[0], name: 'a' }, LIST_OF_FLOAT[1], LIST_OF_FLOAT[2],
      { ...LIST_OF_FLOAT[0], name: 'b' }, LIST_OF_FLOAT[1], LIST_OF_FLOAT[2],
    ]);
    await expectCodeAsync(() => readVectorFile(two), 'INVALID_ARGUMENT', /two\.parquet: 2 columns hold lists of numbers \(a, b\); name the vector column with --column/);
    const picked = await readVectorFile(two, { column: 'b' });
    assert.deepEqual(picked.data, Float32Array.of(2));
    await expectCodeAsync(() => readVectorFile(two, { column: 'c' }), 'INVALID_ARGUMENT', /two\.parquet: no column 'c'; the columns are a \(list<float>\), b \(list<float>\)/);
    const text = write('text.parquet', [{ name: 'f', data: [1.5] , type: 'DOUBLE' }, { name: 'note', data: ['x'], type: 'STRING' }]);
    await expectCodeAsync(() => readVectorFile(text), 'CORRUPT_FILE', /text\.parquet: no list column, and column 'note' \(string\) is not a number/);
    const notParquet = join(dir, 'fake.parquet');
    await writeFile(notParquet, 'not parquet at all');
    await expectCodeAsync(() => readVectorFile(notParquet), 'CORRUPT_FILE', /fake\.parquet: not a Parquet file/);
    await expectCodeAsync(() => readVectorFile(join(dir, 'missing.parquet')), 'IO', /cannot read '.*missing\.parquet'/);
  });
});

test('Arrow IPC: fixed-size list<float32> (file), list<float64> with uint32 ids (stream), float16, a wide table', async () => {
  await withDir(async (dir) => {
    const vectors = rows(700, 16);
    const fixed = vectorFromArray(vectors.map((r) => Float32Array.from(r)), new FixedSizeList(16, new Field('item', new Float32(), false)));
    const ids = vectorFromArray(vectors.map((_, i) => BigInt(i * 3)), new Int64());
    // three record batches: 300 + 300 + 100 rows
    const table = new Table({ vector: fixed.slice(0, 300), id: ids.slice(0, 300) })
      .concat(new Table({ vector: fixed.slice(300, 600), id: ids.slice(300, 600) }))
      .concat(new Table({ vector: fixed.slice(600), id: ids.slice(600) }));
    assert.equal(table.batches.length, 3);
    const file = join(dir, 'emb.arrow');
    await writeFile(file, tableToIPC(table, 'file'));
    const r = await readVectorFile(file);
    assert.deepEqual([r.n, r.dim], [700, 16]);
    assert.deepEqual(r.data, flat(vectors));
    assert.deepEqual(r.ids, Uint32Array.from({ length: 700 }, (_, i) => i * 3));

    const few = rows(40, 5, 3);
    const stream = join(dir, 'emb.arrows');
    const listed = new Table({
      embedding: vectorFromArray(few, new List(new Field('item', new Float64(), true))),
      id: vectorFromArray(few.map((_, i) => i + 10), new Uint32()),
    });
    await writeFile(stream, tableToIPC(listed, 'stream'));
    const s = await readVectorFile(stream);
    assert.deepEqual(s.data, flat(few));
    assert.deepEqual(s.ids, Uint32Array.from({ length: 40 }, (_, i) => i + 10));

    const halves = [[0.5, -2, 1024], [0.25, 3, -0.125]];
    const half = join(dir, 'half.feather');
    await writeFile(half, tableToIPC(new Table({ v: vectorFromArray(halves, new FixedSizeList(3, new Field('item', new Float16(), false))) }), 'file'));
    assert.deepEqual((await readVectorFile(half)).data, flat(halves));

    const wide = join(dir, 'wide.arrow');
    await writeFile(wide, tableToIPC(new Table({ a: vectorFromArray([1, 2], new Float64()), b: vectorFromArray([3, 4], new Float32()) }), 'file'));
    assert.deepEqual((await readVectorFile(wide)).data, Float32Array.of(1, 3, 2, 4));
  });
});

test('Arrow IPC: refusals name the file, the row or the columns', async () => {
  await withDir(async (dir) => {
    const write = async (name: string, table: Table) => {
      const path = join(dir, name);
      await writeFile(path, tableToIPC(table, 'file'));
      return path;
    };
    const ragged = await write('ragged.arrow', new Table({ embedding: vectorFromArray([[1, 2], [3]], new List(new Field('item', new Float32(), true))) }));
    await expectCodeAsync(() => readVectorFile(ragged), 'CORRUPT_FILE', /ragged\.arrow: row 1 has 1 numbers; earlier rows have 2/);
    const nullRow = await write('null.arrow', new Table({ embedding: vectorFromArray([[1, 2], null], new List(new Field('item', new Float32(), true))) }));
    await expectCodeAsync(() => readVectorFile(nullRow), 'CORRUPT_FILE', /null\.arrow: row 1: the vector is null/);
    const strIds = await write('strid.arrow', new Table({
      id: vectorFromArray(['doc-1'], new Utf8()),
      embedding: vectorFromArray([[1]], new List(new Field('item', new Float32(), true))),
    }));
    await expectCodeAsync(() => readVectorFile(strIds), 'INVALID_ARGUMENT', /strid\.arrow: row 0: id is the string "doc-1"/);
    const negative = await write('neg.arrow', new Table({
      id: vectorFromArray([-4n], new Int64()),
      embedding: vectorFromArray([[1]], new List(new Field('item', new Float32(), true))),
    }));
    await expectCodeAsync(() => readVectorFile(negative), 'INVALID_ARGUMENT', /neg\.arrow: row 0: id -4 is not an integer in \[0, 4294967294\]/);
    const big = await write('big.arrow', new Table({ embedding: vectorFromArray([[1e300]], new List(new Field('item', new Float64(), true))) }));
    await expectCodeAsync(() => readVectorFile(big), 'INVALID_ARGUMENT', /big\.arrow: row 0: value 0 is 1e\+300, outside the float32 range/);
    const fake = join(dir, 'fake.arrow');
    await writeFile(fake, 'ARROW1 but not really');
    await expectCodeAsync(() => readVectorFile(fake), 'CORRUPT_FILE', /fake\.arrow: not an Arrow IPC file/);
  });
});
