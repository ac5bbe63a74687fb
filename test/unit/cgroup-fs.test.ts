// The path guard of the one module that touches cgroup files. The operations run against a temp
// directory standing in for the executor's own cgroup, so a broken guard cannot touch real cgroups.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rejects } from './cgroup-assert.ts';
import { CgroupFs, CgroupFsError, keyedValue } from '../../executor/cgroup/cgroup-fs.ts';

const OWN = '/sys/fs/cgroup/memory/process_api/abc';
const UNIFIED = '/sys/fs/cgroup/unified';
const fs = new CgroupFs([OWN, UNIFIED]);

function refused(path: string, use: 'read' | 'write' | 'dir'): string {
  try {
    fs.checkPath(path, use);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error(`${use} of ${path} was allowed`);
}

test('refuses /, relative paths, `.` and `..` segments, and unclean paths', () => {
  assert.match(refused('/', 'read'), /refusing read of "\/": not below the executor’s own cgroups/);
  assert.match(refused('sys/fs/cgroup/unified/x', 'dir'), /not a clean absolute path/);
  assert.match(refused(`${OWN}/jobworker/../../evil`, 'dir'), /not a clean absolute path/);
  assert.match(refused(`${OWN}/../abc/jobworker`, 'dir'), /not a clean absolute path/);
  assert.match(refused(`${OWN}/./jobworker`, 'dir'), /not a clean absolute path/);
  assert.match(refused(`${OWN}//jobworker`, 'dir'), /not a clean absolute path/);
  assert.match(refused(`${OWN}/jobworker/`, 'dir'), /not a clean absolute path/);
  assert.match(refused(`${OWN}/jobworker\0x`, 'dir'), /not a clean absolute path/);
});

test('refuses anything not strictly below an own cgroup', () => {
  const outside = /not below the executor’s own cgroups/;
  assert.match(refused(OWN, 'dir'), outside);
  assert.match(refused(UNIFIED, 'dir'), outside);
  assert.match(refused('/sys/fs/cgroup/memory/process_api/other/x', 'dir'), outside);
  assert.match(refused(`${OWN}x/jobworker`, 'dir'), outside);
  assert.match(refused('/sys/fs/cgroup/cpu/jobworker', 'write'), outside);
  assert.match(refused('/etc/passwd', 'read'), outside);
});

test('in the own cgroup itself: reads, and only cgroup.subtree_control is writable', () => {
  fs.checkPath(`${OWN}/cpuset.effective_cpus`, 'read');
  fs.checkPath(`${UNIFIED}/cgroup.subtree_control`, 'write');
  assert.match(refused(`${OWN}/memory.limit_in_bytes`, 'write'), /the executor’s own cgroup/);
  assert.match(refused(`${UNIFIED}/cgroup.procs`, 'write'), /the executor’s own cgroup/);
});

test('allows our parent, job directories and their files', () => {
  fs.checkPath(`${OWN}/jobworker`, 'dir');
  fs.checkPath(`${OWN}/jobworker/${'a'.repeat(32)}`, 'dir');
  fs.checkPath(`${OWN}/jobworker/${'a'.repeat(32)}/memory.limit_in_bytes`, 'write');
  fs.checkPath(`${UNIFIED}/jobworker-executor/cgroup.procs`, 'write');
});

test('refuses roots that are /, relative or unclean', () => {
  assert.throws(() => new CgroupFs(['/']), /refusing cgroup root "\/"/);
  assert.throws(() => new CgroupFs(['sys/fs/cgroup']), /refusing cgroup root/);
  assert.throws(() => new CgroupFs(['/sys/fs/cgroup/../..']), /refusing cgroup root/);
});

test('operations check before any system call, and errors name the file and value', async () => {
  const tmp = await mkdtemp(join(tmpdir(), 'cgroup-fs-test-'));
  try {
    const root = join(tmp, 'own');
    await mkdir(root);
    const guarded = new CgroupFs([root]);
    await rejects(() => guarded.mkdir(`${root}/../evil`), /not a clean absolute path/);
    assert.is(existsSync(join(tmp, 'evil')), false);
    await rejects(() => guarded.write(`${tmp}/outside`, '1'), /not below/);
    assert.is(existsSync(join(tmp, 'outside')), false);

    assert.is(await guarded.mkdir(`${root}/jobworker`), true);
    assert.is(await guarded.mkdir(`${root}/jobworker`), false);
    try {
      await guarded.write(`${root}/jobworker/memory.max`, '42');
      assert.unreachable('wrote a file that did not exist');
    } catch (error) {
      assert.instance(error, CgroupFsError);
      assert.is((error as CgroupFsError).errno, 'ENOENT');
      assert.is(
        (error as Error).message,
        `cgroup: cannot write "42" to ${root}/jobworker/memory.max: ENOENT: no such file or directory`,
      );
    }
    assert.is(existsSync(`${root}/jobworker/memory.max`), false, 'cgroup writes never create');
    await writeFile(`${root}/jobworker/memory.max`, 'max\n');
    await guarded.write(`${root}/jobworker/memory.max`, '42');
    // No O_TRUNC (cgroup files take each write whole); on a plain file that shows as an overwrite.
    assert.is(await readFile(`${root}/jobworker/memory.max`, 'utf8'), '42x\n');
    assert.is(await guarded.readOptional(`${root}/jobworker/missing`), undefined);
    assert.equal(await guarded.childCgroups(`${root}/jobworker`), []);
    assert.equal(await guarded.childCgroups(`${root}/absent`), []);
  } finally {
    await rm(tmp, { recursive: true });
  }
});

test('flat-keyed files', () => {
  assert.is(keyedValue('populated 1\nfrozen 0\n', 'populated'), 1);
  assert.is(keyedValue('populated 1\nfrozen 0\n', 'frozen'), 0);
  assert.is(keyedValue('populated 1\n', 'missing'), 0);
  assert.is(keyedValue('usage_usec nonsense\n', 'usage_usec'), 0);
});

test.run();
