// The watcher benchmark's second baseline (bench/watchers.ts): what grpc-js itself allows. A bare
// grpc-js server with the API's TLS settings answers WatchJobOutput with the given number of
// bytes as OutputChunk messages of MESSAGE_BYTES, serialised once before any client comes, to
// the same gRPC clients as the API gets: no executor, no fan-out, no flow control of ours (it
// writes as fast as grpc-js takes). Run as a process of its own; prints the port it listens on.
//
//   node --import tsx bench/plain-grpc-server.ts CA CERT KEY BYTES
import { randomFillSync } from 'node:crypto';
import { once } from 'node:events';
import { Server } from '@grpc/grpc-js';
import type { ServerWritableStream, ServiceDefinition } from '@grpc/grpc-js';
import { MutualTls13Credentials, readTlsMaterial } from '../api/tls-credentials.ts';
import { OutputStream } from '../api/generated/jobworker/v1/jobworker.ts';
import { encodeOutputChunk } from '../api/output-chunk-wire.ts';
import { READ_CHUNK_BYTES } from '../executor/runtime/output-log.ts';

const [caFile = '', certFile = '', keyFile = '', size = '0'] = process.argv.slice(2);
/** The size of the messages the API makes of stored output: one executor chunk each. */
const MESSAGE_BYTES = READ_CHUNK_BYTES;
const payload = randomFillSync(Buffer.alloc(Number(size)));
const messages: Buffer[] = [];
for (let at = 0; at < payload.length; at += MESSAGE_BYTES) {
  const data = payload.subarray(at, at + MESSAGE_BYTES);
  messages.push(encodeOutputChunk(OutputStream.OUTPUT_STREAM_STDOUT, at, [data]));
}

const identity = (value: Buffer) => value;
const service: ServiceDefinition = {
  watchJobOutput: {
    path: '/jobworker.v1.JobService/WatchJobOutput',
    requestStream: false,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

const server = new Server();
server.addService(service, {
  watchJobOutput: (call: ServerWritableStream<Buffer, Buffer>) => {
    void (async () => {
      for (const message of messages) {
        if (call.cancelled) return;
        if (!call.write(message)) await once(call, 'drain');
      }
      call.end();
    })();
  },
});
const credentials = new MutualTls13Credentials(
  readTlsMaterial({ caFile, certFile, keyFile, crlFile: null }),
);
server.bindAsync('127.0.0.1:0', credentials, (error, port) => {
  if (error) throw error;
  console.log(port);
});
