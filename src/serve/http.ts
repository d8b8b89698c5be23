/**
 * `zgq serve` over HTTP: one index in this process behind a JSON API on one port: search, batch
 * search, add, remove, stats and health. Requests are validated against the JSON schemas below
 * (unknown fields refused), every error is answered with a typed body, `{ error: { code, message } }`,
 * and a write is acknowledged only once the index file holds it: writes apply in arrival order, and
 * the writes that arrive while a save runs share the next one.
 */
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { NO_ID, ZGQError, ZGQIndex, type SearchOptions, type ZGQErrorCode } from '../index.js';

/** Error codes of the HTTP API: ZGQError's, and the server's own. */
export type ServeErrorCode = ZGQErrorCode | 'PAYLOAD_TOO_LARGE' | 'INTERNAL';

export interface ErrorBody {
  error: { code: ServeErrorCode; message: string };
}

export interface HttpServeOptions {
  /** The index file writes are saved to before they are acknowledged; null serves from memory only. */
  path: string | null;
  /** Refuse writes (READ_ONLY), as an index opened with its rows outside memory does anyway. */
  readOnly?: boolean;
  /** Largest request body in bytes. Default 64 MiB (about 100K 128-d vectors as JSON). */
  bodyLimit?: number;
  /** Most queries in one batch request. Default 10,000. */
  maxBatch?: number;
}

/** Neighbours per query at most (a larger k is refused before it reaches the index). */
export const MAX_K = 10_000;
/** Results (queries × k) one request may ask for: about 40 MB of JSON. */
export const MAX_RESULTS = 1_000_000;

const HTTP_STATUS: Partial<Record<ServeErrorCode, number>> = {
  INVALID_ARGUMENT: 400, DIMENSION_MISMATCH: 400, NOT_FINITE: 400, EMPTY_INPUT: 400, DUPLICATE_ID: 400,
  NOT_FOUND: 404, READ_ONLY: 409, CONFLICT: 409, LOCKED: 409, PAYLOAD_TOO_LARGE: 413,
  NOT_BUILT: 503, OUT_OF_MEMORY: 507, ABORTED: 503,
};

// ---- request and response schemas (JSON Schema; the README's "HTTP API" lists them) -----------

const vector = { type: 'array', items: { type: 'number' }, minItems: 1 } as const;
const id = { type: 'integer', minimum: 0, maximum: NO_ID - 1 } as const;
const searchOptions = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ef: { type: 'integer', minimum: 1 },
    nProbe: { type: 'integer', minimum: 1 },
    rerank: { type: 'integer', minimum: 1 },
    scan: { type: 'integer', minimum: 0 },
    scanRatio: { type: 'number', minimum: 1 },
    traversal: { enum: ['pq', 'exact', 'scan', 'fastscan'] },
  },
} as const;
const k = { type: 'integer', minimum: 1, maximum: MAX_K, default: 10 } as const;
/** Ids a search may return (SearchOptions.filter), at most as many as there are ids. */
const filter = { type: 'array', items: id } as const;
const hits = {
  type: 'object',
  required: ['ids', 'distances'],
  properties: { ids: { type: 'array', items: { type: 'integer' } }, distances: { type: 'array', items: { type: 'number' } } },
} as const;
const errorBody = {
  type: 'object',
  required: ['error'],
  properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } },
} as const;
const errors = { '4xx': errorBody, '5xx': errorBody } as const;

export const schemas = {
  search: {
    body: { type: 'object', required: ['vector'], additionalProperties: false, properties: { vector, k, search: searchOptions, filter } },
    response: { 200: hits, ...errors },
  },
  searchBatch: (maxBatch: number) => ({
    body: {
      type: 'object', required: ['vectors'], additionalProperties: false,
      properties: { vectors: { type: 'array', items: vector, minItems: 1, maxItems: maxBatch }, k, search: searchOptions, filter },
    },
    response: { 200: { type: 'object', required: ['results'], properties: { results: { type: 'array', items: hits } } }, ...errors },
  }),
  add: {
    body: {
      type: 'object', required: ['ids', 'vectors'], additionalProperties: false,
      properties: { ids: { type: 'array', items: id, minItems: 1 }, vectors: { type: 'array', items: vector, minItems: 1 } },
    },
    response: {
      200: { type: 'object', required: ['added', 'size'], properties: { added: { type: 'integer' }, size: { type: 'integer' } } },
      ...errors,
    },
  },
  remove: {
    body: { type: 'object', required: ['ids'], additionalProperties: false, properties: { ids: { type: 'array', items: id, minItems: 1 } } },
    response: { 200: { type: 'object', required: ['removed', 'size'], properties: { removed: { type: 'integer' }, size: { type: 'integer' } } }, ...errors },
  },
} as const;

interface SearchBody {
  vector: number[];
  k: number;
  search?: SearchOptions;
  filter?: number[];
}
interface BatchBody {
  vectors: number[][];
  k: number;
  search?: SearchOptions;
  filter?: number[];
}

