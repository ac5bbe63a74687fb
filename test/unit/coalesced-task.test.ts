// The retention sweep's throttle: a burst of requests costs one run now and one after the
// interval, never two at once, and none after cancel.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CoalescedTask } from '../../executor/runtime/coalesced-task.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const coalesced = suite('coalesced task');

coalesced('a burst runs once at once and once more after the interval', async () => {
  let runs = 0;
  const task = new CoalescedTask(() => {
    runs += 1;
    return Promise.resolve();
  }, 100);
  for (let i = 0; i < 1000; i += 1) task.request();
  assert.is(runs, 1, 'the first request runs at once');
  await sleep(30);
  assert.is(runs, 1, 'the rest wait for the interval');
  await sleep(200);
  assert.is(runs, 2, 'then one run covers them all');
  await sleep(150);
  assert.is(runs, 2, 'and nothing runs unasked');
  task.cancel();
});

coalesced('a request during a run is not lost, and runs never overlap', async () => {
  let active = 0;
  let overlapped = false;
  let runs = 0;
  const task = new CoalescedTask(async () => {
    active += 1;
    overlapped ||= active > 1;
    runs += 1;
    await sleep(50);
    active -= 1;
  }, 10);
  task.request();
  await sleep(20);
  task.request(); // while the first run is still going
  await sleep(150);
  assert.is(runs, 2);
  assert.not.ok(overlapped);
  task.cancel();
});

coalesced('nothing runs after cancel', async () => {
  let runs = 0;
  const task = new CoalescedTask(() => {
    runs += 1;
    return Promise.resolve();
  }, 50);
  task.request();
  task.request();
  task.cancel();
  task.request();
  await sleep(120);
  assert.is(runs, 1);
});

coalesced.run();
