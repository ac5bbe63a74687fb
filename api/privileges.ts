// The API never runs as root. Started as root, it becomes the configured user (nobody) with one
// supplementary group: the one allowed to open the executor socket. Started as another user it
// keeps that identity (it then needs that group already).
import { readFileSync } from 'node:fs';
import { lookupGroup, lookupUser } from '../shared/accounts.ts';

export interface Dropped {
  uid: number;
  gid: number;
  groups: number[];
}

/** The kernel's list (Node's getgroups() adds the effective gid, which is not a supplementary group). */
function supplementaryGroups(): number[] {
  const line = /^Groups:(.*)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '';
  return line.trim().split(/\s+/).filter(Boolean).map(Number);
}

export function dropPrivileges(user: string, socketGroup: string): Dropped {
  if (process.getuid?.() === 0) {
    const account = lookupUser(user);
    const group = lookupGroup(socketGroup);
    if (account.id === 0 || account.gid === 0 || group.id === 0) {
      throw new Error(`refusing to run as root: user ${user} or group ${socketGroup} is root's`);
    }
    // Groups first, then gid, then uid: each later step gives up the power the earlier need.
    process.setgroups?.([group.id]);
    process.setgid?.(account.gid);
    process.setuid?.(account.id);
  }
  const dropped: Dropped = {
    uid: process.getuid?.() ?? -1,
    gid: process.getgid?.() ?? -1,
    groups: supplementaryGroups(),
  };
  if (
    dropped.uid === 0 ||
    process.geteuid?.() === 0 ||
    dropped.gid === 0 ||
    dropped.groups.includes(0)
  ) {
    throw new Error('the API still has root privileges after dropping them; refusing to serve');
  }
  return dropped;
}
