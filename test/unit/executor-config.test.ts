import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError } from '../../shared/config-file.ts';
import {
  EXECUTOR_DEFAULTS,
  loadExecutorConfig,
  parseExecutorConfig,
} from '../../executor/config.ts';
import { checkUidRangeUnused, UidPool } from '../../executor/runtime/uid-pool.ts';

const config = suite('executor config');

function refusal(raw: unknown): string {
  try {
    parseExecutorConfig(raw, 'executor.json');
  } catch (error) {
    assert.instance(error, ConfigError);
    return (error as Error).message;
  }
  throw new Error('accepted');
}

config('an empty config is the defaults, complete and frozen', () => {
  const loaded = parseExecutorConfig({});
  assert.equal(loaded, EXECUTOR_DEFAULTS);
  assert.ok(
    Object.isFrozen(loaded) &&
      Object.isFrozen(loaded.limits.max) &&
      Object.isFrozen(loaded.jobUids),
  );
  assert.throws(() => {
    (loaded as { stateDir: string }).stateDir = '/elsewhere';
  });
});

config('errors name the key and the rule', () => {
  const cases: [unknown, string][] = [
    [{ stateDri: '/x' }, 'executor.json: stateDri: is not a known field'],
    [{ stateDir: 'relative' }, 'executor.json: stateDir: must be an absolute path'],
    [
      { stateDir: `/${'s'.repeat(60)}` },
      "executor.json: stateDir: must be at most 57 bytes (job keepers' Unix sockets live below it)",
    ],
    [{ jobsCgroup: 'system.slice/x' }, 'executor.json: jobsCgroup: must be an absolute path'],
    [
      { jobsCgroup: '/a/../b' },
      'executor.json: jobsCgroup: must be a normalised path (no empty, "." or ".." components, no trailing /)',
    ],
    [{ jobsCgroup: '/' }, 'executor.json: jobsCgroup: must name a cgroup below the root'],
    [
      { socketPath: `/${'s'.repeat(120)}` },
      'executor.json: socketPath: must be at most 107 bytes (a Unix socket path)',
    ],
    [{ jobUids: { first: 0, count: 10 } }, 'executor.json: jobUids.first: must be at least 1000'],
    [
      { jobUids: { first: 65000, count: 1000 } },
      "executor.json: jobUids: the range 65000-65999 contains 65534 (nobody, the API's user)",
    ],
    [
      { limits: { max: { cpus: 0.5 } } },
      'executor.json: limits.defaults.cpus: must be at most limits.max.cpus (0.5)',
    ],
    [{ limits: { max: { cpu: 1 } } }, 'executor.json: limits.max.cpu: is not a known field'],
    [
      { stopGraceMs: 10_000, maxStopGraceMs: 1000 },
      'executor.json: stopGraceMs: must be at most maxStopGraceMs (1000)',
    ],
    [
      { logLevel: 'loud' },
      'executor.json: logLevel: must be one of fatal, error, warn, info, debug, trace',
    ],
  ];
  for (const [raw, message] of cases) assert.is(refusal(raw), message);
});

config('a config file: bad JSON and unreadable files name the file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'jobworker-unit-'));
  try {
    await writeFile(join(dir, 'bad.json'), '{ "stateDir": ');
    assert.throws(
      () => loadExecutorConfig(join(dir, 'bad.json')),
      new RegExp(`^${dir}/bad.json: not valid JSON`),
    );
    assert.throws(
      () => loadExecutorConfig(join(dir, 'missing.json')),
      /missing.json: cannot read config file/,
    );
    await writeFile(join(dir, 'list.json'), '[]');
    assert.throws(
      () => loadExecutorConfig(join(dir, 'list.json')),
      new RegExp(`^${dir}/list.json: must be an object, not an array$`),
    );
    await writeFile(join(dir, 'good.json'), JSON.stringify({ maxRunningJobs: 3 }));
    assert.is(loadExecutorConfig(join(dir, 'good.json')).maxRunningJobs, 3);
  } finally {
    await rm(dir, { recursive: true });
  }
});

config('the job uid range must not hold an existing account', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'jobworker-unit-'));
  try {
    await writeFile(
      join(dir, 'passwd'),
      'root:x:0:0::/root:/bin/sh\nalice:x:200005:200005::/home/alice:/bin/sh\n',
    );
    await writeFile(join(dir, 'group'), 'root:x:0:\n');
    assert.throws(
      () => checkUidRangeUnused({ first: 200_000, count: 10 }, dir),
      /contains uid 200005 \(alice in .*\/passwd\)/,
    );
    checkUidRangeUnused({ first: 300_000, count: 10 }, dir);
  } finally {
    await rm(dir, { recursive: true });
  }
});

config('uids are handed out round-robin, never twice at once, and run out clearly', () => {
  const pool = new UidPool({ first: 1000, count: 3 });
  assert.equal([pool.acquire(), pool.acquire()], [1000, 1001]);
  pool.release(1000);
  assert.equal([pool.acquire(), pool.acquire()], [1002, 1000]);
  assert.throws(() => pool.acquire(), /all 3 job uids are in use/);
});

config('the sample config in deploy/ is valid and spells out the defaults', () => {
  const sample = loadExecutorConfig(
    new URL('../../deploy/executor.sample.json', import.meta.url).pathname,
  );
  assert.equal({ ...sample, helperPath: EXECUTOR_DEFAULTS.helperPath }, EXECUTOR_DEFAULTS);
});

config.run();
