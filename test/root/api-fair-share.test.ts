// One identity's burst does not fail another's calls: the executor is shared fairly between
// identities (a bounded queue in the API, a limit on each identity's calls in flight).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { status } from '@grpc/grpc-js';
import type { ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import type {
  Job,
  JobServiceClient,
  OutputChunk,
} from '../../api/generated/jobworker/v1/jobworker.ts';
import { sleep } from './executor-kit.ts';
import { outcomeOf, start, startStack, unary } from './api-kit.ts';
import type { Stack } from './api-kit.ts';

interface Context {
  stack: Stack;
  alice: JobServiceClient[];
  bob: JobServiceClient;
  alicesJob: string;
  bobsJob: string;
  vera: JobServiceClient;
}

const fair = suite<Context>('fair share');
fair.before(async (context) => {
  context.stack = await startStack({ maxWatchers: 6, maxWatchersPerIdentity: 2 });
  // Several connections, as a busy client would open.
  context.alice = await Promise.all([0, 1, 2, 3].map(() => context.stack.client('alice')));
  context.bob = await context.stack.client('bob');
  context.alicesJob = (await start(context.alice[0] as JobServiceClient, { argv: ['true'] })).id;
  context.bobsJob = (await start(context.bob, { argv: ['true'] })).id;
  context.vera = await context.stack.client('vera');
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

/** Opens a watch of a running job; resolves once it streams, or with how it was refused. */
function openWatch(
  client: JobServiceClient,
  id: string,
): Promise<{ stream: ClientReadableStream<OutputChunk>; refused: string | null }> {
  return new Promise((resolve) => {
    const stream = client.watchJobOutput({ id, offset: 0 });
    stream.once('data', () => resolve({ stream, refused: null }));
    stream.on('error', (error: ServiceError) =>
      resolve({ stream, refused: `${status[error.code]}: ${error.details}` }),
    );
  });
}

fair(
  'one identity cannot take every output stream: a limit per identity besides the global one',
  async ({ stack, alice, bob, vera }) => {
    const ticking = { argv: ['sh', '-c', 'while :; do echo tick; sleep 0.1; done'] };
    const alices = await start(alice[0] as JobServiceClient, ticking);
    const bobs = await start(bob, ticking);
    const opened = [
      await openWatch(alice[0] as JobServiceClient, alices.id),
      await openWatch(alice[1] as JobServiceClient, alices.id),
    ];
    const third = await openWatch(alice[2] as JobServiceClient, alices.id);
    assert.is(
      third.refused,
      'RESOURCE_EXHAUSTED: alice already has the maximum of 2 output streams per identity',
    );
    // Others are not locked out, up to the global limit (6).
    for (const [client, id] of [
      [bob, bobs.id],
      [bob, bobs.id],
      [vera, alices.id],
      [vera, bobs.id],
    ] as const) {
      const watch = await openWatch(client, id);
      assert.is(watch.refused, null);
      opened.push(watch);
    }
    const ada = await openWatch(await stack.client('ada'), alices.id);
    assert.is(
      ada.refused,
      'RESOURCE_EXHAUSTED: the server already serves its maximum of 6 output streams',
    );
    // A stream that ends gives its place back (once the server has seen it go).
    opened[0]?.stream.cancel();
    let again = await openWatch(alice[2] as JobServiceClient, alices.id);
    for (let tries = 0; again.refused !== null && tries < 50; tries += 1) {
      await sleep(100);
      again = await openWatch(alice[2] as JobServiceClient, alices.id);
    }
    assert.is(again.refused, null);
    for (const watch of [...opened, again]) {
      watch.stream.on('error', () => undefined);
      watch.stream.cancel();
    }
    await unary(alice[0] as JobServiceClient, 'stopJob', { id: alices.id });
    await unary(bob, 'stopJob', { id: bobs.id });
  },
);

fair.run();
