// How jobctl finds the API and what it says when it cannot: bad flags never reach the network,
// and each connection problem (server down, wrong CA, certificate refused or expired, wrong
// name) is one line with a hint. Also: contexts, the dev stack, the bin, completion.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CHECKOUT } from '../../shared/dev-layout.ts';
import { TEST_PREFIX } from './executor-kit.ts';
import { JOBCTL, openJobctlKit } from './jobctl-kit.ts';
import type { JobctlKit } from './jobctl-kit.ts';

const connection = suite<{ kit: JobctlKit; otherPki: string }>('jobctl connection');
const pki = (...args: string[]) =>
  execFileSync('bash', [join(CHECKOUT, 'scripts/pki.sh'), ...args], { stdio: 'ignore' });

connection.before(async (context) => {
  context.kit = await openJobctlKit();
  // A second CA, with a server-side stranger: a client certificate the API does not trust.
  context.otherPki = await mkdtemp(`/var/tmp/${TEST_PREFIX}jobctl-other-pki-`);
  pki('ca', context.otherPki);
  pki('client', context.otherPki, 'mallory', 'admin');
  // Issued by the right CA, but long expired.
  pki(
    'client',
    context.kit.stack.pki.dir,
    'old',
    'admin',
    '--not-before',
    '20200101000000Z',
    '--not-after',
    '20200201000000Z',
  );
});
connection.after(async ({ kit, otherPki }) => {
  await kit.close();
  await rm(otherPki, { recursive: true, force: true });
});

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const oneLine = (stderr: string) => stderr.split('\n').length === 2 && stderr.endsWith('\n');

connection(
  'bad flags: exit 125, one line naming the flag, and not one connection made',
  async ({ kit }) => {
    let connections = 0;
    const listener = net.createServer((socket) => {
      connections += 1;
      socket.destroy();
    });
    listener.listen(0, '127.0.0.1');
    await new Promise((resolve) => listener.once('listening', resolve));
    const server = `127.0.0.1:${(listener.address() as net.AddressInfo).port}`;
    try {
      const cases: [string[], string][] = [
        [['run', '--memory', '12q', '--', 'true'], 'jobctl run: --memory "12q": not a size'],
        [['run', '--cpus', 'half', 'true'], 'jobctl run: --cpus "half": not a number of CPUs'],
        [
          ['start', '--pids-limit', '0', '--', 'true'],
          'jobctl start: --pids-limit "0": must be a whole number above 0',
        ],
        [
          ['run', '--cpuset-cpus', 'all', '--', 'true'],
          'jobctl run: --cpuset-cpus "all": not a CPU list',
        ],
        [
          ['run', '--device-write-bps', '/dev/sda:1mb', '--', 'true'],
          'jobctl run: --device-write-bps "/dev/sda:1mb": give only the rate',
        ],
        [
          ['run', '--device-read-iops', 'many', '--', 'true'],
          'jobctl run: --device-read-iops "many": must be a whole number above 0',
        ],
        [
          ['run', '--timeout', '5 minutes', '--', 'true'],
          'jobctl run: --timeout "5 minutes": not a duration',
        ],
        [
          ['run', '--memory', '1m', '--', 'true'],
          'jobctl run: --memory "1m": must be at least 4MiB',
        ],
        [['run', '--wat', '--', 'true'], 'jobctl run: unknown flag --wat'],
        [['run', '--', ''], 'jobctl run: the command: must not be empty'],
        [['stop', 'not-an-id'], 'jobctl stop: "not-an-id" is not a job id'],
        [['list', '--state', 'sleeping'], 'jobctl list: --state "sleeping": must be one of'],
      ];
      for (const [args, line] of cases) {
        const ran = await kit.run(['--server', server, ...args]);
        assert.is(ran.code, 125, args.join(' '));
        assert.ok(ran.stderr.startsWith(line) && oneLine(ran.stderr), ran.stderr);
        assert.is(ran.stdout.length, 0);
      }
      assert.is(connections, 0);
      // The same server is reached as soon as the flags are good.
      const reached = await kit.run(['--server', server, 'list']);
      assert.is(reached.code, 1);
      assert.ok(oneLine(reached.stderr), reached.stderr);
      assert.ok(connections > 0);
    } finally {
      await new Promise((resolve) => listener.close(resolve));
    }
  },
);

