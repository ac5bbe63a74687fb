// The executor's side of a job's keeper (the C helper's long-lived process; its protocol is at
// the top of executor/helper/jobworker-helper.c): getting one from the launcher for a new job,
// finding it again after an executor restart, and the control channel to it. The keeper owns the
// job and writes its output; this side only asks (watch, stop) and listens (size, status, ended).
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { getSystemErrorMap } from 'node:util';
import type { Logger } from 'pino';
import type { StorageKind } from '../../shared/job.ts';

export const KEEPER_SOCKET = 'keeper.sock';

/** What the keeper needs; every path and id here was derived by the executor, none by a client. */
export interface KeeperSpec {
  uid: number;
  gid: number;
  hostname: string;
  /** The job's own filesystem at /job: what backs it and its caps. */
  storage: KeeperStorage;
  /** Working directory inside the job's view. */
  cwd: string;
  tmpSizeBytes: number;
  /** Output stored; the rest is drained and dropped, and the job marked truncated. */
  outputMaxBytes: number;
  /** The keeper stops the job (reason timed-out) after this long; null: never. */
  timeoutMs: number | null;
  /** SIGTERM → this long → SIGKILL, for a timeout (a stop names its own grace). */
  timeoutGraceMs: number;
  /** RLIMIT_NOFILE of the job's processes. */
  openFiles: number;
  /** The job's cgroups the init joins (v1 hierarchies). */
  cgroupDirs: readonly string[];
  /** The job's cgroup v2 directory, which the init is cloned into; undefined without one. */
  cgroup2Dir: string | undefined;
  argv: readonly string[];
  env: readonly string[];
  /**
   * The job's record (record.json's text): the keeper writes it, and keeper.id, before anything
   * of the job exists, with no trips to this process's thread pool on the start's way.
   */
  record: string;
}

export interface KeeperStorage {
  kind: StorageKind;
  bytes: number;
  inodes: number;
  /** disk: host path of the ext4 image the executor made (the init attaches and unlinks it). */
  image: string | null;
}

/** A keeper process, named so that a pid reused by another process cannot pass for it. */
export interface KeeperIdentity {
  pid: number;
  /** Clock ticks since boot at which the process started (/proc/<pid>/stat field 22). */
  startTime: string;
}

export type StartResult = { started: true } | { started: false; error: StartError };

export interface StartError {
  /** Errno name (ENOENT, EACCES, …), or "" when the helper gave none. */
  errno: string;
  /** libuv's wording: "no such file or directory". */
  reason: string;
  /** Where it failed: "exec", "chdir", "join cgroup /sys/…", … */
  stage: string;
}

/** Control lines are short; a longer one is a broken keeper. */
const MAX_LINE_BYTES = 1024;
/** A keeper says who it is at once; one that does not within this long is not answering. */
const HELLO_TIMEOUT_MS = 5_000;

const NO_ANSWER: KeeperIdentity = { pid: 0, startTime: '' };

/** The keeper's hello, or NO_ANSWER when it does not come in time. */
function helloOf(link: KeeperLink): Promise<KeeperIdentity> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<KeeperIdentity>((resolve) => {
    timer = setTimeout(() => resolve(NO_ANSWER), HELLO_TIMEOUT_MS);
  });
  return Promise.race([link.identity, late]).finally(() => clearTimeout(timer));
}

const systemErrors = getSystemErrorMap();

/** What execve can fail with that libuv's table does not name (Linux numbers). */
const EXEC_ERRORS_LIBUV_LACKS = new Map<number, [string, string]>([
  [8, ['ENOEXEC', 'exec format error']],
  [80, ['ELIBBAD', 'accessing a corrupted shared library']],
]);

export function describeErrno(errno: number): { name: string; reason: string } {
  const known = systemErrors.get(-errno) ?? EXEC_ERRORS_LIBUV_LACKS.get(errno);
  return known
    ? { name: known[0], reason: known[1] }
    : { name: errno ? `E${errno}` : '', reason: errno ? `error ${errno}` : 'unknown error' };
}

/** "start-error <errno> <stage>" as the helper words it. */
export function parseStartError(words: readonly string[]): StartError {
  const { name, reason } = describeErrno(Number(words[0]));
  return { errno: name, reason, stage: words.slice(1).join(' ') };
}

