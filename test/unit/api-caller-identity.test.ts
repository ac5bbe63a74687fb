// The caller's identity is read once per connection: a real grpc-js server with the API's TLS
// credentials, two clients, and the identities the interceptor sees on each call.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, credentials, Server, ServerInterceptingCall } from '@grpc/grpc-js';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { identify, sessionOf } from '../../api/caller-identity.ts';
import type { Identified } from '../../api/caller-identity.ts';
import { MutualTls13Credentials, readTlsMaterial } from '../../api/tls-credentials.ts';
import { pki } from './pki-kit.ts';

const identity = suite<{ dir: string }>('caller identity');

identity.before(async (context) => {
  context.dir = await mkdtemp(join(tmpdir(), 'jobworker-unit-identity-'));
  pki(context.dir, 'ca');
  pki(context.dir, 'server', 'server', 'DNS:localhost', 'IP:127.0.0.1');
  pki(context.dir, 'client', 'alice', 'user');
  pki(context.dir, 'client', 'vera', 'viewer');
});
identity.after(async ({ dir }) => {
  await rm(dir, { recursive: true, force: true });
});

const bytes = (value: Buffer) => value;
const service: ServiceDefinition = {
  ping: {
    path: '/test.Test/Ping',
    requestStream: false,
    responseStream: false,
    requestSerialize: bytes,
    requestDeserialize: bytes,
    responseSerialize: bytes,
    responseDeserialize: bytes,
  },
};

identity('each connection is identified once, by its own certificate', async ({ dir }) => {
  const seen: { session: object | null; identified: Identified }[] = [];
  const server = new Server({
    interceptors: [
      (_method, call) => {
        seen.push({ session: sessionOf(call), identified: identify(call) });
        return new ServerInterceptingCall(call);
      },
    ],
  });
  server.addService(service, {
    ping: (_call: unknown, callback: (error: null, value: Buffer) => void) =>
      callback(null, Buffer.alloc(0)),
  });
  const serverCredentials = new MutualTls13Credentials(
    readTlsMaterial({
      caFile: join(dir, 'ca.crt'),
      certFile: join(dir, 'server.crt'),
      keyFile: join(dir, 'private', 'server.key'),
      crlFile: null,
    }),
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', serverCredentials, (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  const clientOf = (who: string) =>
    new Client(
      `127.0.0.1:${port}`,
      credentials.createSsl(
        readFileSync(join(dir, 'ca.crt')),
        readFileSync(join(dir, 'clients', `${who}.key`)),
        readFileSync(join(dir, 'clients', `${who}.crt`)),
      ),
      { 'grpc.ssl_target_name_override': 'localhost' },
    );
  const alice = clientOf('alice');
  const vera = clientOf('vera');
  const ping = (client: Client) =>
    new Promise<void>((resolve, reject) =>
      client.makeUnaryRequest('/test.Test/Ping', bytes, bytes, Buffer.alloc(0), (error) =>
        error ? reject(error) : resolve(),
      ),
    );
  try {
    await ping(alice);
    await ping(alice);
    await ping(vera);
  } finally {
    alice.close();
    vera.close();
    server.forceShutdown();
  }
  const [first, second, third] = seen;
  assert.ok(first && second && third);
  // grpc-js still shows the session: otherwise every call would be identified anew.
  assert.ok(first.session);
  assert.is(first.session, second.session);
  assert.is.not(first.session, third.session);
  const names = seen.map(({ identified }) =>
    identified.auth === null ? 'refused' : identified.identity.name,
  );
  assert.equal(names, ['alice', 'alice', 'vera']);
  // The second call on a connection reuses what the first read.
  assert.is(first.identified, second.identified);
});

identity.run();
