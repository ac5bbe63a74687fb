import { Unpackr } from 'msgpackr';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { JobError } from '../../shared/errors.ts';
import { jobSpecSchema, MAX_ARGV_ENV_BYTES } from '../../shared/job-spec-schema.ts';

const spec = suite('job spec checks');

function refusal(value: unknown): string {
  try {
    jobSpecSchema(value, 'spec');
  } catch (error) {
    assert.instance(error, JobError);
    assert.is((error as JobError).code, 'invalid-argument');
    return (error as Error).message;
  }
  throw new Error('accepted');
}

spec('a full spec passes and comes back as a fresh plain object', () => {
  const input = {
    argv: ['ls', '-la', ''],
    env: { A_B: 'x', EMPTY: '' },
    workingDir: '/usr/share',
    limits: { cpus: 0.5, memoryBytes: 64 << 20, pids: 10, cpusetCpus: '0-1,3' },
    timeoutMs: 1000,
  };
  const checked = jobSpecSchema(input, 'spec');
  assert.equal(checked, input);
  assert.is.not(checked, input);
});

spec('every rule names its field', () => {
  const cases: [unknown, string][] = [
    [null, 'spec: must be an object, not null'],
    [{}, 'spec.argv: is required'],
    [{ argv: [] }, 'spec.argv: must not be empty'],
    [{ argv: [''] }, 'spec.argv[0]: must not be empty (it names the program)'],
    [{ argv: ['a', 1] }, 'spec.argv[1]: must be a string, not a number'],
    [{ argv: ['a\0b'] }, 'spec.argv[0]: must not contain a NUL character'],
    [{ argv: ['a'], extra: 1 }, 'spec.extra: is not a known field'],
    [
      { argv: ['a'], env: { '1X': 'v' } },
      'spec.env key "1X": must be a name of letters, digits and _, not starting with a digit',
    ],
    [
      { argv: ['a'], env: { 'A=B': 'v' } },
      'spec.env key "A=B": must be a name of letters, digits and _, not starting with a digit',
    ],
    [{ argv: ['a'], env: { A: 3 } }, 'spec.env.A: must be a string, not a number'],
    [{ argv: ['a'], workingDir: 'relative' }, 'spec.workingDir: must be an absolute path'],
    [
      { argv: ['a'], workingDir: '/a/../etc' },
      'spec.workingDir: must be a normalised path (no empty, "." or ".." components, no trailing /)',
    ],
    [
      { argv: ['a'], workingDir: '/a//b' },
      'spec.workingDir: must be a normalised path (no empty, "." or ".." components, no trailing /)',
    ],
    [{ argv: ['a'], limits: { cpus: 0 } }, 'spec.limits.cpus: must be at least 0.01 cores'],
    [{ argv: ['a'], limits: { cpus: Number.NaN } }, 'spec.limits.cpus: must be a number, not NaN'],
    [
      { argv: ['a'], limits: { memoryBytes: 1024 } },
      'spec.limits.memoryBytes: must be at least 4194304 bytes',
    ],
    [
      { argv: ['a'], limits: { memoryBytes: 1.5e7 + 0.5 } },
      'spec.limits.memoryBytes: must be a whole number',
    ],
    [{ argv: ['a'], limits: { pids: 0 } }, 'spec.limits.pids: must be at least 1'],
    [
      { argv: ['a'], limits: { cpusetCpus: '0-' } },
      'spec.limits.cpusetCpus: must be a cpu list such as 0-1,3',
    ],
    [{ argv: ['a'], limits: { swap: 1 } }, 'spec.limits.swap: is not a known field'],
    [
      { argv: ['a'], limits: { memoryBytes: 8 << 20, memoryHighBytes: 16 << 20 } },
      'spec.limits.memoryHighBytes: must not be above limits.memoryBytes',
    ],
    [{ argv: ['a'], timeoutMs: -1 }, 'spec.timeoutMs: must be at least 1 ms'],
  ];
  for (const [input, message] of cases) assert.is(refusal(input), message, JSON.stringify(input));
});

spec('argv and env together are bounded', () => {
  const big = 'x'.repeat(100 * 1024);
  assert.match(
    refusal({ argv: ['a', big, big, big] }),
    new RegExp(`^spec.argv: argv and env together must be at most ${MAX_ARGV_ENV_BYTES} bytes`),
  );
});

spec('what msgpack can smuggle in is refused: the 0xc1 object, prototypes, binary', () => {
  const unpackr = new Unpackr({ useRecords: false });
  const strange: unknown = unpackr.unpack(Buffer.from([0xc1]));
  assert.is(refusal(strange), 'spec: must be a plain object');
  assert.is(
    refusal({ argv: ['a'], limits: Object.create({ cpus: 1 }) as unknown }),
    'spec.limits: must be a plain object',
  );
  assert.is(refusal({ argv: [Buffer.from('ls')] }), 'spec.argv[0]: must be a string, not bytes');
  const hostile = JSON.parse('{"argv":["a"],"env":{"__proto__":"x"}}') as unknown;
  assert.equal(jobSpecSchema(hostile, 'spec').env, JSON.parse('{"__proto__":"x"}') as unknown);
  assert.is(({} as Record<string, unknown>).x, undefined);
});

spec.run();
