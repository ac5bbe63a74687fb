// When a connection fails without saying why: one more TLS connection with the same settings, to
// see how the server ends it. In TLS 1.3 a client learns only after its handshake is complete
// whether the server accepted its certificate; a server that refuses it just closes the
// connection, which grpc-js reports as "Failed to connect". A close right after the handshake,
// before the server's first HTTP/2 frame, is that refusal.
import { connect } from 'node:tls';
import type { ClientTls } from './client-tls.ts';
import type { ServerAddress } from './connection.ts';

export type ProbeResult = 'closed-after-handshake' | 'accepted' | 'unknown';

export function probeTls(
  address: ServerAddress,
  tls: ClientTls,
  timeoutMs = 5000,
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let handshaken = false;
    const socket = connect({
      host: address.host,
      port: address.port,
      secureContext: tls.secureContext,
      ALPNProtocols: ['h2'],
      checkServerIdentity: tls.checkServerIdentity,
      ...(tls.serverName === undefined ? {} : { servername: tls.serverName }),
    });
    const done = (result: ProbeResult) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done(handshaken ? 'accepted' : 'unknown'), timeoutMs);
    socket.once('secureConnect', () => (handshaken = true));
    socket.once('data', () => done('accepted'));
    socket.once('error', () => done(handshaken ? 'closed-after-handshake' : 'unknown'));
    socket.once('close', () => done(handshaken ? 'closed-after-handshake' : 'unknown'));
  });
}
