/** An entry of an LruList: the list threads through these two fields. */
export interface LruNode<T> {
  prev: T | null;
  next: T | null;
}

/**
 * An intrusive least-recently-used list: O(1) append, touch and unlink with no
 * allocation. `head` is the least recently used entry: what idle timeouts and
 * eviction look at first.
 */
export class LruList<T extends LruNode<T>> {
  head: T | null = null;
  tail: T | null = null;

  append(n: T): void {
    n.prev = this.tail;
    n.next = null;
    if (this.tail !== null) this.tail.next = n;
    else this.head = n;
    this.tail = n;
  }

  /** mark as just used */
  touch(n: T): void {
    if (this.tail === n) return;
    this.unlink(n);
    this.append(n);
  }

  unlink(n: T): void {
    if (n.prev !== null) n.prev.next = n.next;
    else this.head = n.next;
    if (n.next !== null) n.next.prev = n.prev;
    else this.tail = n.prev;
    n.prev = n.next = null;
  }
}
