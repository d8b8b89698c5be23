/**
 * Where a cluster's index lives in NATS JetStream, and how it gets there (publishIndex):
 *
 * | what                         | where                                              | written by                    |
 * | ---------------------------- | -------------------------------------------------- | ----------------------------- |
 * | the manifest (JSON, Manifest) | key `<name>` of the key-value bucket `zgq`         | `zgq cluster publish`         |
 * | each shard's index file      | object `v<version>.<token>/s<shard>` of the object store `zgq-<name>` | `zgq cluster publish` |
 * | the shards' zone tables      | object `v<version>.<token>/zones` of the same store (a container, below) | `zgq cluster publish` |
 * | writes (add, remove)         | stream `ZGQ_<name>`, subject `zgq.<name>.writes`     | ZGQCluster.add / remove       |
 *
 * A version is a snapshot of the index as published; the writes after stream sequence `seq` apply on
 * top of it, in stream order, in every replica of every shard (src/cluster/writes.ts). Publishing
 * again makes a new version and removes the objects of all but the one before it. The token (random)
 * keeps two publishes racing for one version apart: the manifest takes one, the other's objects go.
 *
 * The zone-table container (src/format.ts) has the header `{ kind: 'zgq-zone-tables', dim, metric,
 * shards: [{ nZones, nGroups }] }` and, per shard p (three digits), the sections `C<p>` (f32 zone
 * centroids, nZones * dim), `G<p>` (f32 group centroids, nGroups * dim) and `T<p>` (u32 first zone of
 * each group); G and T are absent for a shard without groups.
 */