connection(
  'server down: one line that says so, exit 1 (run: 125); --verbose adds the detail',
  async ({ kit }) => {
    const server = `127.0.0.1:${await closedPort()}`;
    const line = `jobctl: cannot connect to the API at ${server} (from JOBCTL_SERVER): connection refused; is it running? ('sudo npm start' runs a development stack)\n`;
    const env = { env: { JOBCTL_SERVER: server } };
    assert.equal(await kit.run(['list'], env).then((ran) => [ran.code, ran.stderr]), [1, line]);
    assert.equal(await kit.run(['run', '--', 'true'], env).then((ran) => [ran.code, ran.stderr]), [
      125,
      line,
    ]);
    const verbose = await kit.run(['status', '--verbose', 'abcdef'], env);
    assert.is(verbose.code, 1);
    assert.match(verbose.stderr, `jobctl: server ${server} (from JOBCTL_SERVER)\n`);
    assert.match(verbose.stderr, /\n {2}gRPC UNAVAILABLE: .*ECONNREFUSED/);
  },
);

connection(
  'a CA that did not issue the server certificate: a hint to fix --ca',
  async ({ kit, otherPki }) => {
    const ran = await kit.run(['list', '--ca', join(otherPki, 'ca.crt')]);
    assert.is(ran.code, 1);
    assert.is(
      ran.stderr,
      `jobctl: the server's certificate at 127.0.0.1:${kit.stack.port} is not signed by the CA ${join(otherPki, 'ca.crt')} (from --ca): wrong CA? give the one that issued the server's certificate with --ca\n`,
    );
  },
);

connection(
  'a client certificate the server does not trust, or an expired one: said plainly',
  async ({ kit, otherPki }) => {
    const stranger = await kit.run([
      'list',
      '--cert',
      join(otherPki, 'clients', 'mallory.crt'),
      '--key',
      join(otherPki, 'clients', 'mallory.key'),
    ]);
    assert.is(stranger.code, 1);
    assert.ok(oneLine(stranger.stderr), stranger.stderr);
    assert.match(
      stranger.stderr,
      /^jobctl: the API at 127\.0\.0\.1:\d+ did not accept the client certificate .*mallory\.crt \(CN mallory, from --cert\): it closed the connection after the TLS handshake; was the certificate issued by the CA the server trusts, and not revoked\?\n$/,
    );
    const old = kit.stack.pki.cert('old');
    const expired = await kit.run(['run', '--cert', old.cert, '--key', old.key, '--', 'true']);
    assert.is(expired.code, 125);
    assert.match(
      expired.stderr,
      /^jobctl: the client certificate .*old\.crt \(from --cert\) expired on 2020-0[12]-\d\d .*; ask for a new one\n$/,
    );
  },
);

connection("--tls-name: the server's certificate is checked against that name", async ({ kit }) => {
  const wrong = await kit.run(['list', '--tls-name', 'jobs.example.com']);
  assert.is(wrong.code, 1);
  assert.is(
    wrong.stderr,
    `jobctl: the server's certificate at 127.0.0.1:${kit.stack.port} is not issued for jobs.example.com; give the name it was issued for with --tls-name\n`,
  );
  assert.is((await kit.run(['list', '--tls-name', 'localhost'])).code, 0);
  // By name, without an IP in between.
  assert.is(
    (await kit.run(['list'], { env: { JOBCTL_SERVER: `localhost:${kit.stack.port}` } })).code,
    0,
  );
});

