// Output streams are bounded in all and per identity, as running jobs are: one identity holding
// streams never locks the others out.
import { JobError } from '../shared/errors.ts';

export class WatcherSlots {
  private readonly max: number;
  private readonly maxPerIdentity: number;
  private total = 0;
  private readonly byIdentity = new Map<string, number>();

  constructor(max: number, maxPerIdentity: number) {
    this.max = max;
    this.maxPerIdentity = maxPerIdentity;
  }

  /** A place for one stream of `identity`, or RESOURCE_EXHAUSTED; returns how to give it back. */
  take(identity: string): () => void {
    const mine = this.byIdentity.get(identity) ?? 0;
    if (mine >= this.maxPerIdentity) {
      throw new JobError(
        'resource-exhausted',
        `${identity} already has the maximum of ${this.maxPerIdentity} output streams per identity`,
      );
    }
    if (this.total >= this.max) {
      throw new JobError(
        'resource-exhausted',
        `the server already serves its maximum of ${this.max} output streams`,
      );
    }
    this.total += 1;
    this.byIdentity.set(identity, mine + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.total -= 1;
      const left = (this.byIdentity.get(identity) ?? 1) - 1;
      if (left === 0) this.byIdentity.delete(identity);
      else this.byIdentity.set(identity, left);
    };
  }
}
