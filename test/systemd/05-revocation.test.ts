// Revocation as the README tells an operator to do it: pki.sh revoke, then
// `systemctl reload jobworker-api` (ExecReload: SIGHUP, the same process re-reads its CRL). Then
// the CRL unit the weekly timer starts renews the CRL and reloads the API itself, inside its own
// sandbox; the revocation holds.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  API,
  APP,
  CRL_SERVICE,
  ensureRunning,
  jobctl,
  journal,
  mintClient,
  must,
  PKI,
  property,
  systemctl,
  withJournal,
} from './kit.ts';

const revocation = suite('systemd: revocation and CRL renewal');
revocation.before(ensureRunning);

const REVOKED = 'mallory';
/** What the API logs once it has re-read its TLS files (SIGHUP). */
const RELOADED = 'reloaded TLS material';
const runAs = (who: string) => jobctl(['run', '--', 'echo', `hello ${who}`], who).done;

revocation(
  'a revoked client is refused once the API is reloaded; the API process stays the same',
  withJournal(async () => {
    await mintClient(REVOKED, 'user');
    const before = await runAs(REVOKED);
    assert.equal([before.code, before.stdout.toString()], [0, `hello ${REVOKED}\n`], before.stderr);
    await must('bash', [
      join(APP, 'scripts/pki.sh'),
      'revoke',
      PKI,
      join(PKI, 'clients', `${REVOKED}.crt`),
    ]);
    const pid = await property(API, 'MainPID');
    const reloads = await reloadsLogged();
    await systemctl('reload', API);
    // ExecReload= sends SIGHUP and returns; the API re-reads its files when it handles it.
    await reloadedSince(reloads);
    const after = await runAs(REVOKED);
    assert.is.not(after.code, 0);
    assert.match(after.stderr, /revoked/);
    const operator = await runAs('alice');
    assert.is(operator.code, 0, operator.stderr);
    assert.is(await property(API, 'MainPID'), pid, 'reloaded, not restarted');
  }),
);

revocation(
  'jobworker-crl.service renews the CRL and reloads the API; the revocation holds',
  withJournal(async () => {
    const crl = join(PKI, 'crl.pem');
    const before = statSync(crl).mtimeMs;
    const reloads = await reloadsLogged();
    await systemctl('start', CRL_SERVICE);
    assert.is(await property(CRL_SERVICE, 'Result'), 'success');
    assert.ok(statSync(crl).mtimeMs > before, 'crl.pem was rewritten');
    await reloadedSince(reloads);
    const refused = await runAs(REVOKED);
    assert.is.not(refused.code, 0);
  }),
);

/** How many times the API has logged a reload since boot. */
async function reloadsLogged(): Promise<number> {
  return (await journal()).split(RELOADED).length - 1;
}

/** Waits until the API has logged one reload more than `before`. */
async function reloadedSince(before: number): Promise<void> {
  for (let tries = 0; (await reloadsLogged()) <= before; tries += 1) {
    if (tries > 300) throw new Error(`the API did not log "${RELOADED}"`);
    await sleep(200);
  }
}

revocation.run();
