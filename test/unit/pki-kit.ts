// Test certificates for unit tests, made by the project's own scripts/pki.sh.
import { execFileSync } from 'node:child_process';

/** `scripts/pki.sh <command> <dir> <args…>`, quietly: `pki(dir, 'client', 'alice', 'user')`. */
export function pki(dir: string, command: string, ...args: string[]): void {
  execFileSync('bash', ['scripts/pki.sh', command, dir, ...args], { stdio: 'ignore' });
}
