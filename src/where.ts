/**
 * Filters on documents' metadata (ZGQCollection's `where`): the filter language, its validation
 * into a plan, and the per-field indexes the plan is evaluated on, into a bitmap over the
 * collection's labels that the index's filtered search then runs through.
 *
 * A `where` is an object whose keys are field paths (dotted for nested objects: 'author.name')
 * or the combinators $and, $or, $not:
 *
 * ```ts
 * { genre: 'jazz' }                                    // equality
 * { year: { $gte: 1990, $lt: 2000 } }                  // a range (several operators: all hold)
 * { lang: { $in: ['en', 'de'] }, draft: { $ne: true } } // several fields: all hold
 * { $or: [{ genre: 'jazz' }, { $not: { year: { $lt: 1960 } } }] }
 * ```
 *
 * Operators: $eq, $ne, $in, $nin on strings, numbers, booleans and null; $gt, $gte, $lt, $lte on
 * numbers or strings (compared as JS compares them; a number bound never matches a string value);
 * $exists. A field whose value is an array matches when any element does ($eq, $in, ranges), and
 * $ne / $nin hold when no element is the value; a document without the field fails $eq, $in and
 * the ranges and passes $ne and $nin.
 *
 * Each field a filter names gets an index the first time: its values' postings (label lists) for
 * equality, its numbers and strings sorted for ranges. New documents are appended to the indexes
 * already built; a removed document stays in them and is dropped by the live bitmap; changing the
 * metadata of a document in place discards them (rebuilt at the next filter that names a field).
 */
import { ZGQError } from './errors.js';

/** A JSON value stored as metadata. */
export type MetadataValue = string | number | boolean | null | MetadataValue[] | { [key: string]: MetadataValue };
/** A document's metadata: a JSON object. */
export type Metadata = { [field: string]: MetadataValue };

/** A value an equality operator compares with. */
export type WhereScalar = string | number | boolean | null;

/** The operators on one field; several in one object must all hold. */
export interface WhereOperators {
  $eq?: WhereScalar;
  $ne?: WhereScalar;
  $in?: WhereScalar[];
  $nin?: WhereScalar[];
  $gt?: number | string;
  $gte?: number | string;
  $lt?: number | string;
  $lte?: number | string;
  $exists?: boolean;
}

/** A filter on metadata (see the module comment). */
export type Where = {
  $and?: Where[];
  $or?: Where[];
  $not?: Where;
  [field: string]: WhereScalar | WhereOperators | Where[] | Where | undefined;
};

/** A validated filter. */
export type WherePlan =
  | { op: 'all' }
  | { op: 'and' | 'or'; of: WherePlan[] }
  | { op: 'not'; of: WherePlan }
  | { op: 'eq'; field: string; values: WhereScalar[] }
  | { op: 'range'; field: string; lo?: number | string; loOpen: boolean; hi?: number | string; hiOpen: boolean }
  | { op: 'exists'; field: string };

/** Most nodes a where may have (fields, operators, $in values): bounds the work one filter asks for. */
export const MAX_WHERE_TERMS = 10_000;
const MAX_WHERE_DEPTH = 32;

const FIELD_OPERATORS = new Set(['$eq', '$ne', '$in', '$nin', '$gt', '$gte', '$lt', '$lte', '$exists']);

function invalid(path: string, message: string): ZGQError {
  return new ZGQError('INVALID_ARGUMENT', `where${path}: ${message}`);
}

