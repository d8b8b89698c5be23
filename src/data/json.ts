/**
 * Vectors from JSON text, read as a stream into Float32Array blocks joined once at the end (4 bytes
 * per value kept; never an array of JS arrays for the whole file). Two shapes, told apart by the
 * first characters:
 *
 * - JSON lines: one row per line (`[0.1, ...]` or an object), read with node:readline.
 * - A JSON array of rows (`[[0.1, ...], ...]` or `[{...}, ...]`, any whitespace): a small scanner
 *   cuts the text at the top-level commas (tracking nesting and strings) and each row is parsed
 *   on its own, so a row's text is the largest string held. A streaming JSON parser from npm would
 *   build the same rows through per-token callbacks, slower than JSON.parse on a row's text, and
 *   would add a runtime dependency for this one shape.
 *
 * A row is an array of numbers, or an object with the vector under "vector", "embedding"
 * (OpenAI-style exports) or "values" (Pinecone-style), an optional integer "id", and any other
 * fields, which are ignored. Ids come on every row or on none.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { ZGQError } from '../errors.js';
import { RowBlocks, type VectorRows, checkedId, noRows } from './rows.js';

/** Keys that may hold a row's vector, in the order they are named in messages. */
const VECTOR_KEYS = ['vector', 'embedding', 'values'] as const;

/** Bytes read per chunk of a JSON array file, by default. */
const CHUNK_BYTES = 1 << 20;

/** Options of readJsonVectors. */
export interface JsonReadOptions {
  /** Bytes per chunk of a JSON array file (default 1 MiB); tests use a few, so rows straddle chunks. */
  chunkBytes?: number;
}

/**
 * The rows of one file, checked as they arrive: the vector under one of VECTOR_KEYS, one
 * dimension, ids on every row or none; stored in RowBlocks.
 */
class RowSink {
  private store: RowBlocks | null = null;
  /** Where the first row with and the first without an "id" came from; both set is an error. */
  private withId: string | null = null;
  private withoutId: string | null = null;

  /** `name` opens every message; `rows` is what the file's rows are called there ("lines", "rows"). */
  constructor(private readonly name: string, private readonly rows: string) {}

  /** Take one parsed row; `where` names it in messages ("line 3", "row 3 (line 7)"). */
  add(value: unknown, where: string): void {
    let vector: unknown = value;
    let id: number | undefined;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const o = value as Record<string, unknown>;
      const keys = VECTOR_KEYS.filter((k) => o[k] !== undefined);
      if (keys.length === 0) throw this.corrupt(`${where} has no "vector", "embedding" or "values" array`);
      if (keys.length > 1) throw this.corrupt(`${where} has both "${keys[0]}" and "${keys[1]}"; keep one`);
      vector = o[keys[0]];
      if (o.id !== undefined) id = checkedId(o.id, this.name, where, '"id"');
    }
    if (!Array.isArray(vector)) throw this.corrupt(`${where} is not an array of numbers or an object with a "vector" array`);
    const store = (this.store ??= this.firstRow(vector.length, where));
    if (vector.length !== store.dim) throw this.corrupt(`${where} has ${vector.length} numbers; earlier ${this.rows} have ${store.dim}`);
    this.checkIds(id !== undefined, where);
    const offset = store.next();
    const block = store.block;
    for (let j = 0; j < vector.length; j++) {
      const v: unknown = vector[j];
      if (typeof v !== 'number') throw this.corrupt(`${where}: value ${j} is ${JSON.stringify(v)}, not a number`);
      block[offset + j] = v;
      // JSON has no Infinity, so an infinite float32 is a number past its range (1e39, or 1e400 parsed as Infinity)
      if (block[offset + j] === Infinity || block[offset + j] === -Infinity) {
        throw new ZGQError('INVALID_ARGUMENT', `${this.name}: ${where}: value ${j} is ${v}, outside the float32 range`);
      }
    }
    store.commit(id);
  }

  /** The rows read, in arrays of their exact size. */
  finish(): VectorRows {
    return this.store?.finish() ?? noRows();
  }

  private firstRow(dim: number, where: string): RowBlocks {
    if (dim === 0) throw this.corrupt(`${where} is an empty vector`);
    return new RowBlocks(dim);
  }

  private checkIds(has: boolean, where: string): void {
    if (has) this.withId ??= where;
    else this.withoutId ??= where;
    if (this.withId !== null && this.withoutId !== null) {
      const [a, b] = has ? [where, this.withoutId] : [where, this.withId];
      throw this.corrupt(has ? `${a} has an "id"; ${b} has none: give every row an "id" or none` : `${a} has no "id"; ${b} has one: give every row an "id" or none`);
    }
  }

  private corrupt(what: string): ZGQError {
    return new ZGQError('CORRUPT_FILE', `${this.name}: ${what}`);
  }
}

function ioError(path: string, err: unknown): ZGQError {
  return new ZGQError('IO', `cannot read '${path}': ${(err as Error).message}`, { cause: err });
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0xfeff;
}

/**
 * True when the file is one JSON array of rows: '[' and then '[', '{' or ']' as the first non-space
 * characters (a JSON line starts '[' and a number).
 */
