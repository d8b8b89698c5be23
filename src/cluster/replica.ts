/**
 * A replica: one process serving shards of a published cluster index (src/cluster/manifest.ts) over
 * NATS (src/cluster/protocol.ts). It loads each shard's file from the object store, applies the
 * writes of the index's stream after the published version's sequence (src/cluster/writes.ts), and
 * once caught up answers each shard's requests in the shard's queue group, so that each request
 * reaches one live replica. It serves the version it started with; after a publish, replicas of
 * the new version are started beside it (clients move to them once it is gone).
 */
import { headers, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages } from '@nats-io/jetstream';
import { ZGQError } from '../errors.js';
import { ZGQIndex } from '../index.js';
import { kernelMetric, type SearchOptions } from '../options.js';
import { Router } from '../shards.js';
import { gatherRows, normalizedCopy } from '../validate.js';
import { ClusterStore, decodeZoneTables, type Manifest, streamOf, writesSubject } from './manifest.js';
import {
  AFTER_SEQ, BUDGET_MS, ERROR_CODE, ERROR_MESSAGE, REPLICA_FAILED, REQUEST_OPTIONS, checkIndexName, connectTo, maxPayload, decodeSearch, encodeResults, headerInt, queueOf, replyBytes, subjectOf,
} from './protocol.js';
import { decodeWrite, OP, type Write } from './writes.js';

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

/** How long a request without a budget may wait for its client's last write to be applied. */
const UNBUDGETED_WAIT_MS = 30_000;

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
 * A running replica. Its searches run one at a time, in arrival order; one whose budget ran out
 * while it waited is skipped. `close()` stops taking requests, answers those it holds, and
 * disconnects. A replica that can no longer follow the write stream (writes missing from it)
 * stops serving: `failure` resolves with the reason.
 */
export class Replica {
  /** Requests taken and not yet answered. */
  private readonly inFlight = new Set<Promise<void>>();
  private queue: Promise<unknown> = Promise.resolve();
  private subs: Subscription[] = [];
  /** The last write of the stream applied to every shard held. */
  private appliedSeq: number;
  /** Searches waiting for a write to be applied (their client made it). */
  private readonly waiting = new Set<{ seq: number; wake: (applied: boolean) => void }>();
  private writes: ConsumerMessages | null = null;
  private following: Promise<void> = Promise.resolve();
  private failWith: (err: ZGQError) => void = () => {};
  private failed: ZGQError | null = null;
  /** Resolves with the reason if the replica stops serving on its own (it never rejects). */
  readonly failure = new Promise<ZGQError>((resolve) => (this.failWith = resolve));

  private constructor(
    private readonly nc: NatsConnection,
    readonly name: string,
    readonly manifest: Manifest,
    /** The indexes of the shards served, by shard number. */
    private readonly held: Map<number, ZGQIndex>,
    /** Where each added vector goes: the version's zone tables. */
    private readonly router: Router,
    private readonly onEvent: (message: string) => void,
  ) {
    this.appliedSeq = manifest.seq;
  }