function shown(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isScalar(x: unknown): x is WhereScalar {
  return x === null || typeof x === 'string' || typeof x === 'boolean' || (typeof x === 'number' && Number.isFinite(x));
}

/**
 * Validate a where into a plan.
 * @throws ZGQError INVALID_ARGUMENT naming the part of the filter that is wrong.
 */
export function planWhere(where: Where): WherePlan {
  let terms = 0;
  const count = (path: string, n = 1) => {
    terms += n;
    if (terms > MAX_WHERE_TERMS) throw invalid(path, `the filter has more than ${MAX_WHERE_TERMS} terms`);
  };
  const plan = (w: unknown, path: string, depth: number): WherePlan => {
    if (!isObject(w)) throw invalid(path, `must be an object such as { genre: 'jazz' }; got ${shown(w)}`);
    if (depth > MAX_WHERE_DEPTH) throw invalid(path, `nests deeper than ${MAX_WHERE_DEPTH} levels`);
    const parts: WherePlan[] = [];
    for (const [key, value] of Object.entries(w)) {
      const at = `${path}.${key}`;
      if (key === '$and' || key === '$or') {
        if (!Array.isArray(value) || value.length === 0) throw invalid(at, `must be a non-empty array of filters; got ${shown(value)}`);
        parts.push({ op: key === '$and' ? 'and' : 'or', of: value.map((v, i) => plan(v, `${at}[${i}]`, depth + 1)) });
      } else if (key === '$not') {
        parts.push({ op: 'not', of: plan(value, at, depth + 1) });
      } else if (key.startsWith('$')) {
        throw invalid(at, `unknown combinator '${key}' (use $and, $or, $not, or a field name)`);
      } else {
        checkField(key, path);
        parts.push(...fieldPlans(key, value, at, count));
      }
      count(at);
    }
    if (parts.length === 0) return { op: 'all' };
    return parts.length === 1 ? parts[0] : { op: 'and', of: parts };
  };
  return plan(where, '', 0);
}

function checkField(field: string, path: string): void {
  if (field.length === 0 || field.split('.').some((part) => part.length === 0)) {
    throw invalid(path, `field name '${field}' is empty or has an empty part between dots`);
  }
}

function fieldPlans(field: string, value: unknown, at: string, count: (path: string, n?: number) => void): WherePlan[] {
  if (isScalar(value)) return [{ op: 'eq', field, values: [value] }];
  if (!isObject(value)) throw invalid(at, `must be a string, finite number, boolean, null or an object of operators; got ${shown(value)}`);
  const out: WherePlan[] = [];
  const range: { lo?: number | string; loOpen: boolean; hi?: number | string; hiOpen: boolean } = { loOpen: false, hiOpen: false };
  let ranged = false;
  for (const [op, arg] of Object.entries(value)) {
    const where = `${at}.${op}`;
    if (!FIELD_OPERATORS.has(op)) throw invalid(where, `unknown operator '${op}' (use ${[...FIELD_OPERATORS].join(', ')})`);
    if (op === '$eq' || op === '$ne') {
      if (!isScalar(arg)) throw invalid(where, `must be a string, finite number, boolean or null; got ${shown(arg)}`);
      const eq: WherePlan = { op: 'eq', field, values: [arg] };
      out.push(op === '$eq' ? eq : { op: 'not', of: eq });
    } else if (op === '$in' || op === '$nin') {
      if (!Array.isArray(arg)) throw invalid(where, `must be an array of values; got ${shown(arg)}`);
      arg.forEach((v, i) => {
        if (!isScalar(v)) throw invalid(`${where}[${i}]`, `must be a string, finite number, boolean or null; got ${shown(v)}`);
      });
      count(where, arg.length);
      const eq: WherePlan = { op: 'eq', field, values: arg as WhereScalar[] };
      out.push(op === '$in' ? eq : { op: 'not', of: eq });
    } else if (op === '$exists') {
      if (typeof arg !== 'boolean') throw invalid(where, `must be true or false; got ${shown(arg)}`);
      const exists: WherePlan = { op: 'exists', field };
      out.push(arg ? exists : { op: 'not', of: exists });
    } else {
      if (!(typeof arg === 'string' || (typeof arg === 'number' && Number.isFinite(arg)))) {
        throw invalid(where, `must be a finite number or a string; got ${shown(arg)}`);
      }
      const bound = arg as number | string;
      const other = op === '$gt' || op === '$gte' ? range.hi : range.lo;
      if (other !== undefined && typeof other !== typeof bound) throw invalid(where, `compares with a ${typeof bound} while the other bound is a ${typeof other}`);
      ranged = true;
      if (op === '$gt' || op === '$gte') {
        if (range.lo !== undefined) throw invalid(where, 'gives a second lower bound');
        range.lo = bound;
        range.loOpen = op === '$gt';
      } else {
        if (range.hi !== undefined) throw invalid(where, 'gives a second upper bound');
        range.hi = bound;
        range.hiOpen = op === '$lt';
      }
    }
  }
  if (ranged) out.push({ op: 'range', field, ...range });
  if (out.length === 0) throw invalid(at, 'names no operator');
  return out;
}

/** The value at a dotted field path of a metadata object, or undefined. */
export function fieldValue(metadata: Metadata | undefined, field: string): MetadataValue | undefined {
  if (metadata === undefined) return undefined;
  if (Object.hasOwn(metadata, field)) return metadata[field];
  let at: MetadataValue | undefined = metadata;
  for (const part of field.split('.')) {
    if (!isObject(at) || !Object.hasOwn(at, part)) return undefined;
    at = (at as Record<string, MetadataValue>)[part];
  }
  return at;
}

/** Posting key of a scalar: its type and value, so that 1 and '1' differ. */
function keyOf(v: WhereScalar): string {
  return v === null ? 'z' : typeof v === 'string' ? `s${v}` : typeof v === 'number' ? `n${v === 0 ? 0 : v}` : v ? 'bt' : 'bf';
}

/** Sorted values of one type with their labels, plus a tail of those appended since the sort. */
class SortedColumn<T extends number | string> {
  values: T[] = [];
  labels: number[] = [];
  tailValues: T[] = [];
  tailLabels: number[] = [];

  push(value: T, label: number): void {
    this.tailValues.push(value);
    this.tailLabels.push(label);
  }

  /** Fold the tail in once it is a sixteenth of the column (a range query scans the tail). */
  private settle(): void {
    if (this.tailValues.length <= 64 || this.tailValues.length * 16 < this.values.length) return;
    const values = this.values.concat(this.tailValues);
    const labels = this.labels.concat(this.tailLabels);
    const order = Array.from(values, (_, i) => i).sort((a, b) => (values[a] < values[b] ? -1 : values[a] > values[b] ? 1 : 0));
    this.values = order.map((i) => values[i]);
    this.labels = order.map((i) => labels[i]);
    this.tailValues = [];
    this.tailLabels = [];
  }

  /** Set the bits of the labels whose value lies in the range. */
  select(range: { lo?: T; loOpen: boolean; hi?: T; hiOpen: boolean }, bits: Uint32Array): void {
    this.settle();
    const { lo, hi, loOpen, hiOpen } = range;
    const inside = (v: T) => (lo === undefined || (loOpen ? v > lo : v >= lo)) && (hi === undefined || (hiOpen ? v < hi : v <= hi));
    const values = this.values;
    let from = 0;
    if (lo !== undefined) {
      let a = 0;
      let b = values.length;
      while (a < b) {
        const m = (a + b) >>> 1;
        if (loOpen ? values[m] <= lo : values[m] < lo) a = m + 1;
        else b = m;
      }
      from = a;
    }
    for (let i = from; i < values.length; i++) {
      const v = values[i];
      if (hi !== undefined && (hiOpen ? v >= hi : v > hi)) break;
      setLabel(bits, this.labels[i]);
    }
    for (let i = 0; i < this.tailValues.length; i++) if (inside(this.tailValues[i])) setLabel(bits, this.tailLabels[i]);
  }
}

function setLabel(bits: Uint32Array, label: number): void {
  bits[label >>> 5] |= 1 << (label & 31);
}

/** One field's index over the collection's documents. */
class FieldIndex {
  readonly postings = new Map<string, number[]>();
  readonly present: number[] = [];
  readonly numbers = new SortedColumn<number>();
  readonly strings = new SortedColumn<string>();

  add(value: MetadataValue | undefined, label: number): void {
    if (value === undefined) return;
    this.present.push(label);
    if (Array.isArray(value)) {
      const seen = new Set<string>();
      for (const element of value) if (isScalar(element) && !seen.has(keyOf(element))) {
        seen.add(keyOf(element));
        this.addScalar(element, label);
      }
    } else if (isScalar(value)) {
      this.addScalar(value, label);
    }
  }

  private addScalar(v: WhereScalar, label: number): void {
    const key = keyOf(v);
    const list = this.postings.get(key);
    if (list) list.push(label);
    else this.postings.set(key, [label]);
    if (typeof v === 'number') this.numbers.push(v, label);
    else if (typeof v === 'string') this.strings.push(v, label);
  }
}

/** What a plan is evaluated against: the documents' metadata by label and which labels are live. */
export interface WhereSource {
  /** One past the highest label in use. */
  readonly labelLimit: number;
  /** Bitmap of live labels (words of 32). */
  liveBits(): Uint32Array;
  /** Each live label with its metadata. */
  forEachLive(fn: (label: number, metadata: Metadata | undefined) => void): void;
}

/** The field indexes of a collection, evaluated against its documents. */
export class WhereIndex {
  private readonly fields = new Map<string, FieldIndex>();

  constructor(private readonly source: WhereSource) {}

  /** A document joined the collection under a new label. */
  added(label: number, metadata: Metadata | undefined): void {
    for (const [field, index] of this.fields) index.add(fieldValue(metadata, field), label);
  }

  /** A document's metadata changed under its label: the indexes are rebuilt when next needed. */
  changed(): void {
    this.fields.clear();
  }

  /** The live labels the plan admits, as a bitmap of words of 32 (a new array); and how many. */
  select(plan: WherePlan): { bits: Uint32Array; count: number } {
    const live = this.source.liveBits();
    const bits = this.eval(plan, live);
    let count = 0;
    for (let w = 0; w < bits.length; w++) {
      let v = (bits[w] &= live[w]);
      v -= (v >>> 1) & 0x55555555;
      v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
      count += Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
    }
    return { bits, count };
  }

  private eval(plan: WherePlan, live: Uint32Array): Uint32Array {
    const words = live.length;
    switch (plan.op) {
      case 'all':
        return live.slice();
      case 'and': {
        const out = this.eval(plan.of[0], live);
        for (let i = 1; i < plan.of.length; i++) {
          const next = this.eval(plan.of[i], live);
          for (let w = 0; w < words; w++) out[w] &= next[w];
        }
        return out;
      }
      case 'or': {
        const out = this.eval(plan.of[0], live);
        for (let i = 1; i < plan.of.length; i++) {
          const next = this.eval(plan.of[i], live);
          for (let w = 0; w < words; w++) out[w] |= next[w];
        }
        return out;
      }
      case 'not': {
        const inner = this.eval(plan.of, live);
        for (let w = 0; w < words; w++) inner[w] = live[w] & ~inner[w];
        return inner;
      }
      case 'eq': {
        const out = new Uint32Array(words);
        const index = this.field(plan.field);
        for (const v of plan.values) for (const label of index.postings.get(keyOf(v)) ?? []) setLabel(out, label);
        return out;
      }
      case 'range': {
        const out = new Uint32Array(words);
        const index = this.field(plan.field);
        const bound = plan.lo ?? plan.hi;
        if (typeof bound === 'number') index.numbers.select(plan as { lo?: number; loOpen: boolean; hi?: number; hiOpen: boolean }, out);
        else index.strings.select(plan as { lo?: string; loOpen: boolean; hi?: string; hiOpen: boolean }, out);
        return out;
      }
      case 'exists': {
        const out = new Uint32Array(words);
        for (const label of this.field(plan.field).present) setLabel(out, label);
        return out;
      }
    }
  }

  private field(name: string): FieldIndex {
    let index = this.fields.get(name);
    if (!index) {
      index = new FieldIndex();
      const built = index;
      this.source.forEachLive((label, metadata) => built.add(fieldValue(metadata, name), label));
      this.fields.set(name, index);
    }
    return index;
  }
}

/** Whether the document's metadata satisfies the plan: the reference the indexes are tested against. */
export function matches(plan: WherePlan, metadata: Metadata | undefined): boolean {
  switch (plan.op) {
    case 'all':
      return true;
    case 'and':
      return plan.of.every((p) => matches(p, metadata));
    case 'or':
      return plan.of.some((p) => matches(p, metadata));
    case 'not':
      return !matches(plan.of, metadata);
    case 'exists':
      return fieldValue(metadata, plan.field) !== undefined;
    case 'eq': {
      const v = fieldValue(metadata, plan.field);
      const keys = new Set(plan.values.map(keyOf));
      return Array.isArray(v) ? v.some((e) => isScalar(e) && keys.has(keyOf(e))) : isScalar(v) && keys.has(keyOf(v));
    }
    case 'range': {
      const v = fieldValue(metadata, plan.field);
      const bound = plan.lo ?? plan.hi;
      const inside = (e: MetadataValue) =>
        typeof e === typeof bound &&
        (plan.lo === undefined || (plan.loOpen ? (e as number) > (plan.lo as number) : (e as number) >= (plan.lo as number))) &&
        (plan.hi === undefined || (plan.hiOpen ? (e as number) < (plan.hi as number) : (e as number) <= (plan.hi as number)));
      return Array.isArray(v) ? v.some(inside) : v !== undefined && inside(v);
    }
  }
}
