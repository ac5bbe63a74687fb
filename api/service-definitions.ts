// The services as the server registers them: the generated definitions, each request checked
// strictly (wire-check.ts) before ts-proto decodes it, and output chunks passed on as the
// fan-out serialised them. A request that fails the check becomes a
// RefusedRequest, which the authorization interceptor answers with INVALID_ARGUMENT: grpc-js
// would turn a decoder's exception into INTERNAL "Error deserializing request".
import type { MethodDefinition } from '@grpc/grpc-js';
import { JobError } from '../shared/errors.ts';
import { invalid } from '../shared/schema.ts';
import { HealthService } from './generated/grpc/health/v1/health.ts';
import { JobServiceService } from './generated/jobworker/v1/jobworker.ts';
import { REQUEST_SHAPES } from './request-shapes.ts';
import { GRPC_PREFIX_BYTES } from './output-chunk-wire.ts';
import { checkWire } from './wire-check.ts';

/** A request that never reaches a handler: the interceptor answers it with its error. */
export class RefusedRequest {
  readonly error: JobError;

  constructor(error: JobError) {
    this.error = error;
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any request and response type
type Methods = Record<string, MethodDefinition<any, any>>;

function readStrictly<Service extends Methods>(service: Service): Service {
  const entries = Object.entries(service).map(([name, method]) => {
    const shape = REQUEST_SHAPES[method.path];
    if (!shape) throw new Error(`no request shape for ${method.path}`);
    const requestDeserialize = (bytes: Buffer): unknown => {
      try {
        checkWire(bytes, shape);
        return method.requestDeserialize(bytes);
      } catch (error) {
        return new RefusedRequest(
          error instanceof JobError ? error : invalid('request', `is not a valid ${shape.name}`),
        );
      }
    };
    return [name, { ...method, requestDeserialize }];
  });
  return Object.fromEntries(entries) as Service;
}

/**
 * WatchJobOutput's messages come serialised and framed already (output-fanout.ts,
 * output-chunk-wire.ts), and are sent as they are (watch-framing.ts). This serializer is used
 * only if grpc-js frames them itself after all: then it gives it the message without the prefix.
 */
export const JOB_SERVICE = {
  ...readStrictly(JobServiceService),
  watchJobOutput: {
    ...readStrictly(JobServiceService).watchJobOutput,
    responseSerialize: (framed: Buffer): Buffer => framed.subarray(GRPC_PREFIX_BYTES),
  },
};
export const HEALTH_SERVICE = readStrictly(HealthService);
