// Job identities: each running job gets a uid (= gid) of its own from the configured range, so
// jobs cannot signal, ptrace or read each other, and no job shares an identity with an account.
// Handed out round-robin so that a just-freed uid is the last to be reused.
import { readFileSync } from 'node:fs';
import { JobError } from '../../shared/errors.ts';

export class UidPool {
  private readonly first: number;
  private readonly count: number;
  private readonly inUse = new Set<number>();
  private next = 0;

  constructor(range: { first: number; count: number }) {
    this.first = range.first;
    this.count = range.count;
  }

  acquire(): number {
    if (this.inUse.size >= this.count) {
      throw new JobError('resource-exhausted', `all ${this.count} job uids are in use`);
    }
    for (;;) {
      const uid = this.first + this.next;
      this.next = (this.next + 1) % this.count;
      if (!this.inUse.has(uid)) {
        this.inUse.add(uid);
        return uid;
      }
    }
  }

  /** Marks a uid as in use by a job found running at start (its keeper was re-adopted). */
  claim(uid: number): void {
    if (uid >= this.first && uid < this.first + this.count) this.inUse.add(uid);
  }

  release(uid: number): void {
    this.inUse.delete(uid);
  }
}

/**
 * Refuses a range that overlaps an existing account or group (root, nobody, the API's user, a
 * person): a job must never act as anyone who exists.
 */
export function checkUidRangeUnused(range: { first: number; count: number }, etc = '/etc'): void {
  const last = range.first + range.count - 1;
  for (const file of ['passwd', 'group']) {
    const text = readFileSync(`${etc}/${file}`, 'utf8');
    for (const line of text.split('\n')) {
      const [name, , id] = line.split(':');
      const number = Number(id);
      if (name && Number.isInteger(number) && number >= range.first && number <= last) {
        throw new Error(
          `jobUids ${range.first}-${last} contains ${file === 'passwd' ? 'uid' : 'gid'} ${number} (${name} in ${etc}/${file}); choose a range no account uses`,
        );
      }
    }
  }
}