connection(
  'contexts in $XDG_CONFIG_HOME/jobctl/config.json: --context, JOBCTL_CONTEXT, currentContext',
  async ({ kit }) => {
    const dir = join(kit.home, '.config', 'jobctl');
    await mkdir(join(dir, 'test'), { recursive: true });
    const ada = kit.stack.pki.cert('ada');
    await copyFile(ada.cert, join(dir, 'test', 'ada.crt'));
    await copyFile(ada.key, join(dir, 'test', 'ada.key'));
    const context = {
      server: `127.0.0.1:${kit.stack.port}`,
      ca: kit.stack.pki.ca,
      cert: 'test/ada.crt',
      key: 'test/ada.key',
    };
    const write = (config: unknown) => writeFile(join(dir, 'config.json'), JSON.stringify(config));
    try {
      await write({
        contexts: {
          test: context,
          down: { ...context, server: `127.0.0.1:${await closedPort()}` },
        },
      });
      const byFlag = await kit.run(['--context', 'test', 'list', '--verbose'], { who: null });
      assert.is(byFlag.code, 0, byFlag.stderr);
      assert.match(byFlag.stderr, `(from context test in ${join(dir, 'config.json')})`);
      assert.is((await kit.run(['list'], { who: null, env: { JOBCTL_CONTEXT: 'test' } })).code, 0);
      // The flag beats the environment.
      assert.is(
        (
          await kit.run(['list', '--context', 'down'], {
            who: null,
            env: { JOBCTL_CONTEXT: 'test' },
          })
        ).code,
        1,
      );
      await write({ currentContext: 'test', contexts: { test: context } });
      assert.is((await kit.run(['list'], { who: null })).code, 0);
      const unknown = await kit.run(['list', '--context', 'prod'], { who: null });
      assert.equal(
        [unknown.code, unknown.stderr],
        [
          1,
          `jobctl: no context "prod" (from --context) in ${join(dir, 'config.json')}; known: test\n`,
        ],
      );
      await write({ contexts: { test: { ...context, certificate: 'x' } } });
      const typo = await kit.run(['list'], { who: null });
      assert.equal(
        [typo.code, typo.stderr],
        [
          1,
          `jobctl: ${join(dir, 'config.json')}: contexts.test.certificate: is not a known field\n`,
        ],
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);

connection('the dev stack (`npm start`) is found without any flag', async ({ kit }) => {
  const devDir = join(kit.home, 'dev');
  await mkdir(join(devDir, 'pki', 'clients'), { recursive: true });
  const ada = kit.stack.pki.cert('ada');
  await copyFile(kit.stack.pki.ca, join(devDir, 'pki', 'ca.crt'));
  await copyFile(ada.cert, join(devDir, 'pki', 'clients', 'dev.crt'));
  await copyFile(ada.key, join(devDir, 'pki', 'clients', 'dev.key'));
  await writeFile(
    join(devDir, 'api.json'),
    JSON.stringify({ listen: `127.0.0.1:${kit.stack.port}` }),
  );
  const ran = await kit.run(['run', '--verbose', '--', 'echo', 'found it'], {
    who: null,
    env: { JOBCTL_DEV_DIR: devDir },
  });
  assert.is(ran.code, 0, ran.stderr);
  assert.is(ran.stdout.toString(), 'found it\n');
  assert.match(
    ran.stderr,
    `jobctl: server 127.0.0.1:${kit.stack.port} (from the dev stack in ${devDir})\n`,
  );
});

connection('installed as the package bin: npx jobctl works from the checkout', ({ kit }) => {
  const ran = spawnSync('npx', ['--no', 'jobctl', 'version'], {
    cwd: CHECKOUT,
    env: kit.env(),
    encoding: 'utf8',
  });
  assert.is(ran.status, 0, ran.stderr);
  assert.match(ran.stdout, /^jobctl \d+\.\d+\.\d+ \(node v/);
});

connection(
  'commands that talk to no server (version, help, completion) never load gRPC: they start fast',
  async ({ kit }) => {
    // A preloaded probe says, at exit, whether the process loaded anything of @grpc/grpc-js.
    const dir = await mkdtemp(`/var/tmp/${TEST_PREFIX}probe-`);
    const probe = join(dir, 'probe.cjs');
    await writeFile(
      probe,
      "process.on('exit', () => { if (Object.keys(require.cache).some((path) => path.includes('@grpc/grpc-js'))) process.stderr.write('loaded gRPC\\n'); });\n",
    );
    try {
      for (const args of [['version'], ['--help'], ['run', '--help'], ['completion', 'bash']]) {
        const ran = spawnSync(process.execPath, ['--require', probe, JOBCTL, ...args], {
          env: kit.env(),
          encoding: 'utf8',
        });
        assert.is(ran.status, 0, ran.stderr);
        assert.not.match(ran.stderr, /loaded gRPC/, `jobctl ${args.join(' ')}`);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);

connection(
  'bash completion: valid bash that completes commands, flags and job ids',
  async ({ kit }) => {
    const script = (await kit.run(['completion', 'bash'])).stdout.toString();
    const complete = (...words: string[]) =>
      execFileSync(
        'bash',
        [
          '-c',
          `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _jobctl; echo "\${COMPREPLY[*]}"`,
        ],
        {
          encoding: 'utf8',
          env: kit.env(),
        },
      ).trim();
    assert.is(complete('jobctl', 'lo'), 'logs');
    assert.is(complete('jobctl', 'run', '--mem'), '--memory --memory-high');
    assert.is(
      complete('jobctl', 'logs', '-'),
      '-f --follow --server --cert --key --ca --tls-name --context --verbose -h --help --version',
    );
    const id = (await kit.run(['start', '--', 'true'])).stdout.toString().trim();
    assert.is(complete('jobctl', 'status', id.slice(0, 8)), id);
  },
);

connection.run();
