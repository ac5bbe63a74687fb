// WatchJobOutput's messages reach grpc-js framed already (output-chunk-wire.ts: gRPC's five-byte
// prefix written in place, in front of the serialised OutputChunk). grpc-js frames every message
// itself: it allocates a buffer of the message's size plus five and copies the message into it,
// once per watcher per message (up to 1 MiB each). With a hundred watchers that copy and its
// allocation were a sixth of the API's CPU. So, for WatchJobOutput calls only, the call's own
// framing step (BaseServerInterceptingCall's serializeMessage, which grpc-js calls for every
// message it sends) is replaced on that call by one that passes the framed bytes on as they are,
// where the interceptor already takes hold of grpc-js's call.
//
// serializeMessage is grpc-js's, not part of its interface: a unit test checks that the version
// installed still has it. Should a later grpc-js lose it, nothing is replaced and the method's
// serializer (service-definitions.ts) strips the prefix again, so grpc-js frames it itself: the
// same bytes on the wire, at the old cost.
import type { ServerInterceptingCallInterface } from '@grpc/grpc-js';
import { JOB_SERVICE } from './service-definitions.ts';

const WATCH_PATH = JOB_SERVICE.watchJobOutput.path;

/**
 * On grpc-js's own call (what the first interceptor is given: authorization-interceptor.ts), a
 * WatchJobOutput call's messages are sent as they come, framed.
 */
export function sendWatchMessagesFramed(path: string, call: ServerInterceptingCallInterface): void {
  if (path !== WATCH_PATH) return;
  const own = call as unknown as { serializeMessage?: unknown };
  if (typeof own.serializeMessage === 'function')
    own.serializeMessage = (framed: Buffer): Buffer => framed;
}
