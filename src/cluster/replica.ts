/**
 * A replica: one process serving shards of a published cluster index (src/cluster/manifest.ts) over
 * NATS (src/cluster/protocol.ts). It loads each shard's file from the object store, applies the
 * writes of the index's stream after the published version's sequence (src/cluster/writes.ts), and
 * once caught up answers each shard's requests in the shard's queue group, so that each request
 * reaches one live replica.
 */
import { connect, headers, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, type ConsumerMessages } from '@nats-io/jetstream';
import { ZGQError } from '../errors.js';
import { ZGQIndex } from '../index.js';
import type { SearchOptions } from '../options.js';
import { gatherRows } from '../validate.js';
import { ClusterStore, type Manifest, streamOf, writesSubject } from './manifest.js';
import { AFTER_SEQ, BUDGET_MS, ERROR_CODE, ERROR_MESSAGE, REPLICA_FAILED, REQUEST_OPTIONS, checkIndexName, decodeSearch, encodeResults, queueOf, replyBytes, subjectOf } from './protocol.js';
import { decodeWrite, OP } from './writes.js';

export interface ReplicaOptions {
  /** NATS server URL(s), e.g. 'nats://127.0.0.1:4222'. */
  servers: string | string[];
  /** The index's name in the cluster (one subject token), as published. */
  name: string;
  /** The shards to serve. Default: every shard of the index. */
  shards?: number[];
  /** What the replica does that an operator may want to see: loading, catching up, writes it skipped. */
  onEvent?: (message: string) => void;
}

