// Fair sharing of the executor between identities (api/fair-admission.ts).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FairAdmission } from '../../api/fair-admission.ts';
import type { JobError } from '../../shared/errors.ts';

const admission = suite('fair admission');

const limits = { capacity: 4, perIdentity: 2, queuedPerIdentity: 3, queuedTotal: 5 };

/** Starts a call and records when it gets its place. */
function enter(fair: FairAdmission, who: string, log: string[], deadline = Infinity) {
  const entered = fair.acquire(who, deadline).then(
    (release) => {
      log.push(who);
      return release;
    },
    (error: JobError) => {
      log.push(`${who}: ${error.code}`);
      return () => undefined;
    },
  );
  return entered;
}

admission('an identity has at most its share in flight; others go straight through', async () => {
  const fair = new FairAdmission(limits);
  const log: string[] = [];
  const alice = [0, 1, 2, 3].map(() => enter(fair, 'alice', log));
  const bob = [0, 1].map(() => enter(fair, 'bob', log));
  await Promise.resolve();
  await Promise.resolve();
  assert.equal(log, ['alice', 'alice', 'bob', 'bob']);
  // Alice's third call gets the place her first frees, not before.
  (await alice[0])?.();
  await Promise.resolve();
  await Promise.resolve();
  assert.equal(log.slice(4), ['alice']);
  for (const release of [alice[1], alice[2], bob[0], bob[1]]) (await release)?.();
  (await alice[3])?.();
  assert.equal(log.length, 6);
});

admission('places that free up go to waiting identities in turn', async () => {
  const fair = new FairAdmission({ ...limits, perIdentity: 4, capacity: 2 });
  const log: string[] = [];
  const first = [enter(fair, 'alice', log), enter(fair, 'alice', log)];
  const [alice3, alice4, bob, carol] = [
    enter(fair, 'alice', log),
    enter(fair, 'alice', log),
    enter(fair, 'bob', log),
    enter(fair, 'carol', log),
  ];
  for (const release of first) (await release)();
  (await alice3)();
  (await bob)();
  (await carol)();
  (await alice4)();
  assert.equal(log, ['alice', 'alice', 'alice', 'bob', 'carol', 'alice']);
});

admission(
  'queues are bounded; a waiting call leaves at its deadline or with its client',
  async () => {
    const fair = new FairAdmission(limits);
    const log: string[] = [];
    const held = [enter(fair, 'alice', log), enter(fair, 'alice', log)];
    const queued = [1, 2, 3].map(() => enter(fair, 'alice', log));
    await enter(fair, 'alice', log);
    assert.equal(log.slice(2), ['alice: resource-exhausted']);
    const bobs = [enter(fair, 'bob', log), enter(fair, 'bob', log)];
    await Promise.all(bobs);
    // The capacity (4) is taken: bob's next call waits, until its deadline.
    await enter(fair, 'bob', log, Date.now() + 20);
    assert.equal(log.slice(5), ['bob: deadline-exceeded']);
    const gone = new AbortController();
    const leaving = fair
      .acquire('bob', Infinity, gone.signal)
      .catch((error: JobError) => error.code);
    gone.abort();
    assert.is(await leaving, 'cancelled');
    for (const release of [...held, ...bobs]) (await release)();
    for (const release of queued) (await release)();
    assert.equal(log.slice(6), ['alice', 'alice', 'alice']);
  },
);

admission.run();
