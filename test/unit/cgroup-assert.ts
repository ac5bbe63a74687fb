// Assertions the cgroup unit tests share that uvu/assert lacks.
import * as assert from 'uvu/assert';

/** Asserts that fn rejects with a message matching pattern. */
export async function rejects(fn: () => Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await fn();
  } catch (error) {
    assert.match((error as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected a rejection matching ${pattern}`);
}
