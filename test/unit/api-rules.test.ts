// The API's pure rules: who may call what, identities from certificates, field names, message
// conversion, configuration.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  listingOwner,
  maySeeJob,
  METHOD_RULES,
  ruleFor,
  seesEveryJob,
} from '../../api/authorization-policy.ts';
import { API_DEFAULTS, loadApiConfig, parseApiConfig } from '../../api/config.ts';
import { HealthService } from '../../api/generated/grpc/health/v1/health.ts';
import {
  EndReason,
  JobServiceService,
  JobState,
  StorageKind,
} from '../../api/generated/jobworker/v1/jobworker.ts';
import { protoFieldPath } from '../../api/grpc-status.ts';
import { jobToMessage, listArgsFromRequest, specFromRequest } from '../../api/job-messages.ts';
import { peerIdentity } from '../../api/peer-identity.ts';
import type { PeerIdentity } from '../../api/peer-identity.ts';
import type { JobError } from '../../shared/errors.ts';
import type { JobRecord } from '../../shared/job.ts';

const rules = suite('api rules');

const as = (name: string, role: PeerIdentity['role']): PeerIdentity => ({ name, role });
const decision = (identity: PeerIdentity, method: string) => {
  try {
    ruleFor(identity, method);
    return 'allow';
  } catch (error) {
    return (error as JobError).code;
  }
};

rules('every method of both services has exactly one rule, and nothing else does', () => {
  const served = [...Object.values(JobServiceService), ...Object.values(HealthService)]
    .map((method) => method.path)
    .sort();
  assert.equal(Object.keys(METHOD_RULES).sort(), served);
});

rules(
  'roles: admin everything; user no listing of others; viewer read-only; no role nothing but health',
  () => {
    const job = (method: string) => `/jobworker.v1.JobService/${method}`;
    const table: [PeerIdentity, Record<string, string>][] = [
      [
        as('ada', 'admin'),
        {
          StartJob: 'allow',
          StopJob: 'allow',
          GetJob: 'allow',
          ListJobs: 'allow',
          WatchJobOutput: 'allow',
        },
      ],
      [
        as('alice', 'user'),
        {
          StartJob: 'allow',
          StopJob: 'allow',
          GetJob: 'allow',
          ListJobs: 'allow',
          WatchJobOutput: 'allow',
        },
      ],
      [
        as('vera', 'viewer'),
        {
          StartJob: 'permission-denied',
          StopJob: 'permission-denied',
          GetJob: 'allow',
          ListJobs: 'allow',
          WatchJobOutput: 'allow',
        },
      ],
      [
        as('nora', null),
        {
          StartJob: 'permission-denied',
          StopJob: 'permission-denied',
          GetJob: 'permission-denied',
          ListJobs: 'permission-denied',
          WatchJobOutput: 'permission-denied',
        },
      ],
    ];
    for (const [identity, expected] of table) {
      const seen = Object.fromEntries(
        Object.keys(expected).map((method) => [method, decision(identity, job(method))]),
      );
      assert.equal(seen, expected, identity.name);
      assert.is(decision(identity, '/grpc.health.v1.Health/Check'), 'allow');
    }
    assert.is(
      decision(as('ada', 'admin'), '/jobworker.v1.JobService/DeleteEverything'),
      'permission-denied',
    );
  },
);

rules('ownership: users see their own jobs only; listings are scoped', () => {
  assert.ok(maySeeJob(as('alice', 'user'), 'alice'));
  assert.not.ok(maySeeJob(as('alice', 'user'), 'bob'));
  assert.ok(maySeeJob(as('vera', 'viewer'), 'bob'));
  assert.ok(maySeeJob(as('ada', 'admin'), 'bob'));
  // Only a user's calls need the job's owner looked up before they are passed on.
  assert.ok(seesEveryJob(as('ada', 'admin')));
  assert.ok(seesEveryJob(as('vera', 'viewer')));
  assert.not.ok(seesEveryJob(as('alice', 'user')));
  assert.is(listingOwner(as('alice', 'user'), ''), 'alice');
  assert.is(listingOwner(as('alice', 'user'), 'alice'), 'alice');
  assert.throws(
    () => listingOwner(as('alice', 'user'), 'bob'),
    /users may list only their own jobs/,
  );
  assert.is(listingOwner(as('vera', 'viewer'), ''), '');
  assert.is(listingOwner(as('ada', 'admin'), 'bob'), 'bob');
});