function searchOptionsOf(json: string | undefined): SearchOptions {
  if (!json) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new ZGQError('INVALID_ARGUMENT', `search options header is not JSON: ${json.slice(0, 80)}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ZGQError('INVALID_ARGUMENT', 'search options header must be a JSON object');
  const unknown = Object.keys(parsed).filter((key) => !(REQUEST_OPTIONS as readonly string[]).includes(key));
  if (unknown.length) throw new ZGQError('INVALID_ARGUMENT', `unknown search options ${unknown.join(', ')} (known: ${REQUEST_OPTIONS.join(', ')})`);
  return parsed as SearchOptions;
}

/**
 * A running replica. Its requests run one at a time, in arrival order; one whose budget ran out
 * while it waited is skipped. `close()` stops taking requests, answers those it holds, and
 * disconnects.
 */
export class Replica {
  /** Requests taken and not yet answered. */
  private readonly inFlight = new Set<Promise<void>>();
  private queue: Promise<void> = Promise.resolve();
  private subs: Subscription[] = [];
  /** The last write of the stream applied to every shard held. */
  private appliedSeq: number;
  /** Searches waiting for a write to be applied (their client made it). */
  private readonly waiting = new Set<{ seq: number; wake: () => void }>();
  private writes: ConsumerMessages | null = null;
  private following: Promise<void> = Promise.resolve();

  private constructor(
    private readonly nc: NatsConnection,
    readonly name: string,
    readonly manifest: Manifest,
    /** The indexes of the shards served, by shard number. */
    private readonly held: Map<number, ZGQIndex>,
    private readonly onEvent: (message: string) => void,
  ) {
    this.appliedSeq = manifest.seq;
  }

  /**
   * Load the shards of the published index `options.name` and serve them once the writes made
   * since its publication are applied.
   * @throws ZGQError NOT_FOUND (no such index published), INVALID_ARGUMENT (no such shard), IO, CORRUPT_FILE.
   */
  static async start(options: ReplicaOptions): Promise<Replica> {
    const name = checkIndexName(options.name);
    const onEvent = options.onEvent ?? (() => {});
    let nc: NatsConnection;
    try {
      nc = await connect({ servers: options.servers, name: `zgq replica ${name}`, maxReconnectAttempts: -1 });
    } catch (err) {
      throw new ZGQError('IO', `cannot reach the NATS server at ${String(options.servers)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    try {
      const store = await ClusterStore.open(nc, name, false);
      const { manifest } = await store.manifest();
      const count = manifest.shards.length;
      const wanted = options.shards ?? manifest.shards.map((_, p) => p);
      if (wanted.length === 0) throw new ZGQError('INVALID_ARGUMENT', 'no shards to serve');
      for (const p of wanted) {
        if (!Number.isInteger(p) || p < 0 || p >= count) throw new ZGQError('INVALID_ARGUMENT', `shard ${p}: index '${name}' (version ${manifest.version}) has shards 0-${count - 1}`);
      }
      const held = new Map<number, ZGQIndex>();
      for (const p of new Set(wanted)) {
        const entry = manifest.shards[p];
        const index = ZGQIndex.fromBytes(await store.object(entry.object));
        if (index.dim !== manifest.dim) throw new ZGQError('CORRUPT_FILE', `shard ${p} of '${name}' has ${index.dim} dimensions, its manifest ${manifest.dim}`);
        held.set(p, index);
        onEvent(`loaded shard ${p} of '${name}' (version ${manifest.version}, ${index.size} vectors, ${entry.bytes} bytes)`);
      }
      const replica = new Replica(nc, name, manifest, held, onEvent);
      const last = await store.lastWrite();
      await replica.follow();
      if (last > manifest.seq) {
        await replica.caughtUp(last, Infinity);
        onEvent(`applied writes ${manifest.seq + 1}-${last}`);
      }
      for (const p of held.keys()) {
        const queue = queueOf(name, p);
        replica.subs.push(
          nc.subscribe(subjectOf(name, p, 'info'), { queue, callback: (_err, msg) => replica.take(msg, async () => replica.info(p)) }),
          nc.subscribe(subjectOf(name, p, 'search'), { queue, callback: (_err, msg) => replica.take(msg, (budget) => replica.search(p, msg, budget)) }),
        );
      }
      await nc.flush();
      return replica;
    } catch (err) {
      await nc.close();
      if (err instanceof ZGQError) throw err;
      throw new ZGQError('IO', `replica of '${name}' failed to start: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  /** The shards served. */
  get shards(): number[] {
    return [...this.held.keys()];
  }

  /** Vectors of the shards served that searches can return. */
  get size(): number {
    let size = 0;
    for (const index of this.held.values()) size += index.size;
    return size;
  }

  /** The last write of the stream applied. */
  get applied(): number {
    return this.appliedSeq;
  }

  /** Apply the stream's writes after the manifest's sequence, in order, as they come (an ordered consumer: it resumes where it was after a reconnect). */
  private async follow(): Promise<void> {
    const js = jetstream(this.nc);
    const consumer = await js.consumers.get(streamOf(this.name), {
      deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.manifest.seq + 1, filter_subjects: writesSubject(this.name),
    });
    const writes = (this.writes = await consumer.consume());
    this.following = (async () => {
      for await (const m of writes) {
        await this.apply(m.headers?.get(OP) || '', m.data, m.seq);
        this.appliedSeq = m.seq;
        for (const w of this.waiting) if (w.seq <= m.seq) w.wake();
      }
    })();
  }

  /** One write to every shard held; one that cannot apply is skipped alike by every replica (and said). */
  private async apply(op: string, data: Uint8Array, seq: number): Promise<void> {
    try {
      const write = decodeWrite(op, data, this.manifest.dim);
      for (const [p, index] of this.held) {
        if (write.op === 'remove') {
          index.remove(write.ids);
          continue;
        }
        const mine: number[] = [];
        const elsewhere: number[] = [];
        for (let i = 0; i < write.ids.length; i++) (write.shard[i] === p ? mine : elsewhere).push(i);
        if (mine.length) await index.add(gatherRows(write.vectors, this.manifest.dim, mine), Uint32Array.from(mine, (i) => write.ids[i]));
        if (elsewhere.length) index.remove(Uint32Array.from(elsewhere, (i) => write.ids[i]));
      }
    } catch (err) {
      this.onEvent(`write ${seq} skipped: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Resolves once write `seq` is applied; false when `ms` pass first. */
  private caughtUp(seq: number, ms: number): Promise<boolean> {
    if (this.appliedSeq >= seq) return Promise.resolve(true);
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const entry = {
        seq,
        wake: () => {
          clearTimeout(timer);
          this.waiting.delete(entry);
          resolve(true);
        },
      };
      this.waiting.add(entry);
      if (Number.isFinite(ms)) {
        timer = setTimeout(() => {
          this.waiting.delete(entry);
          resolve(false);
        }, ms);
      }
    });
  }

  private info(shard: number): Uint8Array {
    const index = this.held.get(shard)!;
    const { manifest } = this;
    return new TextEncoder().encode(JSON.stringify({ dim: index.dim, metric: manifest.metric, size: index.size, shard, version: manifest.version, applied: this.appliedSeq }));
  }

  private async search(shard: number, msg: Msg, budget: number): Promise<Uint8Array> {
    const index = this.held.get(shard)!;
    // a header that is absent reads as ''
    const k = Number(msg.headers?.get('k') || 10);
    if (!Number.isInteger(k) || k < 1) throw new ZGQError('INVALID_ARGUMENT', `k must be an integer >= 1; got ${msg.headers?.get('k')}`);
    const options = searchOptionsOf(msg.headers?.get('options'));
    const { filter, queries, nq } = decodeSearch(msg.data, index.dim);
    const max = this.nc.info?.max_payload ?? 1 << 20;
    if (replyBytes(nq, k) > max) {
      throw new ZGQError('INVALID_ARGUMENT', `the reply to ${nq} queries with k = ${k} would be ${replyBytes(nq, k)} bytes, over the NATS server's max_payload of ${max}: send fewer queries per request`);
    }
    // the client's own writes first: a search sees every write its client was told was durable
    const after = Number(msg.headers?.get(AFTER_SEQ) || 0);
    if (!(await this.caughtUp(after, budget))) {
      throw new ZGQError('TIMEOUT', `shard ${shard}'s replica has applied writes up to ${this.appliedSeq}; the request needs ${after}`);
    }
    const r = await index.searchBatch(queries, k, { ...options, filter: filter ?? undefined });
    return encodeResults(r.ids, r.distances);
  }

  /** Queue one request; answer it with `work`'s payload or its error, unless its budget ran out first. */
  private take(msg: Msg, work: (budgetLeft: number) => Promise<Uint8Array>): void {
    const received = performance.now();
    const budget = Number(msg.headers?.get(BUDGET_MS) || Infinity);
    const done = (this.queue = this.queue.then(async () => {
      const left = budget - (performance.now() - received);
      if (left <= 0) return;
      let data: Uint8Array;
      let h: MsgHdrs | undefined;
      try {
        data = await work(left);
      } catch (err) {
        h = headers();
        h.set(ERROR_CODE, err instanceof ZGQError ? err.code : REPLICA_FAILED);
        h.set(ERROR_MESSAGE, (err instanceof Error ? err.message : String(err)).replace(/[\r\n]+/g, ' '));
        data = new Uint8Array(0);
      }
      try {
        msg.respond(data, { headers: h });
      } catch {
        // the connection closed, or the reply would not fit: the client's deadline answers for it
      }
    }));
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
  }

  async close(): Promise<void> {
    for (const sub of this.subs) sub.unsubscribe();
    await Promise.allSettled([...this.inFlight]);
    await this.writes?.close();
    await this.following.catch(() => {});
    await this.nc.drain();
    for (const index of this.held.values()) index.close();
  }
}
