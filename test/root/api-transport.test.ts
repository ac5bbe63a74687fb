// The API's transport security, checked from outside against the running stack: the mutual-TLS
// matrix (Node's TLS client, openssl s_client, grpc-js), the identity of the running API process,
// and two TLS scanners (sslscan, testssl.sh).
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import tls from 'node:tls';
import { credentials, Metadata, status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { JobServiceClient } from '../../api/generated/jobworker/v1/jobworker.ts';
import { KEY_EXCHANGE_GROUPS, TLS13_SUITES } from '../../api/tls-credentials.ts';
import { startStack } from './api-kit.ts';
import type { Stack } from './api-kit.ts';
import { TEST_PREFIX, sleep } from './executor-kit.ts';
import { TEST_SOCKET_GID } from './executor-process-kit.ts';
import { runCommand } from './external-command-kit.ts';

interface KeyPair {
  cert: string;
  key: string;
}

interface Context {
  stack: Stack;
  scratch: string;
  /** A client certificate (OU admin) issued by a second CA the API does not trust. */
  foreign: KeyPair;
  /** A client certificate (OU admin) of the right CA, valid 2020-01-01 to 2021-01-01. */
  expired: KeyPair;
  /** The API's own server certificate: right CA, but its EKU is serverAuth only. */
  serverPair: KeyPair;
  ada: KeyPair;
}

const SUITES = TLS13_SUITES.split(':').sort();
/** sslscan's names for the groups of api/tls-credentials.ts. */
const sslscanGroupName = (group: string) =>
  ({ X25519: 'x25519', 'P-384': 'secp384r1', 'P-256': 'secp256r1' })[group] ?? group;
const EXPIRED_VALIDITY = ['--not-before', '20200101000000Z', '--not-after', '20210101000000Z'];

const transport = suite<Context>('api transport');

transport.before(async (context) => {
  context.stack = await startStack();
  context.scratch = await mkdtemp(`/var/tmp/${TEST_PREFIX}transport-`);
  const pki = (...args: string[]) => execFileSync('bash', ['scripts/pki.sh', ...args]);
  const otherCa = join(context.scratch, 'other-ca');
  pki('ca', otherCa);
  pki('client', otherCa, 'mallory', 'admin');
  context.foreign = pairIn(otherCa, 'mallory');
  const dir = context.stack.pki.dir;
  pki('client', dir, 'old', 'admin', ...EXPIRED_VALIDITY);
  context.expired = pairIn(dir, 'old');
  context.serverPair = { cert: join(dir, 'server.crt'), key: join(dir, 'private', 'server.key') };
  context.ada = context.stack.pki.cert('ada');
});

transport.after(async ({ stack, scratch }) => {
  await stack?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

function pairIn(dir: string, name: string): KeyPair {
  return { cert: join(dir, 'clients', `${name}.crt`), key: join(dir, 'clients', `${name}.key`) };
}

interface ProbeResult {
  /** The handshake as the client saw it complete (in TLS 1.3 the client finishes first). */
  protocol: string | null;
  cipher: string | null;
  alpn: string | false | null;
  /** The first bytes the server sent as application data (its HTTP/2 SETTINGS frame). */
  serverBytes: Buffer;
  errorCode: string | null;
}

/**
 * A bare TLS connection, as grpc-js would make it, that sends nothing after the handshake: an
 * accepted client is greeted by the server's HTTP/2 SETTINGS frame; a refused one sees an alert
 * or the connection closed without a single byte of application data.
 */
async function probe(context: Context, pair: KeyPair | null): Promise<ProbeResult> {
  const ca = await readFile(context.stack.pki.ca);
  const own = pair ? { cert: await readFile(pair.cert), key: await readFile(pair.key) } : {};
  return new Promise((resolve, reject) => {
    const result: ProbeResult = {
      protocol: null,
      cipher: null,
      alpn: null,
      serverBytes: Buffer.alloc(0),
      errorCode: null,
    };
    const socket = tls.connect({
      host: '127.0.0.1',
      port: context.stack.port,
      servername: 'localhost',
      ca,
      ...own,
      ALPNProtocols: ['h2'],
    });
    const guard = setTimeout(() => {
      socket.destroy();
      reject(new Error('the server neither answered nor closed the connection within 20 s'));
    }, 20_000);
    socket.on('secureConnect', () => {
      result.protocol = socket.getProtocol();
      result.cipher = socket.getCipher().standardName;
      result.alpn = socket.alpnProtocol;
    });
    socket.on('data', (data: Buffer) => {
      result.serverBytes = Buffer.concat([result.serverBytes, data]);
      if (result.serverBytes.length >= 9) socket.destroy();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => (result.errorCode = error.code ?? null));
    socket.on('close', () => {
      clearTimeout(guard);
      resolve(result);
    });
  });
}

/** A ListJobs call with the given client certificate (or none): its gRPC status code. */
async function listJobsAs(context: Context, pair: KeyPair | null): Promise<number> {
  const client = new JobServiceClient(
    `127.0.0.1:${context.stack.port}`,
    credentials.createSsl(
      await readFile(context.stack.pki.ca),
      pair ? await readFile(pair.key) : null,
      pair ? await readFile(pair.cert) : null,
    ),
    // Verify the server as localhost (a name of its certificate) while connecting by address.
    { 'grpc.ssl_target_name_override': 'localhost' },
  );
  try {
    return await new Promise<number>((resolve) =>
      client.listJobs(
        { owner: '', state: 0, pageSize: 0, pageToken: '' },
        new Metadata(),
        { deadline: Date.now() + 20_000 },
        (error: ServiceError | null) => resolve(error ? error.code : status.OK),
      ),
    );
  } finally {
    client.close();
  }
}

interface AuditLine {
  who: string | null;
  method: string;
  outcome: string;
}

function auditLines(log: string): AuditLine[] {
  return log
    .split('\n')
    .filter((line) => line.includes('"audit":true'))
    .map((line) => JSON.parse(line) as AuditLine);
}

/**
 * Runs an attempt, then a call as ada; once ada's audit line has arrived, every call the attempt
 * made would be logged before it (the API logs synchronously, one pipe keeps the order). Returns
 * the audit lines the attempt left: a client refused at the TLS layer leaves none.
 */
async function callsMadeBy(context: Context, attempt: () => Promise<void>): Promise<AuditLine[]> {
  const mark = context.stack.apiLog().length;
  await attempt();
  assert.is(await listJobsAs(context, context.ada), status.OK);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const lines = auditLines(context.stack.apiLog().slice(mark));
    const sentinel = lines.findIndex((line) => line.who === 'ada');
    if (sentinel >= 0) return lines.slice(0, sentinel);
    if (Date.now() > deadline) throw new Error(`no audit line for ada:\n${context.stack.apiLog()}`);
    await sleep(20);
  }
}

/** The whole refusal: no application byte on a bare connection, UNAVAILABLE, no call logged. */
async function assertRefused(context: Context, pair: KeyPair | null): Promise<ProbeResult> {
  let result!: ProbeResult;
  const calls = await callsMadeBy(context, async () => {
    result = await probe(context, pair);
    assert.is(await listJobsAs(context, pair), status.UNAVAILABLE);
  });
  assert.equal(calls, []);
  assert.is(result.serverBytes.length, 0, 'the server sent application data');
  return result;
}

/** `openssl verify` as a TLS server checks a client certificate; its output names the defect. */
async function verifyAsClient(ca: string, cert: string, ...flags: string[]): Promise<string> {
  const { stdout, stderr } = await runCommand('openssl', [
    'verify',
    '-CAfile',
    ca,
    '-purpose',
    'sslclient',
    ...flags,
    cert,
  ]);
  return stdout + stderr;
}

async function sClient(context: Context, pair: KeyPair, ...flags: string[]) {
  return runCommand('openssl', [
    's_client',
    ...['-connect', `127.0.0.1:${context.stack.port}`, '-servername', 'localhost'],
    ...['-CAfile', context.stack.pki.ca, '-verify_return_error'],
    ...['-cert', pair.cert, '-key', pair.key],
    ...flags,
  ]);
}

transport(
  'the API process runs as nobody, with only the socket group and no capabilities',
  async ({ stack }) => {
    const fields = new Map(
      (await readFile(`/proc/${stack.api.pid}/status`, 'utf8'))
        .split('\n')
        .map((line) => line.split(':\t'))
        .map(([key, value]) => [key, value?.trim().split(/\s+/) ?? []]),
    );
    assert.equal(fields.get('Uid'), ['65534', '65534', '65534', '65534']);
    assert.equal(fields.get('Gid'), ['65534', '65534', '65534', '65534']);
    assert.equal(fields.get('Groups'), [String(TEST_SOCKET_GID)]);
    for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapAmb'])
      assert.equal(fields.get(set), ['0000000000000000'], set);
  },
);

transport('a valid admin certificate is accepted and its call succeeds', async (context) => {
  let result!: ProbeResult;
  // callsMadeBy's own ListJobs as ada is the call that succeeds.
  const calls = await callsMadeBy(context, async () => {
    result = await probe(context, context.ada);
  });
  assert.equal(calls, [], 'a bare TLS connection makes no call');
  assert.is(result.protocol, 'TLSv1.3');
  assert.ok(SUITES.includes(result.cipher ?? ''), `suite ${result.cipher}`);
  assert.is(result.alpn, 'h2');
  // An HTTP/2 frame header: 24-bit length, type 4 = SETTINGS, on stream 0.
  assert.is(result.serverBytes[3], 4);
  assert.is(result.serverBytes.readUInt32BE(5), 0);
  // A call is audited when received and again with its outcome, which may reach the log a moment
  // after the client has its answer.
  const deadline = Date.now() + 10_000;
  let last = auditLines(context.stack.apiLog()).at(-1);
  while (last?.outcome === undefined && Date.now() < deadline) {
    await sleep(20);
    last = auditLines(context.stack.apiLog()).at(-1);
  }
  assert.equal(
    { who: last?.who, method: last?.method, outcome: last?.outcome },
    { who: 'ada', method: '/jobworker.v1.JobService/ListJobs', outcome: 'OK' },
  );
});

transport('no client certificate: a certificate_required alert, no call', async (context) => {
  const result = await assertRefused(context, null);
  assert.is(result.errorCode, 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
});

transport('a client certificate from another CA is refused, no call', async (context) => {
  const { ca } = context.stack.pki;
  // The certificate is sound, only its issuer is not the API's CA.
  assert.match(
    await verifyAsClient(join(context.scratch, 'other-ca', 'ca.crt'), context.foreign.cert),
    /: OK$/m,
  );
  assert.match(
    await verifyAsClient(ca, context.foreign.cert),
    'error 20 at 0 depth lookup: unable to get local issuer certificate',
  );
  await assertRefused(context, context.foreign);
});

transport('an expired client certificate is refused, no call', async (context) => {
  const { ca } = context.stack.pki;
  assert.match(await verifyAsClient(ca, context.expired.cert, '-no_check_time'), /: OK$/m);
  assert.match(
    await verifyAsClient(ca, context.expired.cert),
    'error 10 at 0 depth lookup: certificate has expired',
  );
  await assertRefused(context, context.expired);
});

transport(
  'the server certificate used as a client certificate is refused (EKU), no call',
  async (context) => {
    const { ca } = context.stack.pki;
    const { serverPair } = context;
    assert.match(await verifyAsClient(ca, serverPair.cert, '-purpose', 'sslserver'), /: OK$/m);
    assert.match(
      await verifyAsClient(ca, serverPair.cert),
      'error 26 at 0 depth lookup: unsuitable certificate purpose',
    );
    await assertRefused(context, serverPair);
  },
);

transport(
  'a TLS 1.2 client with a valid certificate is refused: protocol_version',
  async (context) => {
    const calls = await callsMadeBy(context, async () => {
      const { code, stdout, stderr } = await sClient(context, context.ada, '-tls1_2');
      assert.is.not(code, 0);
      // The server answers the TLS 1.2 ClientHello with alert 70 and never sends a certificate.
      assert.match(stderr, 'tlsv1 alert protocol version');
      assert.match(stderr, 'SSL alert number 70');
      assert.match(stdout, 'no peer certificate available');
      assert.match(stdout, 'New, (NONE), Cipher is (NONE)');
    });
    assert.equal(calls, []);
  },
);

transport(
  'openssl s_client -tls1_3 negotiates TLSv1.3 with a configured suite',
  async (context) => {
    const { stdout } = await sClient(context, context.ada, '-tls1_3');
    const negotiated = /^New, (\S+), Cipher is (\S+)$/m.exec(stdout);
    assert.ok(negotiated, stdout);
    assert.is(negotiated[1], 'TLSv1.3');
    assert.ok(SUITES.includes(negotiated[2] ?? ''), negotiated[2]);
    assert.match(stdout, /^Verification: OK$/m);
    assert.match(stdout, /^Peer signature type: ECDSA$/m);
    assert.match(stdout, /^Server public key is 384 bit$/m);
    // Each configured suite on its own is accepted; TLS_AES_128_GCM_SHA256, left out, is not.
    for (const suite of SUITES) {
      const alone = await sClient(context, context.ada, '-tls1_3', '-ciphersuites', suite);
      assert.match(alone.stdout, `New, TLSv1.3, Cipher is ${suite}`);
    }
    const outside = ['-tls1_3', '-ciphersuites', 'TLS_AES_128_GCM_SHA256'];
    const refused = await sClient(context, context.ada, ...outside);
    assert.match(refused.stdout, 'New, (NONE), Cipher is (NONE)');
    assert.match(refused.stderr, 'alert handshake failure');
    assert.match(refused.stderr, 'SSL alert number 40');
  },
);

transport('sslscan: only TLS 1.3, exactly the configured suites and groups', async (context) => {
  const { code, stdout } = await runCommand('sslscan', [
    '--no-colour',
    '--show-client-cas',
    `127.0.0.1:${context.stack.port}`,
  ]);
  assert.is(code, 0, stdout);
  const protocols = Object.fromEntries(
    [...stdout.matchAll(/^(SSLv[23]|TLSv1\.[0-3]) +(enabled|disabled)$/gm)].map(
      (m): [string, string] => [m[1] ?? '', m[2] ?? ''],
    ),
  );
  assert.equal(protocols, {
    SSLv2: 'disabled',
    SSLv3: 'disabled',
    'TLSv1.0': 'disabled',
    'TLSv1.1': 'disabled',
    'TLSv1.2': 'disabled',
    'TLSv1.3': 'enabled',
  });
  // Every suite the server accepted, the preferred one first.
  const ciphers = [...stdout.matchAll(/^(?:Preferred|Accepted) +(\S+) +\d+ bits +(\S+)/gm)];
  assert.equal(ciphers.map((m) => m[1]).sort(), ['TLSv1.3', 'TLSv1.3']);
  assert.equal(ciphers.map((m) => m[2]).sort(), SUITES);
  const groups = stdout.slice(stdout.indexOf('Server Key Exchange Group(s):'));
  const offered = [...groups.matchAll(/^TLSv1\.3 +\d+ bits +(\S+)/gm)].map((m) => m[1]);
  assert.equal(offered.sort(), KEY_EXCHANGE_GROUPS.split(':').map(sslscanGroupName).sort());
  // The client CAs the server asks for: the test CA only.
  assert.match(stdout, /Acceptable client certificate CA names:\n\/CN=jobworker CA\n/);
});

interface TestsslFinding {
  id: string;
  finding: string;
}

transport('testssl: only TLS 1.3 offered, exactly the configured suites', async (context) => {
  const jsonFile = join(context.scratch, 'testssl.json');
  const target = `127.0.0.1:${context.stack.port}`;
  // -p protocols, -E ciphers per protocol: no vulnerability or HTTP checks, a few seconds.
  const { code, stdout, stderr } = await runCommand(
    'testssl',
    ['--quiet', '--color', '0', '--warnings', 'off', '-p', '-E', '--jsonfile', jsonFile, target],
    { cwd: context.scratch },
  );
  // testssl's exit code adds up its checks' return values; here it also depends on a race (does
  // its first `openssl s_client`, which has no client certificate, see the API's alert before it
  // exits?), so only its fatal codes (242 and up: cannot run, cannot connect) mean anything.
  assert.ok(code !== null && code < 242, `testssl exited ${code}:\n${stdout}\n${stderr}`);
  assert.match(stdout, /^ TLS 1\.3 +offered \(OK\): final$/m);
  const findings = JSON.parse(await readFile(jsonFile, 'utf8')) as TestsslFinding[];
  const finding = (id: string) => findings.find((f) => f.id === id)?.finding;
  assert.equal(
    ['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1', 'TLS1_2', 'TLS1_3'].map((id) => [id, finding(id)]),
    [
      ['SSLv2', 'not offered'],
      ['SSLv3', 'not offered'],
      ['TLS1', 'not offered'],
      ['TLS1_1', 'not offered'],
      ['TLS1_2', 'not offered'],
      ['TLS1_3', 'offered with final'],
    ],
  );
  const ciphers = findings.filter((f) => f.id.startsWith('cipher-'));
  assert.equal(ciphers.map((f) => f.id).sort(), ['cipher-tls1_3_x1302', 'cipher-tls1_3_x1303']);
  // The finding's last column is the IANA name.
  assert.equal(ciphers.map((f) => f.finding.trim().split(/\s+/).at(-1)).sort(), SUITES);
  assert.is(finding('ALPN_HTTP2'), 'h2');
});

transport('the API is still up and serving after all of the above', async (context) => {
  assert.is(context.stack.api.exitCode, null);
  assert.is(context.stack.api.signalCode, null);
  assert.is(await listJobsAs(context, context.ada), status.OK);
});

transport.run();
