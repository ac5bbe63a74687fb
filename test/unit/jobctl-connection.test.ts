// Where jobctl connects and with which certificates: flags > environment > context > dev stack,
// the config file's contexts (checked, unknown keys refused by name), and server addresses.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CliError, UsageError } from '../../api/jobctl/cli-errors.ts';
import { parseServerAddress, resolveConnection } from '../../api/jobctl/connection.ts';
import type { Connection, ConnectionFlags } from '../../api/jobctl/connection.ts';
import { configFilePath } from '../../api/jobctl/contexts.ts';

const connection = suite<{ dir: string; configFile: string; devDir: string }>('jobctl connection');

connection.before(async (context) => {
  context.dir = await mkdtemp(join(tmpdir(), 'jobworker-unit-jobctl-'));
  context.configFile = join(context.dir, 'config', 'jobctl', 'config.json');
  context.devDir = join(context.dir, 'dev');
  await mkdir(join(context.dir, 'config', 'jobctl'), { recursive: true });
  await mkdir(join(context.devDir, 'pki', 'clients'), { recursive: true });
});
connection.after(async ({ dir }) => {
  await rm(dir, { recursive: true, force: true });
});
connection.before.each(async ({ configFile, devDir }) => {
  await rm(configFile, { force: true });
  await rm(join(devDir, 'pki', 'ca.crt'), { force: true });
  await rm(join(devDir, 'pki', 'clients', 'dev.crt'), { force: true });
  await rm(join(devDir, 'api.json'), { force: true });
});

async function writeConfig(path: string, config: unknown): Promise<void> {
  await writeFile(path, JSON.stringify(config));
}

async function makeDevStack(devDir: string, listen?: string): Promise<void> {
  await writeFile(join(devDir, 'pki', 'ca.crt'), 'ca');
  await writeFile(join(devDir, 'pki', 'clients', 'dev.crt'), 'cert');
  if (listen !== undefined) await writeFile(join(devDir, 'api.json'), JSON.stringify({ listen }));
}

function resolve(
  context: { configFile: string; devDir: string },
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv = {},
): Connection {
  return resolveConnection({ flags, env, configFile: context.configFile, devDir: context.devDir });
}

function refusal(make: () => unknown): string {
  try {
    make();
  } catch (error) {
    assert.instance(error, CliError);
    return (error as Error).message;
  }
  throw new Error('accepted');
}

const settings = (found: Connection) => ({
  server: [found.server.value, found.server.source],
  cert: [found.cert.value, found.cert.source],
  key: [found.key.value, found.key.source],
  ca: [found.ca.value, found.ca.source],
  tlsName: found.tlsName ? [found.tlsName.value, found.tlsName.source] : null,
});

connection('each setting comes from its flag first, then the environment', (context) => {
  const env = {
    JOBCTL_SERVER: 'env.example:1',
    JOBCTL_CERT: '/env/c',
    JOBCTL_KEY: '/env/k',
    JOBCTL_CA: '/env/ca',
    JOBCTL_TLS_NAME: 'env-name',
  };
  assert.equal(settings(resolve(context, { server: 'flag.example:2', key: '/flag/k' }, env)), {
    server: ['flag.example:2', '--server'],
    cert: ['/env/c', 'JOBCTL_CERT'],
    key: ['/flag/k', '--key'],
    ca: ['/env/ca', 'JOBCTL_CA'],
    tlsName: ['env-name', 'JOBCTL_TLS_NAME'],
  });
  // Empty values count as unset.
  const found = resolve(context, { server: '' }, { ...env, JOBCTL_SERVER: '' });
  assert.equal([found.server.value, found.server.source], ['127.0.0.1:50051', 'the default']);
});

connection(
  'a context fills what flags and environment leave; paths relative to the file',
  async (context) => {
    const { configFile, dir } = context;
    await writeConfig(configFile, {
      currentContext: 'lab',
      contexts: {
        lab: {
          server: 'lab.example:7',
          ca: 'lab/ca.crt',
          cert: '~/lab.crt',
          key: '/abs/lab.key',
          tlsName: 'lab.internal',
        },
        prod: { server: 'prod.example', ca: '/p/ca', cert: '/p/c', key: '/p/k' },
      },
    });
    const home = join(dir, 'home');
    const lab = resolve(context, {}, { HOME: home });
    const source = `context lab in ${configFile}`;
    assert.equal(settings(lab), {
      server: ['lab.example:7', source],
      cert: [join(home, 'lab.crt'), source],
      key: ['/abs/lab.key', source],
      ca: [join(dir, 'config', 'jobctl', 'lab', 'ca.crt'), source],
      tlsName: ['lab.internal', source],
    });
    assert.is(lab.context, 'lab');
    // --context beats JOBCTL_CONTEXT beats currentContext; flags still beat the context.
    assert.is(resolve(context, {}, { JOBCTL_CONTEXT: 'prod' }).server.value, 'prod.example');
    assert.is(
      resolve(context, { context: 'lab' }, { JOBCTL_CONTEXT: 'prod' }).server.value,
      'lab.example:7',
    );
    assert.is(resolve(context, { context: 'prod', cert: '/mine' }).cert.value, '/mine');
    assert.equal(resolve(context, { context: 'prod' }).address, {
      host: 'prod.example',
      port: 50051,
      target: 'prod.example:50051',
      isIp: false,
    });
  },
);