import { randomUUID } from 'node:crypto';
import { jetstreamManager, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import { ZGQError } from '../errors.js';
import { decodeContainer, encodeContainer, type Section } from '../format.js';
import type { ZGQIndex } from '../index.js';
import { type Metric, type Traversal, TRAVERSALS } from '../options.js';
import { MAX_SHARDS, type ZoneTable } from '../shards.js';
import { platform } from '../platform.js';
import { checkIndexName } from './protocol.js';

/** The key-value bucket holding every index's manifest, keyed by index name. */
export const MANIFEST_BUCKET = 'zgq';

export function objectStoreOf(name: string): string {
  return `zgq-${name}`;
}

export function streamOf(name: string): string {
  return `ZGQ_${name}`;
}

export function writesSubject(name: string): string {
  return `zgq.${name}.writes`;
}

export interface ShardEntry {
  /** Object holding the shard's index file. */
  object: string;
  /** Bytes of that file. */
  bytes: number;
  /** Vectors searches could return when published. */
  size: number;
  /** The shard's zones: [zoneStart, zoneStart + zones) of the index's zone numbering. */
  zoneStart: number;
  zones: number;
}

export interface Manifest {
  kind: 'zgq-cluster';
  format: 1;
  version: number;
  dim: number;
  metric: Metric;
  /** The search defaults a client routes with when a search does not set them. */
  nProbe: number;
  traversal: Traversal;
  /** Writes after this stream sequence apply on top of this version. */
  seq: number;
  /** Object holding the zone tables. */
  zones: string;
  shards: ShardEntry[];
  publishedAt: string;
}

const FORMAT = 1;

/** The manifest's JSON, checked: a foreign or damaged value is CORRUPT_FILE naming the index. */
export function parseManifest(name: string, text: string): Manifest {
  let m: Manifest;
  try {
    m = JSON.parse(text) as Manifest;
  } catch {
    throw new ZGQError('CORRUPT_FILE', `the manifest of cluster index '${name}' is not JSON`);
  }
  if (m?.kind !== 'zgq-cluster') throw new ZGQError('CORRUPT_FILE', `the manifest of cluster index '${name}' is not a zgq cluster manifest`);
  if (m.format !== FORMAT) throw new ZGQError('UNSUPPORTED_VERSION', `the manifest of cluster index '${name}' has format ${m.format}; this zgq reads format ${FORMAT}`);
  const whole = (v: unknown, min: number) => Number.isInteger(v) && (v as number) >= min;
  // the shards' zones follow each other from 0
  let next = 0;
  const shardsOk = Array.isArray(m.shards) && m.shards.length >= 1 && m.shards.length <= MAX_SHARDS
    && m.shards.every((s) => {
      const ok = typeof s?.object === 'string' && whole(s.bytes, 1) && whole(s.size, 0) && s.zoneStart === next && whole(s.zones, 1);
      next += s?.zones;
      return ok;
    });
  const metricOk = m.metric === 'l2' || m.metric === 'ip' || m.metric === 'cosine';
  if (!whole(m.version, 1) || !whole(m.dim, 1) || !metricOk || !whole(m.nProbe, 1) || !(TRAVERSALS as readonly string[]).includes(m.traversal) || !whole(m.seq, 0) || typeof m.zones !== 'string' || !shardsOk) {
    throw new ZGQError('CORRUPT_FILE', `the manifest of cluster index '${name}' is missing fields or holds values out of range`);
  }
  return m;
}

/** The handles of a cluster index's storage on one connection. */
export class ClusterStore {
  private constructor(
    readonly name: string,
    readonly manifests: KV,
    readonly files: ObjectStore,
    readonly jsm: JetStreamManager,
  ) {}

  /** Open (or, with `create`, create where missing) the bucket, object store and write stream of `name`. */
  static async open(nc: NatsConnection, name: string, create: boolean): Promise<ClusterStore> {
    checkIndexName(name);
    try {
      const jsm = await jetstreamManager(nc);
      const kvm = new Kvm(nc);
      const objm = new Objm(nc);
      if (create) {
        const manifests = await kvm.create(MANIFEST_BUCKET, { history: 1, storage: StorageType.File });
        const files = await objm.create(objectStoreOf(name), { storage: StorageType.File });
        await jsm.streams.info(streamOf(name)).catch(() => jsm.streams.add({ name: streamOf(name), subjects: [writesSubject(name)], storage: StorageType.File }));
        return new ClusterStore(name, manifests, files, jsm);
      }
      const manifests = await kvm.open(MANIFEST_BUCKET);
      return new ClusterStore(name, manifests, await objm.open(objectStoreOf(name)), jsm);
    } catch (err) {
      if (err instanceof ZGQError) throw err;
      const message = err instanceof Error ? err.message : String(err);
      if (!create && /not found|does not exist/i.test(message)) throw notPublished(name);
      throw new ZGQError('IO', `cannot open the JetStream storage of cluster index '${name}' (is the NATS server started with JetStream, -js?): ${message}`, { cause: err });
    }
  }

  /** The manifest, and its revision in the bucket (NOT_FOUND when the index was never published). */
  async manifest(): Promise<{ manifest: Manifest; revision: number }> {
    const entry = await this.manifests.get(this.name).catch((err: unknown) => {
      throw new ZGQError('IO', `cannot read the manifest of cluster index '${this.name}': ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    });
    if (!entry || entry.operation !== 'PUT' || entry.length === 0) throw notPublished(this.name);
    return { manifest: parseManifest(this.name, entry.string()), revision: entry.revision };
  }

  /** The bytes of an object the manifest names. */
  async object(object: string): Promise<Uint8Array> {
    const bytes = await this.files.getBlob(object).catch((err: unknown) => {
      throw new ZGQError('IO', `cannot read ${object} of cluster index '${this.name}': ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    });
    if (!bytes) throw new ZGQError('CORRUPT_FILE', `${object} of cluster index '${this.name}' is missing from the object store ${objectStoreOf(this.name)}`);
    return bytes;
  }

  /** The write stream's first and last sequence numbers (last 0 while it never held a write). */
  async writes(): Promise<{ first: number; last: number }> {
    try {
      const { state } = await this.jsm.streams.info(streamOf(this.name));
      return { first: state.first_seq, last: state.last_seq };
    } catch (err) {
      throw new ZGQError('IO', `cannot read the write stream ${streamOf(this.name)} of cluster index '${this.name}': ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  /**
   * That the stream holds every write after `seq` (the version's): a stream deleted and made again,
   * or purged of writes the version lacks, would leave a replica silently without them.
   * @throws ZGQError CORRUPT_FILE naming what is gone.
   */
  async checkWritesSince(seq: number, version: number): Promise<{ first: number; last: number }> {
    const w = await this.writes();
    const stream = streamOf(this.name);
    if (w.last < seq) {
      throw new ZGQError('CORRUPT_FILE', `the write stream ${stream} ends at ${w.last}, but version ${version} of '${this.name}' includes writes up to ${seq}: the stream was made again; publish the index again`);
    }
    if (w.last > seq && w.first > seq + 1) {
      throw new ZGQError('CORRUPT_FILE', `writes ${seq + 1}-${w.first - 1} of ${stream}, made after version ${version} of '${this.name}', are gone (purged); publish the index again`);
    }
    return w;
  }
}

function notPublished(name: string): ZGQError {
  return new ZGQError('NOT_FOUND', `no index named '${name}' is published on this NATS server (zgq cluster publish <index> --name ${name})`);
}

/** The zone tables of every shard, as one container. */
export function encodeZoneTables(tables: ZoneTable[], dim: number, metric: Metric): Uint8Array {
  const sections: Section[] = [];
  const tag = (letter: string, p: number) => `${letter}${String(p).padStart(3, '0')}`;
  const bytesOf = (a: Float32Array | Uint32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  tables.forEach((t, p) => {
    sections.push({ tag: tag('C', p), bytes: bytesOf(t.centroids) });
    if (t.nGroups) sections.push({ tag: tag('G', p), bytes: bytesOf(t.groupCentroids) }, { tag: tag('T', p), bytes: bytesOf(t.groupStart) });
  });
  const meta = { kind: 'zgq-zone-tables', dim, metric, shards: tables.map((t) => ({ nZones: t.nZones, nGroups: t.nGroups })) };
  return encodeContainer(meta, sections, platform.crc32);
}

/** The zone tables of a container from encodeZoneTables, checked against the manifest. */
export function decodeZoneTables(bytes: Uint8Array, manifest: Manifest, name: string): ZoneTable[] {
  const where = `the zone tables of cluster index '${name}'`;
  const decoded = decodeContainer(bytes, where, platform.crc32);
  const meta = decoded.meta as { kind?: unknown; dim?: unknown; shards?: { nZones: number; nGroups: number }[] };
  if (meta.kind !== 'zgq-zone-tables' || meta.dim !== manifest.dim || !Array.isArray(meta.shards) || meta.shards.length !== manifest.shards.length) {
    throw new ZGQError('CORRUPT_FILE', `${where} do not match its manifest`);
  }
  const dim = manifest.dim;
  return meta.shards.map(({ nZones, nGroups }, p) => {
    const section = (letter: string, count: number) => {
      const s = decoded.sections.get(`${letter}${String(p).padStart(3, '0')}`);
      if (count === 0) return new Uint8Array(0);
      if (!s || s.byteLength !== count * 4) throw new ZGQError('CORRUPT_FILE', `${where}: shard ${p}'s section ${letter} is missing or of the wrong size`);
      return new Uint8Array(s); // a copy with a buffer of its own (a Buffer.slice would share)
    };
    if (nZones !== manifest.shards[p].zones) throw new ZGQError('CORRUPT_FILE', `${where}: shard ${p} has ${nZones} zones, its manifest entry ${manifest.shards[p].zones}`);
    return {
      nZones,
      centroids: new Float32Array(section('C', nZones * dim).buffer),
      nGroups,
      groupCentroids: new Float32Array(section('G', nGroups * dim).buffer),
      groupStart: new Uint32Array(section('T', nGroups).buffer),
    };
  });
}

export interface PublishOptions {
  /** Progress: the fraction of the shards' bytes stored so far. */
  onProgress?: (fraction: number) => void;
}

/**
 * Publish `index` as the cluster index `name`: its shards' files and zone tables into the object
 * store, then the manifest naming them (a new version; replicas started after it serve it). Writes
 * made through the cluster before this publish are not in the new version.
 * @throws ZGQError CONFLICT when another publish of the same name landed meanwhile; IO.
 */
export async function publishIndex(nc: NatsConnection, index: ZGQIndex, name: string, options: PublishOptions = {}): Promise<Manifest> {
  const store = await ClusterStore.open(nc, name, true);
  const { shards, routing } = await index.shardFiles();
  const previous = await store.manifest().catch((err: unknown) => {
    if (err instanceof ZGQError && err.code === 'NOT_FOUND') return null;
    throw err;
  });
  const version = (previous?.manifest.version ?? 0) + 1;
  const prefix = `v${version}.${randomUUID().slice(0, 8)}/`;
  const total = shards.reduce((sum, s) => sum + s.bytes.byteLength, 0);
  let stored = 0;
  const entries: ShardEntry[] = [];
  let zoneStart = 0;
  let manifest: Manifest;
  options.onProgress?.(0);
  try {
    const seq = (await store.writes()).last;
    for (let p = 0; p < shards.length; p++) {
      const object = `${prefix}s${p}`;
      await store.files.putBlob({ name: object }, shards[p].bytes);
      entries.push({ object, bytes: shards[p].bytes.byteLength, size: shards[p].size, zoneStart, zones: shards[p].zones.nZones });
      zoneStart += shards[p].zones.nZones;
      stored += shards[p].bytes.byteLength;
      options.onProgress?.(stored / total);
    }
    const zones = `${prefix}zones`;
    await store.files.putBlob({ name: zones }, encodeZoneTables(shards.map((s) => s.zones), index.dim, index.options.metric));
    manifest = {
      kind: 'zgq-cluster', format: FORMAT, version, dim: index.dim, metric: index.options.metric, ...routing, seq, zones, shards: entries, publishedAt: new Date().toISOString(),
    };
    const text = JSON.stringify(manifest);
    // the manifest changes only from the revision read above: two publishes never interleave
    try {
      if (previous) await store.manifests.update(name, text, previous.revision);
      else await store.manifests.create(name, text);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (/wrong last sequence|key exists/i.test(message)) throw new ZGQError('CONFLICT', `another publish of cluster index '${name}' landed while this one ran; publish again`, { cause: err });
      // no answer: it may have landed all the same
      const now = await store.manifest().catch(() => null);
      if (now?.manifest.zones !== zones) throw err;
    }
  } catch (err) {
    // this publish's objects: its manifest never landed
    for (const info of await store.files.list().catch(() => [])) if (info.name.startsWith(prefix)) await store.files.delete(info.name).catch(() => {});
    if (err instanceof ZGQError) throw err;
    throw new ZGQError('IO', `publishing cluster index '${name}' failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  // the previous version stays for replicas still loading it; older ones go (a later publish
  // retries what fails here)
  for (const info of await store.files.list().catch(() => [])) {
    const v = Number(/^v(\d+)\./.exec(info.name)?.[1]);
    if (v < version - 1) await store.files.delete(info.name).catch(() => {});
  }
  return manifest;
}
