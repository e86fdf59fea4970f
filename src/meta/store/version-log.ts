/**
 * One append-only sequence of versions in an ObjectStore (DESIGN.md section 4): version N is
 * the object `<prefix>v/<N, 12 digits>`, written create-only, so whoever creates N+1 wins it.
 *
 * Finding the newest version is linearizable: it answers a version that was the newest at
 * some instant during the call. It starts from a lower bound (an in-memory hint, else the
 * non-authoritative `<prefix>hint` object, else the lowest listed version) and probes
 * forward with `head`: exponentially, then by bisection.
 *
 * Collection keeps this sound. Invariants, for N the newest version at any instant:
 * 1. Versions N-63..N are never deleted (`keepVersions`).
 * 2. Deletion runs in ascending order from the lowest version present, so the versions
 *    present are always one contiguous run: if v is present, every w in v..N is present.
 *    Hence "lo present, observed after lo+1 was seen absent" proves lo+1 really was absent.
 * 3. Version v is deleted only after v+1 was seen to exist at least `graceMs` earlier, and a
 *    writer gives up on a read older than graceMs/4. So no late writer can re-create a
 *    deleted version (create-only would succeed on a deleted key and fork the sequence),
 *    and a reader that saw v+1 absent less than graceMs ago knows it was not deleted since:
 *    that is what lets a warm read cost a single `head`.
 */
import type { ObjectStore } from '../../storage/object-store.js';
import { errorCode, StoreError } from '../../core/errors.js';

/** Digits of the version number in keys; zero-padding keeps listings in version order. */
const VERSION_DIGITS = 12;
/** Restarts of a search that collection overtook before giving up. */
const SEARCH_RESTARTS = 8;

/** Shared settings of the logs of one meta store. */
export interface VersionLogConfig {
  readonly store: ObjectStore;
  /** Versions kept behind the newest one. */
  readonly keepVersions: number;
  /** See invariant 3. */
  readonly graceMs: number;
  /** Write the hint object and collect every this many versions. */
  readonly every: number;
  /** A monotonic clock in ms (performance.now). */
  readonly now: () => number;
  /** Runs best-effort work in the background (tracked so close() can wait for it). */
  readonly background: (work: () => Promise<void>) => void;
}

interface Observation {
  readonly version: number;
  readonly at: number;
}

/** The key of a version under a prefix. */
export function versionKey(prefix: string, version: number): string {
  return `${prefix}v/${String(version).padStart(VERSION_DIGITS, '0')}`;
}

/** An append-only version sequence under one key prefix (e.g. `meta/repos/<id>/`). */
export class VersionLog {
  /** A version known to exist (0: none known). */
  private hintVersion = 0;
  /** Monotonic time before which hintVersion+1 did not exist (undefined: unknown). */
  private hintFreshSince: number | undefined;
  private readonly observations: Observation[] = [];
  /** Every version below this one is deleted (by us); collection resumes here. */
  private gcFloor = 0;
  private gcRunning = false;
  private hintWritten = 0;
  /** Serializes this process's writers, so they do not race each other for nothing. */
  private lock: Promise<void> = Promise.resolve();

  constructor(
    readonly prefix: string,
    private readonly cfg: VersionLogConfig,
  ) {}

  /** The key of a version of this log. */
  key(version: number): string {
    return versionKey(this.prefix, version);
  }

  /** Runs `fn` after every earlier `exclusive` call of this process on this log. */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.lock;
    let release: () => void = () => undefined;
    this.lock = new Promise<void>((resolve) => {
      release = resolve;
    });
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /** The newest version (0 if the log is empty), linearizable. */
  async newest(): Promise<number> {
    const hint = this.hintVersion;
    const fresh = this.hintFreshSince;
    const margin = this.cfg.graceMs / 2;
    if (hint > 0 && fresh !== undefined && this.cfg.now() - fresh < margin) {
      const t0 = this.cfg.now();
      const next = await this.exists(hint + 1);
      if (!next && this.cfg.now() - fresh < margin) {
        // hint+1 did not exist after `fresh`, so it cannot have been collected: it is absent.
        this.setHint(hint, t0);
        return hint;
      }
      if (next) return this.search(hint + 1);
    }
    const lower = await this.lowerBound();
    return lower === 0 ? 0 : this.search(lower);
  }

  /** Tries to create `version` with `body`; true if this call created it. */
  async append(version: number, body: Uint8Array): Promise<boolean> {
    const t0 = this.cfg.now();
    const res = await this.cfg.store.put(this.key(version), body, { ifAbsent: true });
    if (res.created) {
      // version+1 can only be created after version exists, so not before t0.
      this.setHint(version, t0);
      this.observe(version, this.cfg.now());
      if (version % this.cfg.every === 0) this.afterMilestone(version);
    } else {
      this.setHint(version, undefined);
    }
    return res.created;
  }

  /** Reads the bytes of a version; undefined if it does not exist (any more). */
  async read(version: number): Promise<Uint8Array | undefined> {
    const bytes = await this.cfg.store.tryGet(this.key(version));
    // Gone after it was found: collected meanwhile, so the next search must not trust the hint.
    if (bytes === undefined) this.hintFreshSince = undefined;
    return bytes;
  }

  /**
   * Moves the hint forward: `version` exists and version+1 did not exist before `freshSince`
   * (undefined: unknown). Concurrent calls may finish out of order; an older one is dropped.
   */
  private setHint(version: number, freshSince: number | undefined): void {
    if (version < this.hintVersion) return;
    if (version === this.hintVersion) {
      // Both claims hold; keep the later time.
      if (freshSince !== undefined) this.hintFreshSince = Math.max(this.hintFreshSince ?? freshSince, freshSince);
      return;
    }
    this.hintVersion = version;
    this.hintFreshSince = freshSince;
  }

