import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { JobError } from '../../shared/errors.ts';
import {
  CPU_PERIOD_US,
  cpusToQuota,
  kernelInteger,
  microsecondsToSeconds,
  MIN_CPU_QUOTA_US,
  nanosecondsToSeconds,
} from '../../executor/cgroup/units.ts';

function assertInvalid(fn: () => unknown, message: string): void {
  try {
    fn();
  } catch (error) {
    assert.instance(error, JobError);
    assert.is((error as JobError).code, 'invalid-argument');
    assert.is((error as JobError).message, message);
    return;
  }
  assert.unreachable(`expected JobError: ${message}`);
}

test('cpus fraction becomes quota per 100 ms period', () => {
  assert.is(CPU_PERIOD_US, 100_000);
  assert.equal(cpusToQuota(0.5), { quotaUs: 50_000, periodUs: 100_000 });
  assert.equal(cpusToQuota(1), { quotaUs: 100_000, periodUs: 100_000 });
  assert.equal(cpusToQuota(2.25), { quotaUs: 225_000, periodUs: 100_000 });
  assert.equal(cpusToQuota(0.123456), { quotaUs: 12_346, periodUs: 100_000 });
});

test('cpus quota never goes below the kernel minimum of 1000 µs', () => {
  assert.is(MIN_CPU_QUOTA_US, 1_000);
  assert.equal(cpusToQuota(0.001), { quotaUs: 1_000, periodUs: 100_000 });
  assert.equal(cpusToQuota(0.000001), { quotaUs: 1_000, periodUs: 100_000 });
});

test('cpus must be a finite number above 0', () => {
  assertInvalid(() => cpusToQuota(0), 'limits.cpus: must be a number above 0, got 0');
  assertInvalid(() => cpusToQuota(-1), 'limits.cpus: must be a number above 0, got -1');
  assertInvalid(() => cpusToQuota(NaN), 'limits.cpus: must be a number above 0, got NaN');
  assertInvalid(() => cpusToQuota(Infinity), 'limits.cpus: must be a number above 0, got Infinity');
  assertInvalid(() => cpusToQuota(1e12), 'limits.cpus: 1000000000000 is too large');
});

test('counts and bytes are written as plain decimal integers', () => {
  assert.is(kernelInteger('memoryBytes', 33_554_432), '33554432');
  assert.is(kernelInteger('memoryBytes', Number.MAX_SAFE_INTEGER), '9007199254740991');
  assert.is(kernelInteger('pids', 1), '1');
});

test('counts and bytes refuse zero, fractions, negatives and unsafe integers', () => {
  const rule = 'must be a whole number above 0';
  assertInvalid(() => kernelInteger('pids', 0), `limits.pids: ${rule}, got 0`);
  assertInvalid(() => kernelInteger('pids', 1.5), `limits.pids: ${rule}, got 1.5`);
  assertInvalid(() => kernelInteger('ioReadBps', -5), `limits.ioReadBps: ${rule}, got -5`);
  assertInvalid(() => kernelInteger('memoryBytes', 1e21), `limits.memoryBytes: ${rule}, got 1e+21`);
});

test('usage counters become seconds', () => {
  assert.is(microsecondsToSeconds(1_500_000), 1.5);
  assert.is(nanosecondsToSeconds(2_500_000_000), 2.5);
});

test.run();
