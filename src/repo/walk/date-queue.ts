/**
 * A max-heap of commits by committer time, ties broken by insertion order (git's prio_queue
 * with compare_commits_by_commit_date), so walks are deterministic.
 */
import type { ObjectId } from '../../git/hash/object-id.js';

interface Item {
  readonly oid: ObjectId;
  readonly time: number;
  readonly seq: number;
}

function before(a: Item, b: Item): boolean {
  return a.time > b.time || (a.time === b.time && a.seq < b.seq);
}

/** Commits ordered newest first. */
export class DateQueue {
  readonly #heap: Item[] = [];
  #seq = 0;

  get size(): number {
    return this.#heap.length;
  }

  push(oid: ObjectId, time: number): void {
    const h = this.#heap;
    const item: Item = { oid, time, seq: this.#seq++ };
    let i = h.length;
    h.push(item);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(item, h[p]!)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = item;
  }

  /** The newest commit's time, or undefined when empty. */
  peekTime(): number | undefined {
    return this.#heap[0]?.time;
  }

  pop(): ObjectId | undefined {
    const h = this.#heap;
    const top = h[0];
    if (top === undefined) return undefined;
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      const n = h.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && before(h[r]!, h[l]!) ? r : l;
        if (!before(h[c]!, last)) break;
        h[i] = h[c]!;
        i = c;
      }
      h[i] = last;
    }
    return top.oid;
  }

  /** Every queued commit, in no particular order. */
  *oids(): IterableIterator<ObjectId> {
    for (const it of this.#heap) yield it.oid;
  }
}