  private async exists(version: number): Promise<boolean> {
    return (await this.cfg.store.head(this.key(version))) !== undefined;
  }

  /**
   * Finds the newest version given `lo`, seen present. Every absence seen above lo is real
   * once lo is seen present after it (invariant 2), so the answer is re-confirmed if needed.
   */
  private async search(start: number): Promise<number> {
    let lo = start;
    let loSeq = 0;
    let seq = 0;
    let hi = 0;
    let hiSeq = 0;
    let hiAt = 0;
    const probe = async (version: number): Promise<void> => {
      seq += 1;
      const at = this.cfg.now();
      if (await this.exists(version)) {
        lo = version;
        loSeq = seq;
      } else {
        hi = version;
        hiSeq = seq;
        hiAt = at;
      }
    };
    for (let step = 1; hi === 0; step *= 2) await probe(lo + step);
    while (hi - lo > 1) await probe(lo + Math.floor((hi - lo) / 2));
    if (loSeq < hiSeq && !(await this.exists(lo))) {
      // Collection overtook us (lo is at least keepVersions behind now): start over.
      return this.restartFrom(lo);
    }
    // lo+1 was really absent at hiAt, so it was created (if at all) after hiAt.
    this.setHint(lo, hiAt);
    this.observe(lo, this.cfg.now());
    return lo;
  }

  private async restartFrom(gone: number): Promise<number> {
    for (let restart = 0; restart < SEARCH_RESTARTS; restart += 1) {
      const lower = await this.lowestPresent();
      if (lower > gone) return this.search(lower);
      if (lower === 0) break;
    }
    throw new StoreError('META_CONTENTION', `meta store: ${this.prefix} is collected faster than it can be read`);
  }

  /**
   * A version seen present now (0: the log is empty): the in-memory hint, the hint object,
   * version 1, else the lowest listed (after collection, on a cold start).
   */
  private async lowerBound(): Promise<number> {
    if (this.hintVersion > 0 && (await this.exists(this.hintVersion))) return this.hintVersion;
    const fromObject = await this.readHintObject();
    if (fromObject > 0 && (await this.exists(fromObject))) return fromObject;
    if (await this.exists(1)) return 1;
    return this.lowestPresent();
  }

  private async readHintObject(): Promise<number> {
    try {
      const bytes = await this.cfg.store.tryGet(`${this.prefix}hint`);
      if (bytes === undefined) return 0;
      const doc: unknown = JSON.parse(Buffer.from(bytes).toString('utf8'));
      const version = typeof doc === 'object' && doc !== null ? (doc as { version?: unknown }).version : undefined;
      return typeof version === 'number' && Number.isSafeInteger(version) && version > 0 ? version : 0;
    } catch (err) {
      if (errorCode(err) === 'INTERNAL') return 0; // garbage in a non-authoritative hint
      throw err;
    }
  }

  /** The lowest listed version that a `head` confirms (0 if none); for cold starts only. */
  private async lowestPresent(): Promise<number> {
    for await (const info of this.cfg.store.list(`${this.prefix}v/`)) {
      const version = Number(info.key.slice(this.prefix.length + 2));
      // A listing may lag behind deletes: confirm with head.
      if (Number.isSafeInteger(version) && version > 0 && (await this.exists(version))) return version;
    }
    return 0;
  }

  private observe(version: number, at: number): void {
    const obs = this.observations;
    const last = obs[obs.length - 1];
    if (last !== undefined && (version <= last.version || at - last.at < this.cfg.graceMs / 16)) return;
    obs.push({ version, at });
    // Keep only the newest observation that is already past the grace, and those after it.
    const now = this.cfg.now();
    let keepFrom = 0;
    for (let i = 0; i < obs.length; i += 1) {
      const o = obs[i];
      if (o !== undefined && now - o.at >= this.cfg.graceMs) keepFrom = i;
    }
    if (keepFrom > 0) obs.splice(0, keepFrom);
  }

  /** The newest version seen to exist at least graceMs ago (0 if none). */
  private gracedVersion(): number {
    const now = this.cfg.now();
    let best = 0;
    for (const o of this.observations) if (now - o.at >= this.cfg.graceMs) best = o.version;
    return best;
  }

  private afterMilestone(version: number): void {
    if (version > this.hintWritten) {
      this.hintWritten = version;
      const body = Buffer.from(JSON.stringify({ version }));
      this.cfg.background(async () => {
        await this.cfg.store.put(`${this.prefix}hint`, body);
      });
    }
    const upper = Math.min(version - this.cfg.keepVersions, this.gracedVersion() - 1);
    if (upper < 1 || upper < this.gcFloor || this.gcRunning) return;
    this.gcRunning = true;
    this.cfg.background(async () => {
      try {
        await this.collect(upper);
      } finally {
        this.gcRunning = false;
      }
    });
  }

  /** Deletes versions up to `upper`, in ascending order from the lowest present (invariant 2). */
  private async collect(upper: number): Promise<void> {
    let from = this.gcFloor;
    if (from === 0) {
      from = await this.lowestPresent();
      if (from === 0) return;
    }
    for (let v = from; v <= upper; v += 1) {
      await this.cfg.store.delete(this.key(v));
      this.gcFloor = v + 1;
    }
  }
}
