// The executor's side of a keeper's channel, against a stand-in keeper on a real Unix socket (no
// root needed): what it makes of the lines a keeper sends. The real keeper is in test/root.
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KeeperLink } from '../../executor/runtime/keeper-link.ts';
import { createLogger } from '../../shared/logger.ts';

interface Context {
  dir: string;
  server: net.Server;
}

const link = suite<Context>('keeper link');
link.before.each(async (context) => {
  context.dir = await mkdtemp(join(tmpdir(), 'jobworker-unit-'));
});
link.after.each(async ({ dir, server }) => {
  server.close();
  await rm(dir, { recursive: true, force: true });
});

/** A link to a stand-in keeper; resolves with both ends once connected. */
async function connected(context: Context): Promise<{ link: KeeperLink; keeper: net.Socket }> {
  const path = join(context.dir, 'keeper.sock');
  const keeper = new Promise<net.Socket>((resolve) => {
    context.server = net.createServer(resolve);
  });
  await new Promise<void>((resolve) => context.server.listen(path, resolve));
  const socket = net.createConnection(path);
  await new Promise((resolve) => socket.once('connect', resolve));
  return { link: new KeeperLink(socket, createLogger('test', 'error')), keeper: await keeper };
}

link(
  'the end is known from the keeper\'s "ended", before its exit closes the channel',
  async (context) => {
    const { link: channel, keeper } = await connected(context);
    let closed = false;
    void channel.closed.then(() => (closed = true));
    keeper.write('status exit 0\nstatus output 12 0\nended\n');
    const done = await channel.done;
    assert.equal(done, { ended: true, status: 'exit 0\noutput 12 0\n' });
    assert.not.ok(closed, 'the channel is still open');
    keeper.destroy();
    assert.equal(await channel.closed, done);
  },
);

link('a channel that closes without "ended" is done too, with no status', async (context) => {
  const { link: channel, keeper } = await connected(context);
  keeper.write('status exit 0\n');
  keeper.destroy();
  assert.equal(await channel.done, { ended: false, status: null });
});

link.run();