rules('identity: exactly one CN; a role only from a known OU', () => {
  const context = (subject: Record<string, string | string[]>) =>
    ({ transportSecurityType: 'ssl', sslPeerCertificate: { subject } }) as unknown as Parameters<
      typeof peerIdentity
    >[0];
  assert.equal(peerIdentity(context({ CN: 'alice', OU: 'user' })), { name: 'alice', role: 'user' });
  assert.equal(peerIdentity(context({ CN: 'alice', OU: 'root' })), { name: 'alice', role: null });
  assert.equal(peerIdentity(context({ CN: 'alice' })), { name: 'alice', role: null });
  assert.equal(peerIdentity(context({ CN: 'alice', OU: ['user', 'admin'] })), {
    name: 'alice',
    role: null,
  });
  assert.throws(
    () => peerIdentity(context({ CN: ['alice', 'bob'], OU: 'admin' })),
    /exactly one CN/,
  );
  assert.throws(() => peerIdentity(context({ OU: 'admin' })), /exactly one CN/);
  assert.throws(() => peerIdentity(null), /verified client certificate is required/);
});

rules('field paths are named as the proto spells them', () => {
  const cases: [string, string][] = [
    ['spec.argv', 'argv'],
    ['spec.argv[3]', 'argv[3]'],
    ['spec.limits.memoryHighBytes', 'limits.memory_high_bytes'],
    ['spec.limits.cpusetCpus', 'limits.cpuset_cpus'],
    ['spec.workingDir', 'working_dir'],
    ['spec.timeoutMs', 'timeout'],
    ['spec.env key "MY_VAR"', 'env key "MY_VAR"'],
    // Map keys are data: the value under MY_VAR, never a mangled field name.
    ['spec.env.MY_VAR', 'env["MY_VAR"]'],
    ['spec.env.lower_Mixed9', 'env["lower_Mixed9"]'],
    ['graceMs', 'grace_period'],
    ['after', 'page_token'],
    ['id', 'id'],
  ];
  for (const [path, expected] of cases) assert.is(protoFieldPath(path), expected);
});

rules('a StartJobRequest becomes a checked JobSpec; empty means unset', () => {
  const spec = specFromRequest({
    argv: ['echo', 'hi'],
    env: { A: '1' },
    workingDir: '',
    limits: { cpus: 0.5, memoryBytes: undefined, pids: 10 },
    timeout: { seconds: 2, nanos: 500_000_000 },
  });
  assert.equal(spec, {
    argv: ['echo', 'hi'],
    env: { A: '1' },
    limits: { cpus: 0.5, pids: 10 },
    timeoutMs: 2500,
  });
  assert.throws(
    () => specFromRequest({ argv: [], env: {}, workingDir: '' }),
    /spec\.argv: must not be empty/,
  );
  assert.throws(
    () =>
      specFromRequest({ argv: ['x'], env: {}, workingDir: '', timeout: { seconds: -1, nanos: 0 } }),
    /timeout: must not be negative/,
  );
  // Representable but far too long: the rule broken, not "a whole number".
  assert.throws(
    () =>
      specFromRequest({
        argv: ['x'],
        env: {},
        workingDir: '',
        timeout: { seconds: 2 ** 52, nanos: 0 },
      }),
    /spec\.timeoutMs: must be at most 31622400000 ms/,
  );
});

rules('storage: the kind maps to the spec and back; an unknown kind is refused by name', () => {
  const request = (storageKind: number | undefined) => ({
    argv: ['true'],
    env: {},
    workingDir: '',
    limits: { storageBytes: 1 << 30 },
    ...(storageKind === undefined ? {} : { storageKind }),
  });
  assert.equal(specFromRequest(request(StorageKind.STORAGE_KIND_DISK)), {
    argv: ['true'],
    limits: { storageBytes: 1 << 30 },
    storageKind: 'disk',
  });
  assert.is(specFromRequest(request(StorageKind.STORAGE_KIND_MEMORY)).storageKind, 'memory');
  assert.is(specFromRequest(request(StorageKind.STORAGE_KIND_UNSPECIFIED)).storageKind, undefined);
  assert.is(specFromRequest(request(undefined)).storageKind, undefined);
  assert.throws(() => specFromRequest(request(7)), /^storage_kind: is not a storage kind$/);
  assert.is(protoFieldPath('spec.limits.storageBytes'), 'limits.storage_bytes');
});