connection('an unknown context is refused, naming the known ones', async (context) => {
  const { configFile } = context;
  assert.is(
    refusal(() => resolve(context, { context: 'prod' })),
    `no context "prod" (from --context) in ${configFile} (the file does not exist)`,
  );
  await writeConfig(configFile, { contexts: { a: {}, b: {} } });
  assert.is(
    refusal(() => resolve(context, {}, { JOBCTL_CONTEXT: 'prod' })),
    `no context "prod" (from JOBCTL_CONTEXT) in ${configFile}; known: a, b`,
  );
  assert.instance(
    (() => {
      try {
        resolve(context, { context: '../x' });
      } catch (error) {
        return error;
      }
    })(),
    UsageError,
  );
});

connection(
  'the config file is checked: unknown keys and wrong types are refused by name',
  async (context) => {
    const { configFile } = context;
    const cases: [unknown, string][] = [
      [{ contexts: { prod: { sevrer: 'x' } } }, 'contexts.prod.sevrer: is not a known field'],
      [{ context: {} }, 'context: is not a known field'],
      [
        { contexts: { prod: { server: 5 } } },
        'contexts.prod.server: must be a string, not a number',
      ],
      [{ contexts: { 'bad name': {} } }, 'contexts key "bad name": must be a name of letters'],
    ];
    for (const [config, message] of cases) {
      await writeConfig(configFile, config);
      assert.match(
        refusal(() => resolve(context, { cert: '/c', key: '/k', ca: '/ca' })),
        `${configFile}: ${message}`,
      );
    }
    await writeConfig(configFile, []);
    assert.match(
      refusal(() => resolve(context, {})),
      'must be an object, not an array',
    );
    await writeFile(configFile, '{ not json');
    assert.match(
      refusal(() => resolve(context, {})),
      `${configFile}: not valid JSON`,
    );
  },
);

connection(
  'without a context, the dev stack is found (its api.json says where it listens)',
  async (context) => {
    const { devDir } = context;
    await makeDevStack(devDir, '0.0.0.0:50999');
    const source = `the dev stack in ${devDir}`;
    assert.equal(settings(resolve(context, {})), {
      server: ['127.0.0.1:50999', source],
      cert: [join(devDir, 'pki', 'clients', 'dev.crt'), source],
      key: [join(devDir, 'pki', 'clients', 'dev.key'), source],
      ca: [join(devDir, 'pki', 'ca.crt'), source],
      tlsName: null,
    });
    await rm(join(devDir, 'api.json'));
    assert.is(resolve(context, {}).server.value, '127.0.0.1:50051');
    // A selected context hides the dev stack entirely.
    await writeConfig(context.configFile, { contexts: { prod: { server: 'p:1' } } });
    assert.match(
      refusal(() => resolve(context, { context: 'prod' })),
      /^no client certificate/,
    );
  },
);

connection('nothing found anywhere: the error says every way to give it', (context) => {
  assert.is(
    refusal(() => resolve(context, {})),
    `no client certificate: give --cert and --key, set JOBCTL_CERT and JOBCTL_KEY, or add a context to ${context.configFile} (from a checkout, 'sudo npm start' makes a development stack that is found without flags)`,
  );
  assert.match(
    refusal(() => resolve(context, { cert: '/c', key: '/k' })),
    /^no CA certificate to check the server with: give --ca/,
  );
  assert.is(
    refusal(() => resolve(context, { server: 'http://x', cert: '/c', key: '/k', ca: '/ca' })),
    '--server "http://x": not a server address; use host:port (jobs.example.com:50051, 127.0.0.1:50051, [::1]:50051)',
  );
});

connection('server addresses: host, host:port, IPv4, IPv6 with or without brackets', () => {
  assert.equal(parseServerAddress('jobs.example.com'), {
    host: 'jobs.example.com',
    port: 50051,
    target: 'jobs.example.com:50051',
    isIp: false,
  });
  assert.equal(parseServerAddress('127.0.0.1:8443'), {
    host: '127.0.0.1',
    port: 8443,
    target: '127.0.0.1:8443',
    isIp: true,
  });
  assert.equal(parseServerAddress('[::1]:9'), {
    host: '::1',
    port: 9,
    target: '[::1]:9',
    isIp: true,
  });
  assert.equal(parseServerAddress('::1'), {
    host: '::1',
    port: 50051,
    target: '[::1]:50051',
    isIp: true,
  });
  for (const bad of ['', 'host:0', 'host:70000', 'a b', 'http://host', 'host:port', '[nope]:1']) {
    assert.is(parseServerAddress(bad), undefined, bad);
  }
});

connection('the config file lives under XDG_CONFIG_HOME, else ~/.config', () => {
  assert.is(configFilePath({ XDG_CONFIG_HOME: '/x', HOME: '/h' }), '/x/jobctl/config.json');
  assert.is(configFilePath({ HOME: '/h' }), '/h/.config/jobctl/config.json');
  // A relative XDG_CONFIG_HOME is ignored, as the XDG spec says.
  assert.is(
    configFilePath({ XDG_CONFIG_HOME: 'rel', HOME: '/h' }),
    '/h/.config/jobctl/config.json',
  );
});

connection.run();
