// Revocation: the API honours its CRL, and a SIGHUP makes it re-read CA, certificate, key and
// CRL without a restart (as nobody: the install gives the API's group read access to them).
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ListJobsResponse } from '../../api/generated/jobworker/v1/jobworker.ts';
import { sleep } from './executor-kit.ts';
import { spawnService } from './executor-process-kit.ts';
import { codeOf, startStack, unary } from './api-kit.ts';
import type { Stack, Who } from './api-kit.ts';

const revocation = suite<{ stack: Stack }>('certificate revocation');
revocation.before(async (context) => {
  context.stack = await startStack({}, {}, { crl: true });
});
revocation.after(async ({ stack }) => {
  await stack.close();
});

const listAs = async (stack: Stack, who: Who) =>
  codeOf(
    unary<object, ListJobsResponse>(await stack.client(who), 'listJobs', {
      owner: '',
      state: 0,
      pageSize: 1,
      pageToken: '',
    }),
  );

revocation(
  'a revoked client certificate is refused after SIGHUP; others still work',
  async ({ stack }) => {
    assert.is(await listAs(stack, 'alice'), status.OK);
    execFileSync(
      'bash',
      ['scripts/pki.sh', 'revoke', stack.pki.dir, stack.pki.cert('alice').cert],
      { stdio: 'ignore' },
    );
    stack.api.kill('SIGHUP');
    const deadline = Date.now() + 5000;
    while (!stack.apiLog().includes('reloaded TLS material') && Date.now() < deadline)
      await sleep(50);
    assert.match(stack.apiLog(), /reloaded TLS material/);
    assert.is(
      await listAs(stack, 'alice'),
      status.UNAVAILABLE,
      'the TLS handshake fails: the certificate is revoked',
    );
    assert.is(await listAs(stack, 'bob'), status.OK);
  },
);

revocation('a certificate already revoked when the API starts is refused', async ({ stack }) => {
  execFileSync('bash', ['scripts/pki.sh', 'revoke', stack.pki.dir, stack.pki.cert('vera').cert], {
    stdio: 'ignore',
  });
  await stack.restartApi();
  assert.is(await listAs(stack, 'vera'), status.UNAVAILABLE);
  assert.is(await listAs(stack, 'ada'), status.OK);
});

revocation(
  'a reload that cannot read its files keeps the old material and says so',
  async ({ stack }) => {
    execFileSync('chmod', ['0600', `${stack.pki.dir}/crl.pem`]);
    stack.api.kill('SIGHUP');
    const deadline = Date.now() + 5000;
    while (!stack.apiLog().includes('cannot reload TLS material') && Date.now() < deadline)
      await sleep(50);
    assert.match(stack.apiLog(), /cannot reload TLS material; keeping the old/);
    assert.is(await listAs(stack, 'ada'), status.OK);
    execFileSync('chmod', ['0644', `${stack.pki.dir}/crl.pem`]);
  },
);

revocation(
  'a SIGHUP while the API starts reloads it once it can, and ends nothing',
  async ({ stack }) => {
    // A second API on the same configuration, but a port of its own.
    const config = JSON.parse(
      readFileSync(join(stack.executor.stateDir, 'api.json'), 'utf8'),
    ) as Record<string, unknown>;
    const configPath = join(stack.executor.stateDir, 'second-api.json');
    writeFileSync(configPath, JSON.stringify({ ...config, listen: '127.0.0.1:0' }));
    const { child: api, log, exited } = spawnService('api/main.ts', configPath);
    try {
      // Its last line before it binds its port, long before it listens.
      const deadline = Date.now() + 15_000;
      while (!log().includes('"msg":"running unprivileged"') && Date.now() < deadline)
        await sleep(1);
      api.kill('SIGHUP');
      // The reload may come before or after it listens: both, in either order.
      const done = () =>
        ['reloaded TLS material', 'api listening'].every((msg) => log().includes(`"msg":"${msg}"`));
      while (!done() && Date.now() < deadline) await sleep(20);
      assert.equal([api.exitCode, api.signalCode], [null, null], log());
      assert.match(log(), /"msg":"api listening"/);
      assert.match(log(), /"msg":"reloaded TLS material"/);
    } finally {
      api.kill('SIGTERM');
      assert.equal(await exited, { code: 0, signal: null }, log());
    }
  },
);

revocation.run();
