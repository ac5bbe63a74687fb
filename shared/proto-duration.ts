// google.protobuf.Duration ↔ milliseconds. The API's messages carry Durations; the executor and
// jobctl's own flags speak milliseconds. Used by the API and by jobctl (it may import only shared/
// and the generated code), so it lives here.

/** The shape of the generated Duration message. */
export interface ProtoDuration {
  seconds: number;
  nanos: number;
}

export function msToDuration(ms: number): ProtoDuration {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

/** Exact: a Duration that is not a whole number of milliseconds gives a fraction. */
export function durationToMs(duration: ProtoDuration): number {
  return duration.seconds * 1000 + duration.nanos / 1_000_000;
}