  /**
   * Load the shards of the published index `options.name` and serve them once the writes made
   * since its publication are applied.
   * @throws ZGQError NOT_FOUND (no such index published), INVALID_ARGUMENT (no such shard), IO,
   * CORRUPT_FILE (a file damaged or missing, or writes since the version gone from the stream).
   */
  static async start(options: ReplicaOptions): Promise<Replica> {
    const name = checkIndexName(options.name);
    if (options.shards !== undefined && !Array.isArray(options.shards)) throw new ZGQError('INVALID_ARGUMENT', 'shards must be an array of shard numbers');
    const onEvent = options.onEvent ?? (() => {});
    const nc = await connectTo(options.servers, `zgq replica ${name}`);
    const held = new Map<number, ZGQIndex>();
    try {
      const store = await ClusterStore.open(nc, name, false);
      const { manifest } = await store.manifest();
      const count = manifest.shards.length;
      const wanted = options.shards ?? manifest.shards.map((_, p) => p);
      if (wanted.length === 0) throw new ZGQError('INVALID_ARGUMENT', 'no shards to serve');
      for (const p of wanted) {
        if (!Number.isInteger(p) || p < 0 || p >= count) throw new ZGQError('INVALID_ARGUMENT', `shard ${p}: index '${name}' (version ${manifest.version}) has shards 0-${count - 1}`);
      }
      const tables = decodeZoneTables(await store.object(manifest.zones), manifest, name);
      const router = new Router(tables, manifest.dim, kernelMetric(manifest.metric));
      for (const p of new Set(wanted)) {
        const entry = manifest.shards[p];
        const index = ZGQIndex.fromBytes(await store.object(entry.object));
        held.set(p, index);
        if (index.dim !== manifest.dim || index.options.metric !== manifest.metric || index.stats().zones !== entry.zones) {
          throw new ZGQError('CORRUPT_FILE', `shard ${p} of '${name}' (${index.dim} dimensions, ${index.options.metric}, ${index.stats().zones} zones) does not match its manifest`);
        }
        onEvent(`loaded shard ${p} of '${name}' (version ${manifest.version}, ${index.size} vectors, ${entry.bytes} bytes)`);
      }
      const { last } = await store.checkWritesSince(manifest.seq, manifest.version);
      const replica = new Replica(nc, name, manifest, held, router, onEvent);
      await replica.follow();
      if (last > manifest.seq) {
        if (!(await replica.caughtUp(last, Infinity))) throw replica.failed!;
        onEvent(`applied writes ${manifest.seq + 1}-${last}`);
      }
      for (const p of held.keys()) {
        const queue = queueOf(name, manifest.version, p);
        replica.subs.push(
          nc.subscribe(subjectOf(name, manifest.version, p, 'info'), { queue, callback: (_err, msg) => replica.take(msg, async () => replica.info(p)) }),
          nc.subscribe(subjectOf(name, manifest.version, p, 'search'), { queue, callback: (_err, msg) => replica.take(msg, () => replica.search(p, msg)) }),
        );
      }
      await nc.flush();
      return replica;
    } catch (err) {
      for (const index of held.values()) index.close();
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

  /**
   * Apply the stream's writes after the manifest's sequence, in order, as they come (an ordered
   * consumer: it resumes where it was after a reconnect). A write missing between two (deleted or
   * purged from the stream) stops the replica: its shards would differ from its peers'.
   */
  private async follow(): Promise<void> {
    const js = jetstream(this.nc);
    const consumer = await js.consumers.get(streamOf(this.name), {
      deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.manifest.seq + 1, filter_subjects: writesSubject(this.name),
    });
    const writes = (this.writes = await consumer.consume());
    // the stream deleted under the replica: its consumer goes and no message says so again
    const jsm = await jetstreamManager(this.nc);
    void (async () => {
      for await (const s of writes.status()) {
        if (s.type !== 'consumer_deleted' && s.type !== 'stream_not_found') continue;
        const gone = await jsm.streams.info(streamOf(this.name)).then(() => false, () => true);
        if (gone) this.fail(new ZGQError('CORRUPT_FILE', `the write stream ${streamOf(this.name)} was deleted: this replica stops; publish the index again`));
      }
    })().catch(() => {});
    this.following = (async () => {
      for await (const m of writes) {
        if (m.seq !== this.appliedSeq + 1) {
          this.fail(new ZGQError('CORRUPT_FILE', `writes ${this.appliedSeq + 1}-${m.seq - 1} of ${streamOf(this.name)} are gone (deleted or purged): this replica stops; publish the index again`));
          return;
        }
        await this.apply(m.headers?.get(OP) || '', m.data, m.seq);
        this.appliedSeq = m.seq;
        for (const w of this.waiting) if (w.seq <= m.seq) w.wake(true);
      }
    })().catch((err: unknown) => {
      // the stream can no longer be followed: searches would miss later writes
      this.fail(new ZGQError('IO', `the write stream ${streamOf(this.name)} cannot be followed: ${err instanceof Error ? err.message : String(err)}; this replica stops`, { cause: err }));
    });
  }

  /** Stop serving: unsubscribe (requests go to the shard's other replicas), wake the waiting, say why. */
  private fail(err: ZGQError): void {
    if (this.failed) return;
    this.failed = err;
    for (const sub of this.subs) sub.unsubscribe();
    for (const w of this.waiting) w.wake(false);
    void this.writes?.close();
    this.onEvent(err.message);
    this.failWith(err);
  }

  /**
   * One write to every shard held. A write invalid as a whole is skipped by every replica alike; a
   * shard that fails to apply its part (out of memory) is said, and the others still apply theirs.
   */
  private async apply(op: string, data: Uint8Array, seq: number): Promise<void> {
    let write: Write;
    try {
      write = decodeWrite(op, data, this.manifest.dim);
    } catch (err) {
      this.onEvent(`write ${seq} skipped: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    const dim = this.manifest.dim;
    const vectors = write.op === 'add' ? write.vectors : null;
    let owner: Uint8Array | null = null;
    if (vectors) {
      // routed as the sharded index routes an add in one process: unit length under cosine
      const rows = this.manifest.metric === 'cosine' ? normalizedCopy(vectors, dim) : vectors;
      owner = new Uint8Array(write.ids.length);
      for (let i = 0; i < owner.length; i++) {
        this.router.query().set(rows.subarray(i * dim, (i + 1) * dim));
        owner[i] = this.router.nearestShard();
      }
    }
    for (const [p, index] of this.held) {
      try {
        if (!owner || !vectors) {
          index.remove(write.ids);
          continue;
        }
        const mine: number[] = [];
        const elsewhere: number[] = [];
        for (let i = 0; i < owner.length; i++) (owner[i] === p ? mine : elsewhere).push(i);
        if (mine.length) await index.add(gatherRows(vectors, dim, mine), Uint32Array.from(mine, (i) => write.ids[i]));
        if (elsewhere.length) index.remove(Uint32Array.from(elsewhere, (i) => write.ids[i]));
      } catch (err) {
        this.onEvent(`write ${seq}: shard ${p} could not apply it: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  /** Resolves true once write `seq` is applied; false when `ms` pass first or the replica fails. */
  private caughtUp(seq: number, ms: number): Promise<boolean> {
    if (this.appliedSeq >= seq) return Promise.resolve(true);
    if (this.failed) return Promise.resolve(false);
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const entry = {
        seq,
        wake: (applied: boolean) => {
          clearTimeout(timer);
          this.waiting.delete(entry);
          resolve(applied);
        },
      };
      this.waiting.add(entry);
      if (Number.isFinite(ms)) timer = setTimeout(() => entry.wake(false), ms);
    });
  }

  private info(shard: number): Uint8Array {
    const index = this.held.get(shard)!;
    const { manifest } = this;
    return new TextEncoder().encode(JSON.stringify({ dim: index.dim, metric: manifest.metric, size: index.size, shard, version: manifest.version, applied: this.appliedSeq }));
  }

  private async search(shard: number, msg: Msg): Promise<Uint8Array> {
    const index = this.held.get(shard)!;
    const k = headerInt(msg.headers?.get('k'), 'k', 10);
    if (k < 1) throw new ZGQError('INVALID_ARGUMENT', 'k must be an integer >= 1; got 0');
    const options = searchOptionsOf(msg.headers?.get('options'));
    const { filter, queries, nq } = decodeSearch(msg.data, index.dim);
    const max = maxPayload(this.nc);
    if (replyBytes(nq, k) > max) {
      throw new ZGQError('INVALID_ARGUMENT', `the reply to ${nq} queries with k = ${k} would be ${replyBytes(nq, k)} bytes, over the NATS server's max_payload of ${max}: send fewer queries per request`);
    }
    const r = await index.searchBatch(queries, k, { ...options, filter: filter ?? undefined });
    return encodeResults(r.ids, r.distances);
  }

  /**
   * Answer one request with `work`'s payload or its error: once the write its client last made is
   * applied (a wait outside the queue: other clients' requests do not wait for it), then in arrival
   * order; skipped when its budget ran out first.
   */
  private take(msg: Msg, work: () => Promise<Uint8Array>): void {
    const received = performance.now();
    const done = (async () => {
      let data: Uint8Array | null;
      let h: MsgHdrs | undefined;
      try {
        const budget = headerInt(msg.headers?.get(BUDGET_MS), BUDGET_MS, Infinity);
        const after = headerInt(msg.headers?.get(AFTER_SEQ), AFTER_SEQ, 0);
        if (!(await this.caughtUp(after, Math.min(budget, UNBUDGETED_WAIT_MS)))) {
          throw this.failed ?? new ZGQError('TIMEOUT', `this replica has applied writes up to ${this.appliedSeq}; the request needs ${after}`);
        }
        const turn = this.queue.then(() => (performance.now() - received > budget ? null : work()));
        this.queue = turn.catch(() => undefined);
        data = await turn;
        if (data === null) return; // past its deadline: its client has resent it or given up
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
    })();
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