function encodeSpec(jobDir: string, spec: KeeperSpec): Buffer {
  const pairs: [string, string][] = [
    ['job-dir', jobDir],
    ['uid', String(spec.uid)],
    ['gid', String(spec.gid)],
    ['hostname', spec.hostname],
    ['storage', spec.storage.kind],
    ['storage-bytes', String(spec.storage.bytes)],
    ['storage-inodes', String(spec.storage.inodes)],
    ...(spec.storage.image === null
      ? []
      : [['storage-image', spec.storage.image] as [string, string]]),
    ['cwd', spec.cwd],
    ['tmp-size', String(spec.tmpSizeBytes)],
    ['output-max', String(spec.outputMaxBytes)],
    ['timeout-ms', String(spec.timeoutMs ?? 0)],
    ['timeout-grace-ms', String(spec.timeoutGraceMs)],
    ['nofile', String(spec.openFiles)],
    ['record', spec.record],
    ...spec.cgroupDirs.map((dir): [string, string] => ['cgroup', dir]),
    ...(spec.cgroup2Dir === undefined ? [] : [['cgroup2', spec.cgroup2Dir] as [string, string]]),
    ...spec.argv.map((arg): [string, string] => ['arg', arg]),
    ...spec.env.map((entry): [string, string] => ['env', entry]),
  ];
  const body = Buffer.from(pairs.map(([key, value]) => `${key}\0${value}\0`).join(''), 'utf8');
  const header = Buffer.allocUnsafe(4);
  header.writeUInt32BE(body.length, 0);
  return Buffer.concat([header, body]);
}

/** The start time of a live process, or null when there is none with that pid. */
export async function processStartTime(pid: number): Promise<string | null> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null) return null;
  // `pid (comm) state ppid …`; comm may hold spaces and parentheses: count after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19] ?? null; // field 22 of the whole line
}

/** True when `identity` names a process alive now: the same pid, started at the same time. */
export async function isAlive(identity: KeeperIdentity): Promise<boolean> {
  return (await processStartTime(identity.pid)) === identity.startTime;
}

/**
 * The last resort against a keeper that no longer answers: SIGKILL, after checking that the
 * pid still names that keeper. Its job dies with it (the init's parent-death signal).
 */
export async function killKeeper(identity: KeeperIdentity): Promise<void> {
  if (await isAlive(identity)) {
    try {
      process.kill(identity.pid, 'SIGKILL');
    } catch {
      // it ended meanwhile
    }
  }
}

export class KeeperLink {
  /** The keeper's own "keeper <pid> <start time>". */
  readonly identity: Promise<KeeperIdentity>;
  /** On a found-again keeper: the job's uid and its init's pid ("job <uid> <init pid>"). */
  readonly job: Promise<{ uid: number; initPid: number }>;
  /** A launched keeper's start report: the program runs, or why it could not. */
  readonly started: Promise<StartResult>;
  /**
   * Resolves when the channel has closed; `ended` when the keeper said the job had ended, and
   * `status` the keeper.status text it sent with that ("status <line>" lines; null from a keeper
   * that sends none, an older one: then the file says it).
   */
  readonly closed: Promise<{ ended: boolean; status: string | null }>;
  /**
   * The same, as soon as the keeper has said the job ended (its exit, and so the channel's close,
   * follows): or when the channel closed without that.
   */
  readonly done: Promise<{ ended: boolean; status: string | null }>;
  /** Called with each size notice after watch(). */
  onSize: ((bytes: number, truncated: boolean) => void) | null = null;

  private readonly socket: net.Socket;
  private readonly logger: Logger;

