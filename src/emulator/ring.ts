/**
 * The newest `capacity` items, in the order they were added: once full, each new item overwrites
 * the oldest. What the emulator keeps in memory only (served calls, log entries), per project.
 */
export class Ring<T extends { project: string }> {
  private ring: T[] = [];
  /** Once full: the oldest item, the next one to be overwritten. */
  private next = 0;

  constructor(private readonly capacity: number) {}

  add(item: T): void {
    if (this.ring.length < this.capacity) this.ring.push(item);
    else {
      this.ring[this.next] = item;
      this.next = (this.next + 1) % this.capacity;
    }
  }

  /** The items oldest first; only those `keep` accepts, when given. */
  items(keep?: (item: T) => boolean): T[] {
    const ordered = [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
    return keep ? ordered.filter(keep) : ordered;
  }

  /** Drops every item, or those of one project (number). */
  clear(project?: string): void {
    this.ring = project === undefined ? [] : this.items((item) => item.project !== project);
    this.next = 0;
  }
}
