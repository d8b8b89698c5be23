/**
 * Which columns of a table file (Parquet, Arrow) hold the vectors and the ids, one rule for both:
 *
 * - `column` given: that column, a list of numbers (or a number column of a wide table, below).
 * - else the list-of-numbers column named "vector", "embedding", "embeddings", "values" or "emb"
 *   (any case), else the only list-of-numbers column;
 * - else, with no list column, a wide table: every number column but the ids is one dimension
 *   (a pandas DataFrame of floats written as is).
 * - Ids: a column named "id" (any case), when it holds integers (strings are refused by value,
 *   with what to do instead; see checkedId in rows.ts).
 */
import { ZGQError } from '../errors.js';

/** A top-level column as a reader describes it. */
export interface TableColumn {
  name: string;
  /** list: a list (or fixed-size list) of numbers; number: one number per row; other: anything else. */
  kind: 'list' | 'number' | 'string' | 'other';
  /** Its type as the file names it, for messages ("list<float>", "int64", ...). */
  type: string;
}

/** The columns to read. */
export interface ColumnChoice {
  /** One list column, or the number columns of a wide table in file order. */
  vectors: TableColumn[];
  /** True when `vectors` is one list column. */
  list: boolean;
  id: TableColumn | null;
}

const VECTOR_NAMES = ['vector', 'embedding', 'embeddings', 'values', 'emb'];

export function chooseColumns(columns: TableColumn[], path: string, column?: string): ColumnChoice {
  const listed = () => columns.map((c) => `${c.name} (${c.type})`).join(', ') || 'none';
  const idColumn = columns.find((c) => c.name.toLowerCase() === 'id' && c.name !== column) ?? null;
  if (idColumn && idColumn.kind !== 'number' && idColumn.kind !== 'string') {
    throw new ZGQError('CORRUPT_FILE', `${path}: the id column '${idColumn.name}' is ${idColumn.type}; ids are integers`);
  }
  if (column !== undefined) {
    const chosen = columns.find((c) => c.name === column);
    if (!chosen) throw new ZGQError('INVALID_ARGUMENT', `${path}: no column '${column}'; the columns are ${listed()}`);
    if (chosen.kind !== 'list') {
      throw new ZGQError('INVALID_ARGUMENT', `${path}: column '${column}' is ${chosen.type}, not a list of numbers; the columns are ${listed()}`);
    }
    return { vectors: [chosen], list: true, id: idColumn };
  }
  const lists = columns.filter((c) => c.kind === 'list');
  const named = lists.find((c) => VECTOR_NAMES.includes(c.name.toLowerCase()));
  if (named) return { vectors: [named], list: true, id: idColumn };
  if (lists.length === 1) return { vectors: lists, list: true, id: idColumn };
  if (lists.length > 1) {
    throw new ZGQError(
      'INVALID_ARGUMENT',
      `${path}: ${lists.length} columns hold lists of numbers (${lists.map((c) => c.name).join(', ')}); name the vector column with --column`,
    );
  }
  const wide = columns.filter((c) => c.kind === 'number' && c !== idColumn);
  if (wide.length === 0) throw new ZGQError('CORRUPT_FILE', `${path}: no column holds vectors (a list of numbers, or number columns); the columns are ${listed()}`);
  const odd = columns.find((c) => c.kind !== 'number' && c !== idColumn);
  if (odd) {
    throw new ZGQError('CORRUPT_FILE', `${path}: no list column, and column '${odd.name}' (${odd.type}) is not a number, so the rows are not vectors of number columns either`);
  }
  return { vectors: wide, list: false, id: idColumn };
}
