// Whose each recently seen job is, as the executor said: a job's owner never changes and its id
// is never reused, so an answer, once had, stays true. Authorization asks here first and the
// executor only for a job it has not seen (a user watching or stopping the job it just started
// costs no trip for the owner). The oldest entries go past MAX_KNOWN_OWNERS; a job deleted since
// is still named here, and the executor's answer to the call itself says not-found.

/** About 100 bytes each: a megabyte at most. */
export const MAX_KNOWN_OWNERS = 10_000;

export class KnownOwners {
  private readonly owners = new Map<string, string>();
  private readonly max: number;

  constructor(max = MAX_KNOWN_OWNERS) {
    this.max = max;
  }

  get(id: string): string | undefined {
    return this.owners.get(id);
  }

  remember(id: string, owner: string): void {
    if (this.owners.has(id)) return;
    this.owners.set(id, owner);
    if (this.owners.size > this.max) {
      const oldest = this.owners.keys().next().value as string;
      this.owners.delete(oldest);
    }
  }

  get size(): number {
    return this.owners.size;
  }
}
