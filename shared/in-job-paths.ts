// Paths as a job sees them. The executor's runtime and its C helper both use these; the helper
// has its own #defines (C cannot import them), and a unit test (helper-constants.test.ts) keeps
// the two equal.

/** The job's writable directory: its default working directory and $HOME. */
export const JOB_DIR = '/job';
/** PATH in a job's environment unless its request sets one. */
export const JOB_DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
