// The wire shapes of every request message the API serves, as proto/ defines them, for the
// strict check in wire-check.ts. A unit test compares them with the .proto files (through buf),
// so they cannot drift from the generated code.
import type { MessageShape } from './wire-check.ts';

const duration: MessageShape = {
  name: 'google.protobuf.Duration',
  fields: { 1: { name: 'seconds', kind: 'int64' }, 2: { name: 'nanos', kind: 'int32' } },
};

const limits: MessageShape = {
  name: 'jobworker.v1.Limits',
  fields: {
    1: { name: 'cpus', kind: 'double' },
    2: { name: 'memory_bytes', kind: 'uint64' },
    3: { name: 'memory_high_bytes', kind: 'uint64' },
    4: { name: 'pids', kind: 'uint32' },
    5: { name: 'io_read_bps', kind: 'uint64' },
    6: { name: 'io_write_bps', kind: 'uint64' },
    7: { name: 'io_read_iops', kind: 'uint64' },
    8: { name: 'io_write_iops', kind: 'uint64' },
    9: { name: 'cpuset_cpus', kind: 'string' },
    10: { name: 'storage_bytes', kind: 'uint64' },
  },
};

const healthCheckRequest: MessageShape = {
  name: 'grpc.health.v1.HealthCheckRequest',
  fields: { 1: { name: 'service', kind: 'string' } },
};

/** Request shapes by method path. */
export const REQUEST_SHAPES: Readonly<Record<string, MessageShape>> = {
  '/jobworker.v1.JobService/StartJob': {
    name: 'jobworker.v1.StartJobRequest',
    fields: {
      1: { name: 'argv', kind: 'string', repeated: true },
      2: { name: 'env', kind: 'map' },
      3: { name: 'working_dir', kind: 'string' },
      4: { name: 'limits', kind: 'message', shape: limits },
      5: { name: 'timeout', kind: 'message', shape: duration },
      6: { name: 'storage_kind', kind: 'enum' },
    },
  },
  '/jobworker.v1.JobService/StopJob': {
    name: 'jobworker.v1.StopJobRequest',
    fields: {
      1: { name: 'id', kind: 'string' },
      2: { name: 'grace_period', kind: 'message', shape: duration },
    },
  },
  '/jobworker.v1.JobService/GetJob': {
    name: 'jobworker.v1.GetJobRequest',
    fields: { 1: { name: 'id', kind: 'string' } },
  },
  '/jobworker.v1.JobService/ListJobs': {
    name: 'jobworker.v1.ListJobsRequest',
    fields: {
      1: { name: 'owner', kind: 'string' },
      2: { name: 'state', kind: 'enum' },
      3: { name: 'page_size', kind: 'uint32' },
      4: { name: 'page_token', kind: 'string' },
    },
  },
  '/jobworker.v1.JobService/WatchJobOutput': {
    name: 'jobworker.v1.WatchJobOutputRequest',
    fields: { 1: { name: 'id', kind: 'string' }, 2: { name: 'offset', kind: 'uint64' } },
  },
  '/grpc.health.v1.Health/Check': healthCheckRequest,
  '/grpc.health.v1.Health/Watch': healthCheckRequest,
};
