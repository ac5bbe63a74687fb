// Runs the systemd suite (test/systemd) in the test VM (vm-harness.ts) booted into Debian's own
// systemd as PID 1, with the unified cgroup hierarchy: init.sh hands over to systemd-root.sh,
// which makes the host's root, under a writable overlay, the VM's root; jobworker-vm.target then
// runs guest-systemd-suite.sh as a service (scripts/vm/systemd/).
//
//   node --import tsx scripts/vm/run-systemd-suite.ts [file-filter]
import { runVmSuite, shellWords } from './vm-harness.ts';

process.exitCode = await runVmSuite({
  name: 'systemd',
  testDir: 'test/systemd',
  filter: process.argv[2],
  kernelArgs: [
    'jobworker.boot=systemd',
    'systemd.unit=jobworker-vm.target',
    // Only failures of the boot itself on the console: the suite's output stays readable.
    'systemd.show_status=error',
  ],
  // Every jobctl is a Node.js process (about 5x slower emulated), and the install builds and
  // copies the app: several times the v2 suite's work.
  timeoutS: 1200,
  command: (node, files) =>
    `exec /bin/sh scripts/vm/guest-systemd-suite.sh '${node}' test/systemd ${shellWords(files)}`,
});