rules('list requests: page size bounded, tokens checked, states mapped', () => {
  assert.equal(
    listArgsFromRequest({
      owner: '',
      state: JobState.JOB_STATE_FAILED,
      pageSize: 0,
      pageToken: '',
    }),
    { state: 'FAILED', limit: 500 },
  );
  assert.throws(
    () => listArgsFromRequest({ owner: '', state: 0, pageSize: 501, pageToken: '' }),
    /page_size: must be at most 500/,
  );
  assert.throws(
    () => listArgsFromRequest({ owner: '', state: 0, pageSize: 1, pageToken: 'xyz' }),
    /page_token: is not a token this server gave out/,
  );
});

rules('a record becomes a Job message: unset fields stay unset', () => {
  const record: JobRecord = {
    id: 'a'.repeat(32),
    owner: 'alice',
    argv: ['sleep', '1'],
    envNames: ['A'],
    workingDir: '/job',
    limits: { cpus: 1 },
    timeoutMs: 1500,
    state: 'STOPPED',
    endReason: 'stopped',
    exitCode: null,
    signal: 'SIGTERM',
    error: null,
    createdAt: 1_000,
    endedAt: 2_000,
    usage: { cpuSeconds: 0.1, memoryPeakBytes: 10, ioReadBytes: 0, ioWriteBytes: 0 },
    outputBytes: 0,
    outputTruncated: false,
  };
  const job = jobToMessage(record);
  assert.is(job.state, JobState.JOB_STATE_STOPPED);
  assert.is(job.endReason, EndReason.END_REASON_STOPPED);
  assert.is(job.exitCode, undefined);
  assert.is(job.signal, 'SIGTERM');
  assert.equal(job.timeout, { seconds: 1, nanos: 500_000_000 });
  assert.equal([job.startedAt?.getTime(), job.endedAt?.getTime()], [1000, 2000]);
  assert.is(job.storageKind, undefined, 'a record from before storage kinds');
  assert.is(
    jobToMessage({ ...record, storageKind: 'disk' }).storageKind,
    StorageKind.STORAGE_KIND_DISK,
  );
});

rules('api config: defaults complete and frozen; errors name the key', () => {
  const config = parseApiConfig({});
  assert.equal(config, API_DEFAULTS);
  assert.ok(Object.isFrozen(config.tls));
  const refusal = (raw: unknown) => {
    try {
      parseApiConfig(raw, 'api.json');
      return 'accepted';
    } catch (error) {
      return (error as Error).message;
    }
  };
  assert.is(refusal({ user: 'root' }), 'api.json: user: must not be root');
  assert.is(
    refusal({ listen: 'localhost' }),
    'api.json: listen: must be host:port (an IPv6 host in brackets)',
  );
  assert.is(
    refusal({ listen: '[::1]:70000' }),
    'api.json: listen: port 70000 is not between 0 and 65535',
  );
  assert.is(
    refusal({ tls: { caFile: 'ca.crt', certFile: '/c', keyFile: '/k' } }),
    'api.json: tls.caFile: must be an absolute path',
  );
  assert.is(
    refusal({ quotas: { maxRunningJobs: 1, maxRunningJobsPerIdentity: 2 } }),
    'api.json: quotas.maxRunningJobsPerIdentity: must be at most quotas.maxRunningJobs',
  );
  assert.is(
    refusal({ maxWatchers: 10, maxWatchersPerIdentity: 11 }),
    'api.json: maxWatchersPerIdentity: must be at most maxWatchers',
  );
  assert.is(refusal({ tlss: {} }), 'api.json: tlss: is not a known field');
});

rules('the sample api config in deploy/ is valid', () => {
  const sample = loadApiConfig(new URL('../../deploy/api.sample.json', import.meta.url).pathname);
  assert.equal(sample.tls.crlFile, '/etc/jobworker/pki/crl.pem');
  assert.equal({ ...sample, listen: API_DEFAULTS.listen, tls: API_DEFAULTS.tls }, API_DEFAULTS);
});

rules.run();
