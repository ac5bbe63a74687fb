// Where `npm start` (scripts/dev-stack.ts) keeps the local development stack, so that jobctl run
// from the same checkout finds the API and a client certificate without any flag.
import { join } from 'node:path';
import { APP_ROOT } from './app-layout.ts';

export const CHECKOUT = APP_ROOT;
export const DEV_DIR = join(CHECKOUT, '.state', 'dev');
export const DEV_LISTEN = '127.0.0.1:50051';
/** The development identity: CN dev, role admin. */
export const DEV_CLIENT = 'dev';

export function devPki(dir = DEV_DIR): { ca: string; cert: string; key: string } {
  const pki = join(dir, 'pki');
  return {
    ca: join(pki, 'ca.crt'),
    cert: join(pki, 'clients', `${DEV_CLIENT}.crt`),
    key: join(pki, 'clients', `${DEV_CLIENT}.key`),
  };
}