/** The found part of a result row (a row ends early with NO_ID when fewer than k match). */
function found(ids: Uint32Array, distances: Float32Array, from: number, k: number): { ids: number[]; distances: number[] } {
  let n = 0;
  while (n < k && ids[from + n] !== NO_ID) n++;
  return { ids: Array.from(ids.subarray(from, from + n)), distances: Array.from(distances.subarray(from, from + n)) };
}

/**
 * One save for the writes that arrive before it starts: request() resolves once a save that began
 * after the call has finished (ZGQIndex.save writes every change called before it).
 */
class GroupSave {
  private last: Promise<void> = Promise.resolve();
  private next: Promise<void> | null = null;

  constructor(private readonly save: () => Promise<void>) {}

  request(): Promise<void> {
    if (this.next) return this.next;
    const next = this.last.catch(() => undefined).then(() => {
      this.next = null;
      return this.save();
    });
    this.next = next;
    this.last = next;
    return next;
  }
}

/**
 * A Fastify server over `index` (not listening: call `listen`). The caller owns the index: closing
 * the server leaves it open.
 */
export function httpServer(index: ZGQIndex, options: HttpServeOptions): FastifyInstance {
  const app = Fastify({ bodyLimit: options.bodyLimit ?? 64 * 1024 * 1024, logger: false, ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true } } });
  // once another process has replaced the file, this server's index no longer matches it: its
  // saves would fail for good, so writes are refused before they change the served index
  let diverged: ZGQError | null = null;
  const saver = options.path
    ? new GroupSave(async () => {
        try {
          await index.save(options.path!);
        } catch (err) {
          if (err instanceof ZGQError && err.code === 'CONFLICT') {
            diverged ??= new ZGQError('CONFLICT', `${err.message}; this server refuses writes from now on (restart it to serve the file as it is now)`);
          }
          throw err;
        }
      })
    : null;
  const writable = (): void => {
    if (options.readOnly) throw new ZGQError('READ_ONLY', 'this server was started read-only: it refuses add and remove');
    if (diverged) throw diverged;
  };
  const checkResults = (nq: number, k: number): void => {
    if (nq * k > MAX_RESULTS) throw new ZGQError('INVALID_ARGUMENT', `${nq} queries × k ${k} = ${nq * k} results: more than ${MAX_RESULTS} in one request`);
  };

  app.setErrorHandler((err: FastifyError | ZGQError | Error, _request, reply) => {
    let code: ServeErrorCode = 'INTERNAL';
    let message = err.message;
    if (err instanceof ZGQError) code = err.code;
    else if ('validation' in err && err.validation) {
      code = 'INVALID_ARGUMENT';
      message = `request ${message}`;
    } else if ('code' in err && err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      code = 'PAYLOAD_TOO_LARGE';
      message = `request body over the server's limit of ${app.initialConfig.bodyLimit} bytes`;
    } else if ('statusCode' in err && typeof err.statusCode === 'number' && err.statusCode < 500) {
      // malformed JSON, a wrong content type: the request's fault
      code = 'INVALID_ARGUMENT';
    }
    const body: ErrorBody = { error: { code, message } };
    void reply.status(HTTP_STATUS[code] ?? 500).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    const body: ErrorBody = { error: { code: 'NOT_FOUND', message: `no route ${request.method} ${request.url}` } };
    void reply.status(404).send(body);
  });

  app.get('/health', async () => ({
    status: 'ok', size: index.size, dim: index.dim, metric: index.options.metric, readOnly: !!options.readOnly,
    writable: !options.readOnly && !diverged, ...(diverged ? { reason: diverged.message } : {}),
  }));
  app.get('/stats', async () => index.stats());

  app.post<{ Body: SearchBody }>('/search', { schema: schemas.search }, async (request) => {
    const { vector: v, k: kk, search, filter: allow } = request.body;
    const r = index.search(v, kk, { ...search, filter: allow });
    return found(r.ids, r.distances, 0, kk);
  });
  app.post<{ Body: BatchBody }>('/search/batch', { schema: schemas.searchBatch(options.maxBatch ?? 10_000) }, async (request) => {
    const { vectors, k: kk, search, filter: allow } = request.body;
    checkResults(vectors.length, kk);
    const r = await index.searchBatch(vectors, kk, { ...search, filter: allow });
    const results = [];
    for (let q = 0; q < r.nq; q++) results.push(found(r.ids, r.distances, q * kk, kk));
    return { results };
  });
  app.post<{ Body: { ids: number[]; vectors: number[][] } }>('/add', { schema: schemas.add }, async (request) => {
    writable();
    const { ids, vectors } = request.body;
    if (ids.length !== vectors.length) throw new ZGQError('INVALID_ARGUMENT', `add: ${ids.length} ids for ${vectors.length} vectors`);
    await index.add(vectors, ids);
    const size = index.size;
    await saver?.request();
    return { added: ids.length, size };
  });
  app.post<{ Body: { ids: number[] } }>('/remove', { schema: schemas.remove }, async (request) => {
    writable();
    const removed = index.remove(request.body.ids);
    const size = index.size;
    await saver?.request();
    return { removed, size };
  });
  return app;
}
