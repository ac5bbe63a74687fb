// Users and groups by name or number, from /etc/passwd and /etc/group (Node has no getpwnam).
import { readFileSync } from 'node:fs';

export interface Account {
  name: string;
  id: number;
  /** Primary gid (users only). */
  gid: number;
}

function lookup(file: 'passwd' | 'group', nameOrId: string, etc: string): Account {
  const byId = /^\d+$/.test(nameOrId);
  for (const line of readFileSync(`${etc}/${file}`, 'utf8').split('\n')) {
    const fields = line.split(':');
    const [name = '', , id = '', gid = ''] = fields;
    if (fields.length < 3 || name.startsWith('#')) continue;
    if (byId ? id === nameOrId : name === nameOrId) {
      return { name, id: Number(id), gid: file === 'passwd' ? Number(gid) : Number(id) };
    }
  }
  if (byId) return { name: nameOrId, id: Number(nameOrId), gid: Number(nameOrId) };
  throw new Error(
    `no ${file === 'passwd' ? 'user' : 'group'} named "${nameOrId}" in ${etc}/${file}`,
  );
}

export function lookupUser(nameOrId: string, etc = '/etc'): Account {
  return lookup('passwd', nameOrId, etc);
}

export function lookupGroup(nameOrId: string, etc = '/etc'): Account {
  return lookup('group', nameOrId, etc);
}
