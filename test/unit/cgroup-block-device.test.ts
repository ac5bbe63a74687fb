import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { splitDeviceNumber } from '../../executor/cgroup/block-device.ts';

test('st_dev splits into major and minor like glibc’s gnu_dev_major/minor', () => {
  assert.equal(splitDeviceNumber(0xfe00n), { major: 254, minor: 0 });
  assert.equal(splitDeviceNumber(0x0811n), { major: 8, minor: 17 });
  assert.equal(splitDeviceNumber(0x2en), { major: 0, minor: 46 });
  // minor 300 needs the high minor bits: 259:300 is 0x11032c.
  assert.equal(splitDeviceNumber(0x11032cn), { major: 259, minor: 300 });
  // major 0x1234 needs the high major bits, above bit 32.
  assert.equal(splitDeviceNumber((0x1n << 44n) | (0x234n << 8n) | 0x5n), {
    major: 0x1234,
    minor: 5,
  });
});

test.run();
