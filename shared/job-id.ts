// What a job id looks like: the executor makes each one from 128 random bits, written as 32
// lowercase hex characters. Every side that checks an id (the executor's op table, the API's
// interceptor, jobctl, the cgroup layout) uses these.
export const JOB_ID = /^[0-9a-f]{32}$/;
/** A job id or the start of one: what jobctl takes on its command line. */
export const JOB_ID_PREFIX = /^[0-9a-f]{1,32}$/;
/** A job id in words, for error messages. */
export const JOB_ID_RULE = 'a job id (32 lowercase hex characters)';
