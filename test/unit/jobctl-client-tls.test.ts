// What jobctl checks about its certificates before it connects, and the TLS settings it uses.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CliError } from '../../api/jobctl/cli-errors.ts';
import { prepareClientTls } from '../../api/jobctl/client-tls.ts';
import { resolveConnection } from '../../api/jobctl/connection.ts';
import type { ConnectionFlags } from '../../api/jobctl/connection.ts';
import { pki } from './pki-kit.ts';

const tls = suite<{ dir: string }>('jobctl client TLS');

tls.before(async (context) => {
  context.dir = await mkdtemp(join(tmpdir(), 'jobworker-unit-jobctl-tls-'));
  pki(context.dir, 'ca');
  pki(context.dir, 'client', 'alice', 'user');
  pki(context.dir, 'client', 'bob', 'user');
  pki(
    context.dir,
    'client',
    'old',
    'user',
    '--not-before',
    '20200101000000Z',
    '--not-after',
    '20200201000000Z',
  );
  pki(
    context.dir,
    'client',
    'future',
    'user',
    '--not-before',
    '20990101000000Z',
    '--not-after',
    '20990201000000Z',
  );
  await writeFile(join(context.dir, 'garbage.pem'), 'not a certificate\n');
});
tls.after(async ({ dir }) => {
  await rm(dir, { recursive: true, force: true });
});

function connect(dir: string, who: string, flags: ConnectionFlags = {}) {
  return resolveConnection({
    flags: {
      server: '127.0.0.1:50051',
      cert: join(dir, 'clients', `${who}.crt`),
      key: join(dir, 'clients', `${who}.key`),
      ca: join(dir, 'ca.crt'),
      ...flags,
    },
    env: {},
    configFile: join(dir, 'no-config.json'),
    devDir: join(dir, 'no-dev'),
  });
}

function refusal(make: () => unknown): string {
  try {
    make();
  } catch (error) {
    assert.instance(error, CliError);
    return (error as Error).message;
  }
  throw new Error('accepted');
}

tls(
  'a good certificate: the identity it carries, and the name the server is checked against',
  ({ dir }) => {
    const byIp = prepareClientTls(connect(dir, 'alice'));
    assert.equal([byIp.identity.name, byIp.identity.role], ['alice', 'user']);
    // An IP server: SNI says localhost (Node will not send an IP), the certificate is checked for the IP.
    assert.is(byIp.options['grpc.ssl_target_name_override'], 'localhost');
    assert.is(byIp.serverName, 'localhost');
    const named = prepareClientTls(connect(dir, 'alice', { tlsName: 'jobs.internal' }));
    assert.is(named.options['grpc.ssl_target_name_override'], 'jobs.internal');
    const byName = prepareClientTls(connect(dir, 'alice', { server: 'jobs.example.com' }));
    assert.is(byName.options['grpc.ssl_target_name_override'], undefined);
  },
);

tls('certificates that cannot work are refused before connecting, saying why', ({ dir }) => {
  const cert = (who: string) => join(dir, 'clients', `${who}.crt`);
  assert.match(
    refusal(() => prepareClientTls(connect(dir, 'old'))),
    new RegExp(
      `^the client certificate ${cert('old')} \\(from --cert\\) expired on 2020-0[12]-.*; ask for a new one$`,
    ),
  );
  assert.match(
    refusal(() => prepareClientTls(connect(dir, 'future'))),
    / is not valid until 2099-.*check this machine's clock$/,
  );
  assert.is(
    refusal(() =>
      prepareClientTls(connect(dir, 'alice', { key: join(dir, 'clients', 'bob.key') })),
    ),
    `the client key ${join(dir, 'clients', 'bob.key')} (from --key) does not belong to the certificate ${cert('alice')} (from --cert)`,
  );
  assert.is(
    refusal(() => prepareClientTls(connect(dir, 'alice', { ca: join(dir, 'garbage.pem') }))),
    `the CA certificate ${join(dir, 'garbage.pem')} (from --ca) is not a PEM certificate`,
  );
  assert.is(
    refusal(() => prepareClientTls(connect(dir, 'alice', { key: join(dir, 'garbage.pem') }))),
    `the client key ${join(dir, 'garbage.pem')} (from --key) is not a PEM private key`,
  );
  assert.is(
    refusal(() => prepareClientTls(connect(dir, 'nobody'))),
    `cannot read the client certificate ${cert('nobody')} (from --cert): no such file`,
  );
});

tls.run();
