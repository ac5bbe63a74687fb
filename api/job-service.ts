// The JobService handlers. Authorization has already been decided by the interceptor before any
// of these runs; handlers translate, forward to the executor and stream.
import type {
  handleServerStreamingCall,
  handleUnaryCall,
  ServerUnaryCall,
  ServerWritableStream,
  UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { GONE, JobError } from '../shared/errors.ts';
import type { RunQuota } from '../shared/executor-protocol.ts';
import { auditOf } from './call-audit.ts';
import { callBounds } from './call-bounds.ts';
import type { ExecutorClient } from './executor-client.ts';
import type {
  JobServiceServer,
  WatchJobOutputRequest,
} from './generated/jobworker/v1/jobworker.ts';
import { statusFor } from './grpc-status.ts';
import {
  durationToMs,
  jobToMessage,
  listArgsFromRequest,
  specFromRequest,
} from './job-messages.ts';
import { grpcFramed } from './output-chunk-wire.ts';
import type { OutputFanout, OutputSink } from './output-fanout.ts';
import { peerIdentity } from './peer-identity.ts';
import type { WatcherSlots } from './watcher-slots.ts';

export interface JobServiceParts {
  executor: ExecutorClient;
  fanout: OutputFanout;
  /** Running jobs allowed, in all and per identity: the executor checks them with each start. */
  quota: RunQuota;
  logger: Logger;
  watchers: WatcherSlots;
}

/**
 * The generated server interface, but WatchJobOutput writes OutputChunk messages already
 * serialised (once, for every watcher: output-fanout.ts); service-definitions.ts passes them on.
 */
export interface JobServiceHandlers extends UntypedServiceImplementation {
  startJob: JobServiceServer['startJob'];
  stopJob: JobServiceServer['stopJob'];
  getJob: JobServiceServer['getJob'];
  listJobs: JobServiceServer['listJobs'];
  watchJobOutput: handleServerStreamingCall<WatchJobOutputRequest, Buffer>;
}

export interface JobService {
  handlers: JobServiceHandlers;
  /** Ends every output stream now (UNAVAILABLE: resume from the last offset); for shutdown. */
  endStreams(): void;
}

/** Messages a watcher may have handed to grpc-js and not yet written out (each ≤ 1 MiB). */
const MESSAGES_IN_FLIGHT = 2;

export function jobService(parts: JobServiceParts): JobService {
  const { executor, logger } = parts;
  /** One entry per open output stream: how to end it. */
  const streams = new Set<() => void>();

  /** An async handler as a grpc-js unary handler: its result or its error, mapped in one place. */
  function unary<Request, Response>(
    handle: (call: ServerUnaryCall<Request, Response>) => Promise<Response>,
  ): handleUnaryCall<Request, Response> {
    return (call, callback) => {
      handle(call).then(
        (response) => callback(null, response),
        (error: unknown) => callback(statusFor(error, logger)),
      );
    };
  }

  /**
   * A watcher's stream as the fan-out's sink: at most MESSAGES_IN_FLIGHT messages handed to
   * grpc-js and not yet written out (flow control holds them), so a slow watcher waits alone.
   */
  function callSink(call: ServerWritableStream<WatchJobOutputRequest, Buffer>): OutputSink {
    let inFlight = 0;
    let room: (() => void) | null = null;
    return {
      async ready() {
        while (inFlight >= MESSAGES_IN_FLIGHT)
          await new Promise<void>((resolve) => (room = resolve));
      },
      send(wire) {
        inFlight += 1;
        call.write(grpcFramed(wire), () => {
          inFlight -= 1;
          room?.();
          room = null;
        });
      },
    };
  }

  /** Work whose outcome the call's audit must report, whether or not its client still waits. */
  function held<T>(request: object, work: Promise<T>): Promise<T> {
    return auditOf(request)?.hold(work) ?? work;
  }

  const watchJobOutput: handleServerStreamingCall<WatchJobOutputRequest, Buffer> = (call) => {
    let release: () => void;
    try {
      release = parts.watchers.take(peerIdentity(call.getAuthContext()).name);
    } catch (error) {
      call.emit('error', statusFor(error, logger));
      return;
    }
    // A watcher that goes away releases its place in the fan-out at once. (grpc-js reports every
    // call as cancelled once its status is sent, too: a watch that has ended has nothing to stop.)
    const gone = new AbortController();
    let ended = false;
    call.on('cancelled', () => {
      if (!ended) gone.abort(GONE);
    });
    const end = () => {
      if (gone.signal.aborted) return;
      gone.abort(GONE);
      call.emit(
        'error',
        statusFor(
          new JobError('unavailable', 'the server is shutting down; resume from the last offset'),
          logger,
        ),
      );
    };
    streams.add(end);
    const { id, offset } = call.request;
    parts.fanout
      .watch(id, offset, callSink(call), gone.signal)
      .then(
        () => {
          ended = true;
          if (!gone.signal.aborted) call.end();
        },
        (error: unknown) => {
          ended = true;
          if (!gone.signal.aborted) call.emit('error', statusFor(error, logger));
        },
      )
      .finally(() => {
        streams.delete(end);
        release();
      });
  };

  const handlers: JobServiceHandlers = {
    // A start or stop is seen through even when its client has gone, and audited when it settles.
    startJob: unary(async (call) => {
      const bounds = callBounds(call);
      const owner = bounds.identity;
      const spec = specFromRequest(call.request);
      const started = executor.startJob(spec, owner, bounds, parts.quota);
      return jobToMessage(await held(call.request, started));
    }),
    stopJob: unary(async (call) => {
      const grace = call.request.gracePeriod;
      const graceMs = grace ? durationToMs(grace, 'grace_period') : undefined;
      const stopped = executor.stopJob(call.request.id, graceMs, callBounds(call));
      return jobToMessage(await held(call.request, stopped));
    }),
    getJob: unary(async (call) =>
      jobToMessage(await executor.getJob(call.request.id, callBounds(call))),
    ),
    listJobs: unary(async (call) => {
      const page = await executor.listJobs(listArgsFromRequest(call.request), callBounds(call));
      const last = page.jobs.at(-1);
      return { jobs: page.jobs.map(jobToMessage), nextPageToken: page.more && last ? last.id : '' };
    }),
    watchJobOutput,
  };
  return {
    handlers,
    endStreams: () => {
      for (const end of streams) end();
    },
  };
}
