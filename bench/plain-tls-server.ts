// The watcher benchmark's baseline (bench/watchers.ts): a plain Node TLS server with the API's
// own TLS settings (TLS 1.3, the same suites, a client certificate required), which sends a
// buffer of the given size to every client that sends it one byte, then closes. Run as a
// process of its own, as the API is; prints the port it listens on.
//
//   node --import tsx bench/plain-tls-server.ts CA CERT KEY BYTES
import { randomFillSync } from 'node:crypto';
import { once } from 'node:events';
import tls from 'node:tls';
import { readTlsMaterial } from '../api/tls-credentials.ts';

const [caFile = '', certFile = '', keyFile = '', size = '0'] = process.argv.slice(2);
/** The same slice size the clients read with; writes wait for back-pressure between slices. */
const SLICE_BYTES = 1024 * 1024;
const payload = randomFillSync(Buffer.alloc(Number(size)));

const server = tls.createServer(
  {
    ...readTlsMaterial({ caFile, certFile, keyFile, crlFile: null }),
    requestCert: true,
    rejectUnauthorized: true,
  },
  (socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => {
      void (async () => {
        for (let at = 0; at < payload.length; at += SLICE_BYTES) {
          if (!socket.write(payload.subarray(at, at + SLICE_BYTES))) await once(socket, 'drain');
        }
        socket.end();
      })();
    });
  },
);
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  console.log(typeof address === 'object' && address ? address.port : 0);
});
