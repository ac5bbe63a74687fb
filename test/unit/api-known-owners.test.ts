// The API's memory of job owners: first answers kept, bounded, oldest forgotten first.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KnownOwners } from '../../api/known-owners.ts';

const owners = suite('known owners');

owners('remembers what it was told, and nothing else', () => {
  const known = new KnownOwners();
  known.remember('a'.repeat(32), 'alice');
  assert.is(known.get('a'.repeat(32)), 'alice');
  assert.is(known.get('b'.repeat(32)), undefined);
});

owners('keeps at most its bound, forgetting the oldest first', () => {
  const known = new KnownOwners(3);
  for (const id of ['1', '2', '3', '4']) known.remember(id, `owner-${id}`);
  assert.is(known.size, 3);
  assert.is(known.get('1'), undefined);
  assert.is(known.get('4'), 'owner-4');
  // Told again, an entry neither changes nor moves: the id's owner never changes.
  known.remember('2', 'someone else');
  known.remember('5', 'owner-5');
  assert.is(known.get('2'), undefined);
  assert.is(known.get('3'), 'owner-3');
});

owners.run();
