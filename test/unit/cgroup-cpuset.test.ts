import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { JobError } from '../../shared/errors.ts';
import { formatCpuList, parseCpuList, validateCpusetCpus } from '../../executor/cgroup/cpuset.ts';

function invalid(requested: string, parent: string): string {
  try {
    validateCpusetCpus(requested, parent);
  } catch (error) {
    assert.instance(error, JobError);
    assert.is((error as JobError).code, 'invalid-argument');
    return (error as JobError).message;
  }
  throw new Error(`"${requested}" was accepted`);
}

test('parses the kernel list syntax', () => {
  assert.equal(parseCpuList('0'), [0]);
  assert.equal(parseCpuList('0-1,3'), [0, 1, 3]);
  assert.equal(parseCpuList('3,0-2,1'), [0, 1, 2, 3]);
  assert.equal(parseCpuList(''), []);
});

test('formats the shortest list', () => {
  assert.is(formatCpuList([0, 1, 3]), '0-1,3');
  assert.is(formatCpuList([0, 2, 4]), '0,2,4');
  assert.is(formatCpuList([5, 6, 7, 8]), '5-8');
  assert.is(formatCpuList([]), '');
});

test('a valid request comes back canonical', () => {
  assert.is(validateCpusetCpus('1,0', '0-3'), '0-1');
  assert.is(validateCpusetCpus('0-1,3', '0-3\n'), '0-1,3');
});

test('malformed lists name the field and the rule', () => {
  const syntax = 'is not a CPU list like "0-1,3" (numbers and ranges, comma-separated)';
  assert.is(invalid('0-', '0-3'), `limits.cpusetCpus: "0-" ${syntax}`);
  assert.is(invalid('a', '0-3'), `limits.cpusetCpus: "a" ${syntax}`);
  assert.is(invalid('0,,1', '0-3'), `limits.cpusetCpus: "0,,1" ${syntax}`);
  assert.is(invalid(' 0', '0-3'), `limits.cpusetCpus: " 0" ${syntax}`);
  assert.is(invalid('0\n', '0-3'), `limits.cpusetCpus: "0\\n" ${syntax}`);
  assert.is(invalid('-1', '0-3'), `limits.cpusetCpus: "-1" ${syntax}`);
  assert.is(invalid('0-7:2/4', '0-7'), `limits.cpusetCpus: "0-7:2/4" ${syntax}`);
  assert.is(invalid('3-1', '0-3'), 'limits.cpusetCpus: range "3-1" runs backwards');
  assert.is(invalid('0-100000', '0-3'), 'limits.cpusetCpus: CPU 100000 is above 8191');
  assert.is(invalid('', '0-3'), 'limits.cpusetCpus: must name at least one CPU');
});

test('every CPU must be available to the executor', () => {
  assert.is(
    invalid('0-2,5', '0-1'),
    'limits.cpusetCpus: CPU 2,5 is not available to jobs (available: "0-1")',
  );
  assert.is(invalid('0', ''), 'limits.cpusetCpus: CPU 0 is not available to jobs (available: "")');
});

test.run();
