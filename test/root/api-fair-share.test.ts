// One identity's burst does not fail another's calls: the executor is shared fairly between
// identities (a bounded queue in the API, a limit on each identity's calls in flight).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Job, JobServiceClient } from '../../api/generated/jobworker/v1/jobworker.ts';
import { outcomeOf, start, startStack, unary } from './api-kit.ts';
import type { Stack } from './api-kit.ts';

interface Context {
  stack: Stack;
  alice: JobServiceClient[];
  bob: JobServiceClient;
  alicesJob: string;
  bobsJob: string;
}

const fair = suite<Context>('fair share');
fair.before(async (context) => {
  context.stack = await startStack();
  // Several connections, as a busy client would open.
  context.alice = await Promise.all([0, 1, 2, 3].map(() => context.stack.client('alice')));
  context.bob = await context.stack.client('bob');
  context.alicesJob = (await start(context.alice[0] as JobServiceClient, { argv: ['true'] })).id;
  context.bobsJob = (await start(context.bob, { argv: ['true'] })).id;
});
fair.after(async ({ stack }) => {
  await stack.close();
});

const get = (client: JobServiceClient, id: string) =>
  unary<{ id: string }, Job>(client, 'getJob', { id });

fair(
  "one identity's burst of calls does not fail another identity's calls",
  async ({ alice, bob, alicesJob, bobsJob }) => {
    const burst = Array.from({ length: 4000 }, (_, i) =>
      outcomeOf(get(alice[i % alice.length] as JobServiceClient, alicesJob)),
    );
    // Bob's calls arrive while alice's burst is being served.
    await new Promise((resolve) => setImmediate(resolve));
    const bobs = await Promise.all(Array.from({ length: 200 }, () => outcomeOf(get(bob, bobsJob))));
    const alices = await Promise.all(burst);
    const count = (outcomes: string[]) => {
      const counts: Record<string, number> = {};
      for (const entry of outcomes) counts[entry] = (counts[entry] ?? 0) + 1;
      return counts;
    };
    assert.equal(count(bobs), { OK: 200 });
    // Alice's own calls beyond her share wait; past her queue they are refused in the API's
    // words, never the executor's.
    for (const entry of Object.keys(count(alices)))
      assert.ok(
        entry === 'OK' ||
          entry ===
            'RESOURCE_EXHAUSTED: too many calls of alice are waiting for the job executor; try again shortly',
        entry,
      );
  },
);

fair.run();
