// Runs the cgroup v2 suite (test/v2) in the test VM (vm-harness.ts): the busybox init (init.sh)
// builds a test root from the host's root and runs guest-suite.sh in it, which starts each test
// file alone in a cgroup with every controller delegated.
//
//   node --import tsx scripts/vm/run-v2-suite.ts [file-filter]
import { runVmSuite, shellWords } from './vm-harness.ts';

process.exitCode = await runVmSuite({
  name: 'v2',
  testDir: 'test/v2',
  filter: process.argv[2],
  kernelArgs: [],
  timeoutS: 600,
  command: (node, files) =>
    `exec /bin/sh scripts/vm/guest-suite.sh '${node}' test/v2 ${shellWords(files)}`,
});