async function isJsonArray(path: string): Promise<boolean> {
  let file;
  try {
    file = await open(path);
  } catch (err) {
    throw ioError(path, err);
  }
  try {
    const buffer = new Uint8Array(4096);
    let seen = 0; // non-space characters seen so far, at most 2 matter
    for (;;) {
      const { bytesRead } = await file.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) return false;
      for (let i = 0; i < bytesRead; i++) {
        const c = buffer[i];
        // a UTF-8 byte-order mark (ef bb bf) may open the file
        if (isSpace(c) || (seen === 0 && (c === 0xef || c === 0xbb || c === 0xbf))) continue;
        if (seen === 0) {
          if (c !== 0x5b) return false;
          seen = 1;
        } else return c === 0x5b || c === 0x7b || c === 0x5d;
      }
    }
  } finally {
    await file.close();
  }
}

/** Read a JSON lines file or a JSON array of rows (see the module comment). */
export async function readJsonVectors(path: string, options: JsonReadOptions = {}): Promise<VectorRows> {
  const array = await isJsonArray(path);
  const sink = new RowSink(path, array ? 'rows' : 'lines');
  try {
    if (array) await readArray(path, sink, options.chunkBytes ?? CHUNK_BYTES);
    else await readLines(path, sink);
  } catch (err) {
    if (err instanceof ZGQError) throw err;
    throw ioError(path, err);
  }
  return sink.finish();
}

async function readLines(path: string, sink: RowSink): Promise<void> {
  let lineNo = 0;
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (let line of lines) {
    lineNo++;
    if (lineNo === 1 && line.charCodeAt(0) === 0xfeff) line = line.slice(1); // a byte-order mark
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new ZGQError('CORRUPT_FILE', `${path}: line ${lineNo} is not valid JSON`);
    }
    sink.add(value, `line ${lineNo}`);
  }
}

/** Where the array scanner is between rows. */
const enum At {
  /** before the opening '[' */
  Start,
  /** after '[' or ',': a row comes next (or ']' right after '[') */
  Row,
  /** after a row: ',' or ']' comes next */
  Separator,
  /** after the closing ']': only whitespace may follow */
  End,
}

async function readArray(path: string, sink: RowSink, chunkBytes: number): Promise<void> {
  const stream = createReadStream(path, { encoding: 'utf8', highWaterMark: chunkBytes });
  let at = At.Start;
  let line = 1;
  let rows = 0;
  // state inside a row: nesting depth (0: not in a row), string flag, and a backslash that ended
  // the previous chunk (its escaped character opens this one)
  let depth = 0;
  let inString = false;
  let escaped = false;
  let rowLine = 0;
  let pieces: string[] = []; // the current row's text from earlier chunks
  const corrupt = (what: string) => new ZGQError('CORRUPT_FILE', `${path}: ${what}`);
  const show = (c: number) => `'${String.fromCharCode(c)}'`;
  // inside a row only these characters change the state; a regex skips the numbers and commas
  // between them (2.3x faster than a test per character on 128-d float rows)
  const special = /[\n"\\[\]{}]/g;
  for await (const chunk of stream as AsyncIterable<string>) {
    let start = depth > 0 ? 0 : -1; // where the current row starts in this chunk
    let i = 0;
    if (escaped) {
      escaped = false;
      i = 1;
    }
    for (; i < chunk.length; i++) {
      if (depth > 0) {
        special.lastIndex = i;
        if (special.exec(chunk) === null) break; // the row goes on in the next chunk
        i = special.lastIndex - 1;
        const c = chunk.charCodeAt(i);
        if (c === 0x0a) line++;
        else if (inString) {
          if (c === 0x5c) {
            if (i + 1 === chunk.length) escaped = true;
            i++; // the escaped character cannot end the string
          } else if (c === 0x22) inString = false;
        } else if (c === 0x22) inString = true;
        else if (c === 0x5b || c === 0x7b) depth++;
        else if ((c === 0x5d || c === 0x7d) && --depth === 0) {
          pieces.push(chunk.slice(start, i + 1));
          const text = pieces.join('');
          pieces = [];
          const where = `row ${rows} (line ${rowLine})`;
          let value: unknown;
          try {
            value = JSON.parse(text);
          } catch {
            throw corrupt(`${where} is not valid JSON`);
          }
          sink.add(value, where);
          at = At.Separator;
        }
        continue;
      }
      const c = chunk.charCodeAt(i);
      if (c === 0x0a) line++;
      if (isSpace(c)) continue;
      if (at === At.Start) {
        if (c !== 0x5b) throw corrupt(`line ${line}: expected '[', found ${show(c)}`);
        at = At.Row;
      } else if (at === At.Row) {
        if (c === 0x5d && rows === 0) at = At.End;
        else if (c === 0x5b || c === 0x7b) {
          rows++;
          rowLine = line;
          depth = 1;
          start = i;
        } else throw corrupt(`row ${rows + 1} (line ${line}) is not an array or an object`);
      } else if (at === At.Separator) {
        if (c === 0x2c) at = At.Row;
        else if (c === 0x5d) at = At.End;
        else throw corrupt(`line ${line}: expected ',' or ']' after row ${rows}, found ${show(c)}`);
      } else {
        throw corrupt(`line ${line}: unexpected ${show(c)} after the closing ']'`);
      }
    }
    if (depth > 0) pieces.push(chunk.slice(start));
  }
  if (depth > 0) throw corrupt(`ends inside row ${rows} (line ${rowLine})`);
  if (at !== At.End) throw corrupt(`ends before the closing ']' (after row ${rows})`);
}