  constructor(socket: net.Socket, logger: Logger) {
    this.socket = socket;
    this.logger = logger;
    let resolveIdentity!: (identity: KeeperIdentity) => void;
    let resolveJob!: (job: { uid: number; initPid: number }) => void;
    let resolveStart!: (result: StartResult) => void;
    let resolveDone!: (done: { ended: boolean; status: string | null }) => void;
    this.done = new Promise((resolve) => (resolveDone = resolve));
    this.identity = new Promise((resolve) => (resolveIdentity = resolve));
    this.job = new Promise((resolve) => (resolveJob = resolve));
    this.started = new Promise((resolve) => (resolveStart = resolve));
    let ended = false;
    let status: string | null = null;
    let pending = '';
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      pending += text;
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const [kind = '', ...rest] = pending.slice(0, newline).split(' ');
        pending = pending.slice(newline + 1);
        switch (kind) {
          case 'keeper':
            resolveIdentity({ pid: Number(rest[0]), startTime: rest[1] ?? '' });
            break;
          case 'job':
            resolveJob({ uid: Number(rest[0]), initPid: Number(rest[1]) });
            break;
          case 'init':
            break;
          case 'started':
            resolveStart({ started: true });
            break;
          case 'start-error':
            resolveStart({ started: false, error: parseStartError(rest) });
            break;
          case 'size':
            this.onSize?.(Number(rest[0]), rest[1] === '1');
            break;
          case 'status':
            status = `${status ?? ''}${rest.join(' ')}\n`;
            break;
          case 'ended':
            ended = true;
            resolveDone({ ended, status });
            break;
          default:
            this.logger.warn({ line: kind }, 'unexpected line from a job keeper');
        }
      }
      if (pending.length > MAX_LINE_BYTES) {
        this.logger.error('a job keeper sent an overlong line; closing its channel');
        socket.destroy();
      }
    });
    socket.on('error', (error) => this.logger.debug({ err: error }, 'keeper channel error'));
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        const gone = new Error('the keeper closed its channel');
        resolveStart({
          started: false,
          error: { errno: '', reason: gone.message, stage: 'job setup' },
        });
        resolveIdentity({ pid: 0, startTime: '' });
        resolveJob({ uid: 0, initPid: 0 });
        const outcome = { ended, status: ended ? status : null };
        resolve(outcome);
        resolveDone(outcome);
      });
    });
  }

  /** Gives a new keeper its job, whose directory is `jobDir` (root-only; the keeper creates its
   * output files, status file and socket there); its start is reported on `started`. */
  give(jobDir: string, spec: KeeperSpec): void {
    if (!this.socket.destroyed) this.socket.write(encodeSpec(jobDir, spec));
  }

  /**
   * Tells a keeper given its job that the job's cgroups are made: its init, which reads this
   * connection until then, may join them.
   */
  cgroupsReady(): void {
    this.send('ready');
  }

  /**
   * Ends a start the keeper was given: it ends without running anything, and this resolves once
   * it has (nothing of it is left writing in the job's directory).
   */
  async abandon(): Promise<void> {
    this.socket.end();
    await this.closed;
  }

  /** Asks for size notices, the first at once. */
  watch(): void {
    this.send('watch');
  }

  /** SIGTERM to the job, then after `graceMs` everything of it killed; recorded by the keeper. */
  stop(graceMs: number): void {
    this.send(`stop ${Math.max(0, Math.floor(graceMs))}`);
  }

  /** Lets go of the keeper (it carries on alone): an executor that stops or restarts. */
  close(): void {
    this.socket.destroy();
  }

  private send(line: string): void {
    if (!this.socket.destroyed) this.socket.write(`${line}\n`);
  }
}

/** Where new keepers come from (keeper-launcher.ts). */
export interface KeeperSource {
  /** A new connection, a new keeper at its other end. */
  connect(): Promise<net.Socket>;
}

/** A new keeper, not yet given its job. */
export interface ConnectedKeeper {
  link: KeeperLink;
  identity: KeeperIdentity;
}

/**
 * Gets a new keeper from the launcher and its identity. It has no job yet: `link.give()` sends
 * it one; a keeper whose connection closes first just ends. So a start can ask for its keeper at
 * once, while it makes the job's cgroups and saves its record.
 */
export async function connectKeeper(
  launcher: KeeperSource,
  logger: Logger,
): Promise<ConnectedKeeper> {
  const link = new KeeperLink(await launcher.connect(), logger);
  // Only root can reach the launcher, and only the keeper it forked holds the other end of this
  // connection: its hello is proof enough here (a job that fails at once may have its keeper
  // gone before /proc could be read). The start time it gives is what a later executor checks
  // before it trusts the keeper.
  const identity = await helloOf(link);
  if (!(identity.pid > 0) || !/^\d+$/.test(identity.startTime)) {
    link.close();
    throw new Error('the keeper did not identify itself');
  }
  return { link, identity };
}

/**
 * Finds a job's keeper again (after an executor restart): connects to its socket and checks that
 * the process answering is the keeper recorded for the job, alive since then. Null when no keeper
 * listens any more (the job has ended, or its keeper was killed).
 */
export async function reconnectKeeper(
  jobDir: string,
  recorded: KeeperIdentity,
  logger: Logger,
): Promise<KeeperLink | null> {
  const socket = net.createConnection(join(jobDir, KEEPER_SOCKET));
  const connected = await new Promise<boolean>((resolve) => {
    socket.once('connect', () => resolve(true));
    socket.once('error', () => resolve(false));
  });
  if (!connected) {
    socket.destroy();
    return null;
  }
  const link = new KeeperLink(socket, logger);
  const identity = await helloOf(link);
  if (
    identity.pid !== recorded.pid ||
    identity.startTime !== recorded.startTime ||
    !(await isAlive(identity))
  ) {
    logger.error(
      { recorded, answered: identity },
      'the process on a job keeper socket is not the keeper recorded for the job',
    );
    link.close();
    return null;
  }
  return link;
}
