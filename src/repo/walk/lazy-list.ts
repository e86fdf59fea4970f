/**
 * A read-only array whose elements are computed on first read (a Proxy over a holey array).
 * A clone of a bitmapped pack lists hundreds of thousands of ids that the usual consumer
 * never reads (pack-out sends the stored pack file as it is): building them would cost more
 * than the whole enumeration. Every read still gets the right value, by index, iteration or
 * any array method.
 */

function indexOf(prop: string | symbol, length: number): number {
  if (typeof prop !== 'string' || prop.length === 0) return -1;
  const c = prop.charCodeAt(0);
  if (c < 48 || c > 57) return -1;
  const i = Number(prop);
  return Number.isInteger(i) && i >= 0 && i < length && String(i) === prop ? i : -1;
}

/** An array of `length` elements, element i being `at(i)` (called at most once per index). */
export function lazyList<T>(length: number, at: (i: number) => T): readonly T[] & T[] {
  // A sparse array: no backing store for `length` elements until they are read.
  const target: T[] = [];
  target.length = length;
  let made: Uint8Array | undefined;
  const get = (i: number): T => {
    made ??= new Uint8Array(length);
    if (made[i] === 0) {
      target[i] = at(i);
      made[i] = 1;
    }
    return target[i]!;
  };
  return new Proxy(target, {
    get(t, prop, receiver) {
      const i = indexOf(prop, length);
      return i >= 0 ? get(i) : Reflect.get(t, prop, receiver);
    },
    has(t, prop) {
      return indexOf(prop, length) >= 0 || Reflect.has(t, prop);
    },
    getOwnPropertyDescriptor(t, prop) {
      const i = indexOf(prop, length);
      if (i < 0) return Reflect.getOwnPropertyDescriptor(t, prop);
      return { value: get(i), writable: true, enumerable: true, configurable: true };
    },
    ownKeys(t) {
      for (let i = 0; i < length; i++) get(i);
      return Reflect.ownKeys(t);
    },
    set() {
      return false;
    },
    deleteProperty() {
      return false;
    },
    defineProperty() {
      return false;
    },
  });
}
