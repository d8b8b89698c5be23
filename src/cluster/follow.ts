/**
 * A replica that follows the index's versions (what `zgq serve --nats` runs): it serves the
 * published version, and when a new one is published it starts serving that one beside it (its
 * shards loaded and its writes applied: src/cluster/replica.ts) and then stops the old one, whose
 * clients move over by themselves when they find it gone (ZGQCluster.refresh).
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { KvWatchInclude, type KvWatchEntry } from '@nats-io/kv';
import { ZGQError } from '../errors.js';
import { ClusterStore, parseManifest } from './manifest.js';
import { checkIndexName, connectTo } from './protocol.js';
import { Replica, type ReplicaOptions } from './replica.js';

export class FollowingReplica {
  private closed = false;
  private rolling: Promise<void> = Promise.resolve();
  private stopWatching: () => void = () => {};
  private failWith: (err: ZGQError) => void = () => {};
  /** The index's storage on this follower's connection (opened once, at start). */
  private store: ClusterStore | null = null;
  /** Resolves with the reason if the replica of the current version stops serving on its own. */
  readonly failure = new Promise<ZGQError>((resolve) => (this.failWith = resolve));

  private constructor(
    private readonly options: ReplicaOptions,
    private current: Replica,
    private readonly nc: NatsConnection,
  ) {
    this.watchFailure(current);
  }

  /**
   * Serve the published index `options.name` (its shards `options.shards`, or all of them) and
   * each version published after it.
   * @throws ZGQError as Replica.start.
   */
  static async start(options: ReplicaOptions): Promise<FollowingReplica> {
    const name = checkIndexName(options.name);
    const first = await Replica.start(options);
    let nc: NatsConnection;
    try {
      nc = await connectTo(options.servers, `zgq replica ${name} (versions)`);
    } catch (err) {
      await first.close();
      throw err;
    }
    const follower = new FollowingReplica(options, first, nc);
    try {
      const store = (follower.store = await ClusterStore.open(nc, name, false));
      const updates = await store.manifests.watch({ key: name, include: KvWatchInclude.UpdatesOnly });
      follower.stopWatching = () => updates.stop();
      void (async () => {
        for await (const entry of updates) follower.seen(entry);
      })().catch((err: unknown) => follower.say(`the manifest can no longer be watched (${err instanceof Error ? err.message : String(err)}): new versions are not followed`));
      // a version published between the first replica's start and the watch
      const { manifest } = await store.manifest();
      if (manifest.version > first.manifest.version) follower.roll(manifest.version);
    } catch (err) {
      await follower.close();
      throw err;
    }
    return follower;
  }

  /** The version served. */
  get version(): number {
    return this.current.manifest.version;
  }

  /** The replica of the version served. */
  get replica(): Replica {
    return this.current;
  }

  private seen(entry: KvWatchEntry): void {
    if (entry.operation !== 'PUT' || this.closed) return;
    try {
      const { version } = parseManifest(this.options.name, entry.string());
      if (version > this.current.manifest.version) this.roll(version);
    } catch (err) {
      this.say(`a manifest update could not be read: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Move to the newest version, after any move in progress. */
  private roll(version: number): void {
    this.rolling = this.rolling.then(async () => {
      if (this.closed || version <= this.current.manifest.version) return;
      const old = this.current;
      let next: Replica;
      try {
        next = await Replica.start({ ...this.options, shards: await this.shardsIn(version) });
      } catch (err) {
        this.say(`version ${version} cannot be served (${err instanceof Error ? err.message : String(err)}); still serving version ${old.manifest.version}`);
        return;
      }
      if (this.closed) {
        await next.close();
        return;
      }
      this.current = next;
      this.watchFailure(next);
      await old.close();
      this.say(`now serving version ${next.manifest.version} (shards ${next.shards.join(', ')}, ${next.size} vectors); version ${old.manifest.version} stopped`);
    });
  }

  /** The shards asked for that exist in the newest version (all of them when none were named). */
  private async shardsIn(version: number): Promise<number[] | undefined> {
    const asked = this.options.shards;
    if (asked === undefined) return undefined;
    const { manifest } = await this.store!.manifest();
    const kept = asked.filter((p) => p < manifest.shards.length);
    if (kept.length === 0) throw new ZGQError('INVALID_ARGUMENT', `version ${Math.max(version, manifest.version)} has shards 0-${manifest.shards.length - 1}, none of ${asked.join(', ')}`);
    return kept;
  }

  private watchFailure(replica: Replica): void {
    void replica.failure.then((err) => {
      if (replica === this.current && !this.closed) this.failWith(err);
    });
  }

  private say(message: string): void {
    this.options.onEvent?.(message);
  }

  /** Stop following, answer the requests held, and disconnect. */
  async close(): Promise<void> {
    this.closed = true;
    this.stopWatching();
    await this.rolling.catch(() => {});
    await this.current.close();
    await this.nc.drain().catch(() => {});
  }
}
