/*
 * jobworker-helper: the one native program between the root executor and a job.
 *
 * Node cannot clone into namespaces, act as PID 1, drop privileges between fork and exec, or
 * report an exec failure from inside a namespace; and a job must outlive the executor that
 * started it (a crash, an upgrade). This small program does exactly that and nothing more. It
 * is started by the executor only (never by a user) and trusts the executor; it still refuses
 * specs that would run a job as root.
 *
 * Four processes:
 *
 *   launcher  (root, one per executor, its child; `jobworker-helper launcher <socket> <mask>*`)
 *      │    builds the jobs' view template (a mount namespace it holds open, built anew after the
 *      │    host's mounts or top-level entries change) and forks a keeper for each connection to
 *      │    <socket>, so that no job start pays for a spawn from the executor's large Node
 *      │    process or for building the view; ends with the executor, keepers do not
 *   keeper  (host PID namespace, root, its own session, outside the job's cgroups)
 *      │    owns the job for its whole life, whether or not an executor is running: holds the
 *      │    read ends of the job's stdout and stderr pipes and appends what arrives to the
 *      │    job's output files itself (splice: no copy through user space), drops output past
 *      │    the cap or on a write error (a job never blocks on its output), enforces the
 *      │    timeout, carries out stops, and records the job's end in a status file. Serves the
 *      │    executor that started it on fd 3 and any later one on keeper.sock.
 *      └─ init  (PID 1 of new PID, mount, network, UTS and IPC namespaces, cloned into the
 *           │   job's v2 cgroup) waits for the executor's "ready" (the job's cgroups are
 *           │   made), moves itself into the job's v1 cgroups, makes its mount
 *           │   namespace a copy of the view template and mounts the job's own filesystems on
 *           │   it, sets the hostname, brings up loopback, waits for the keeper's
 *           │   go (the job's record is on disk), forks the job, forwards signals to its
 *           │   process group, reaps every orphan, exits with the job's status (the kernel then
 *           │   kills whatever is left in the namespace). Dies with the keeper.
 *           └─ job  born inside the job's cgroups, with the init's dropped identity and
 *                   seccomp filter (the init drops every privilege before it forks the job);
 *                   its own session, limits and working directory, then exec.
 *
 * The job's directory (the spec's job-dir, root-only; fd 4 in the keeper, whose fds 5 and 6 are
 * the view template and its root until the init is cloned) holds what the keeper writes:
 *   output.bin     stdout and stderr bytes in order of arrival (clients' offsets are into this)
 *   output.idx     8-byte big-endian entries (run start offset << 1 | 0 stdout, 1 stderr),
 *                  each written before its run's bytes: no byte is ever on disk without its tag
 *   record.json    the job's record, as the executor gave it (then the executor's to rewrite)
 *   keeper.id      "<pid> <start time>\n": the keeper, named so that a restarted executor can
 *                  check the process answering on keeper.sock, or kill one that does not answer
 *   keeper.sock    where a restarted executor finds the keeper again
 *   keeper.status  written once, atomically, when the job has ended (see write_status)
 *
 * Protocol. The launcher, on its fd 3 (a socket from the executor that started it):
 *   launcher → executor  "ready" once its view template is built and it listens
 *                        | "start-error <errno> <stage>", then exits
 * Start, on a keeper's fd 3 (the executor's connection to the launcher's socket):
 *   keeper → executor  "keeper <pid> <start time>"       (start time: /proc/<pid>/stat field 22)
 *   executor → keeper  u32 big-endian length, then NUL-terminated "key\0value\0" pairs (keys:
 *                      job-dir uid gid hostname storage storage-bytes storage-inodes storage-image
 *                      cwd tmp-size output-max timeout-ms timeout-grace-ms nofile record cgroup2
 *                      cgroup* arg* env*; the storage keys under "The job's own
 *                      filesystem")
 *   executor → keeper  "ready": the job's cgroups (all but cgroup2, which exists before the
 *                      spec is sent) are made. The keeper clones the init meanwhile and saves
 *                      the job's record; the init reads "ready" on fd 3 itself, and only then
 *                      joins the cgroups and builds the job's filesystem
 *   keeper → executor  "init <pid>", then "started" | "start-error <errno> <stage>"
 * Then fd 3, and every connection to keeper.sock, is a control channel of text lines:
 *   keeper → executor  on a keeper.sock connection first: "keeper <pid> <start time>",
 *                      "job <uid> <init pid>"
 *                      after "watch": "size <output bytes> <truncated 0|1>" whenever it changed
 *                      (coalesced: the keeper never waits for a slow reader)
 *                      "status <line>" for each line of keeper.status once it is written, then
 *                      "ended"; then the keeper exits
 *   executor → keeper  "watch"
 *                      "stop <grace ms>": SIGTERM to the job, everything killed after the grace
 * A line the keeper does not understand closes that connection, nothing else.
 *
 * Built with: cc -O2 -Wall -Wextra -Werror (scripts/build-helper.sh). libc only.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/loop.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <grp.h>

#define CONTROL_FD 3
/* The executor's word, after the spec, that the job's cgroups are all there to join. */
#define CGROUPS_READY "ready\n"
#define JOB_DIR_FD 4
/* The launcher's view template (a mount namespace), in each keeper and its init. */
#define VIEW_TEMPLATE_FD 5
/* The view template's root directory (O_PATH), with it. */
#define VIEW_ROOT_FD 6
/* Room for the largest argv and environment twice over: once as strings, once in the record,
 * where JSON may spell a byte in six. */
#define MAX_SPEC_BYTES (4u << 20)
#define OUTPUT_PIPE_BYTES (1 << 20)
/* Where the job's writable directory appears, and its default working directory. */
#define JOB_DIR "/job"
/* The job's root is a tmpfs mounted here inside our private mount namespace, then pivoted to. */
#define NEW_ROOT "/tmp"
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* The files of the job's directory (relative to it: the keeper's working directory). */
#define OUTPUT_DATA_FILE "output.bin"
#define OUTPUT_INDEX_FILE "output.idx"
#define KEEPER_SOCKET "keeper.sock"
#define STATUS_FILE "keeper.status"
#define STATUS_TEMP_FILE "keeper.status.tmp"
#define RECORD_FILE "record.json"
#define RECORD_TEMP_FILE "record.json.tmp"
#define KEEPER_ID_FILE "keeper.id"
#define KEEPER_ID_TEMP_FILE "keeper.id.tmp"
/* Room reserved for the status file when the job starts, so recording its end never needs
 * space a full disk no longer has. */
#define STATUS_BYTES 512

/* Exit statuses of the keeper itself (the job's status is reported on fd 3 and in the status
 * file, not here). */
#define EXIT_START_FAILED 1
#define EXIT_HELPER_FAILED 2

/* What backs the job's own filesystem at JOB_DIR. */
enum storage_kind { STORAGE_UNSET, STORAGE_MEMORY, STORAGE_DISK };

struct spec {
    const char *job_dir;               /* host path of the job's root-only directory */
    uid_t uid;
    gid_t gid;
    const char *hostname;
    enum storage_kind storage;
    unsigned long long storage_bytes;  /* the size cap of JOB_DIR */
    unsigned long long storage_inodes; /* its inode cap */
    const char *storage_image;         /* disk: host path of the ext4 image the executor made */
    const char *cwd;                   /* path inside the job's view */
    unsigned long long tmp_size;
    unsigned long long output_max;   /* bytes of output stored; the rest is dropped */
    unsigned long long timeout_ms;   /* 0: none */
    unsigned long long timeout_grace_ms;
    unsigned long long nofile;       /* RLIMIT_NOFILE of the job's processes */
    const char *cgroup2;             /* the job's cgroup v2 directory: the init is cloned into it */
    bool cgroup2_by_move;            /* ... or, where clone3 is refused, moves itself there */
    const char **cgroups;            /* the job's other (v1) cgroups: the init joins them */
    size_t n_cgroups;
    char **argv;
    size_t argc;
    char **envp;
    size_t envc;
    const char *record; /* the job's record (the executor's JSON), written before the job runs */
};

/* Start-time failures go to the executor as "start-error <errno> <stage>": from the keeper
 * directly on fd 3, from the init and the job through the close-on-exec exec pipe, which the
 * keeper relays. */
static int report_fd = CONTROL_FD;

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return; /* the reader is gone; nothing better to do */
        }
        buf += n;
        len -= (size_t)n;
    }
}

/* One record as one line into buf: a path with a newline in it must not forge a second record,
 * and a truncated record still ends its line. Returns the line's length. */
__attribute__((format(printf, 3, 0))) static size_t format_line(char *buf, size_t size,
                                                                  const char *fmt, va_list ap)
{
    int n = vsnprintf(buf, size, fmt, ap);
    if (n <= 0)
        return 0;
    size_t len = (size_t)n < size ? (size_t)n : size - 1;
    for (size_t i = 0; i + 1 < len; i++)
        if (buf[i] == '\n')
            buf[i] = '?';
    buf[len - 1] = '\n';
    return len;
}

__attribute__((format(printf, 2, 3))) static void report(int fd, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    size_t len = format_line(line, sizeof line, fmt, ap);
    va_end(ap);
    write_all(fd, line, len);
}

/* A failure before the job's program runs: reported as a start error, then this process ends. */
__attribute__((noreturn, format(printf, 2, 3))) static void fail(int err, const char *fmt, ...)
{
    char stage[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(stage, sizeof stage, fmt, ap);
    va_end(ap);
    report(report_fd, "start-error %d %s\n", err, stage);
    _exit(EXIT_START_FAILED);
}

/* A failure with no one left to report it to: the keeper's and the init's stderr is /dev/null
 * once the executor may be gone, so this only ends the process (and, for the keeper, the job
 * with it: the init dies with its keeper). */
__attribute__((noreturn, format(printf, 1, 2))) static void die_errno(const char *fmt, ...)
{
    int err = errno;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "jobworker-helper: %s: %s\n", msg, strerror(err));
    _exit(EXIT_HELPER_FAILED);
}

/* ---------------------------------------------------------------------------------------- */
/* Spec                                                                                      */

static void read_exact(int fd, void *buf, size_t len, const char *what)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fail(n == 0 ? EPIPE : errno, "read %s", what);
        p += n;
        len -= (size_t)n;
    }
}

/* A uid or gid: decimal, never 0 (root) and never (uid_t)-1 (which the set*id calls ignore). */
static unsigned long parse_id(const char *key, const char *value)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(value, &end, 10);
    if (errno != 0 || *value == '\0' || *end != '\0' || v == 0 || v >= 0xFFFFFFFFul)
        fail(EINVAL, "spec %s", key);
    return v;
}

/* A decimal count: digits only, no sign, no overflow. */
static unsigned long long parse_count(const char *key, const char *value)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(value, &end, 10);
    if (errno != 0 || *value < '0' || *value > '9' || *end != '\0')
        fail(EINVAL, "spec %s", key);
    return v;
}

/* Absolute, and no ".." component: the executor derives these paths, this only catches bugs. */
static bool is_absolute_clean_path(const char *path)
{
    if (path[0] != '/')
        return false;
    for (const char *p = path; (p = strstr(p, "..")) != NULL; p += 2)
        if (p[-1] == '/' && (p[2] == '/' || p[2] == '\0'))
            return false;
    return true;
}

static void read_spec(struct spec *s)
{
    unsigned char header[4];
    read_exact(CONTROL_FD, header, sizeof header, "spec");
    uint32_t len = (uint32_t)header[0] << 24 | (uint32_t)header[1] << 16 |
                   (uint32_t)header[2] << 8 | header[3];
    if (len == 0 || len > MAX_SPEC_BYTES)
        fail(EMSGSIZE, "spec length %u", len);
    char *buf = malloc(len);
    if (!buf)
        fail(ENOMEM, "spec buffer");
    read_exact(CONTROL_FD, buf, len, "spec");
    if (buf[len - 1] != '\0')
        fail(EINVAL, "spec not NUL-terminated");

    /* Every list is at most the number of strings, which is at most len / 2 pairs. */
    size_t max_items = len / 2 + 1;
    s->cgroups = calloc(max_items, sizeof *s->cgroups);
    s->argv = calloc(max_items + 1, sizeof *s->argv);
    s->envp = calloc(max_items + 1, sizeof *s->envp);
    if (!s->cgroups || !s->argv || !s->envp)
        fail(ENOMEM, "spec lists");

    bool has_output_max = false;
    for (char *p = buf; p < buf + len;) {
        char *key = p;
        p += strlen(p) + 1;
        if (p >= buf + len)
            fail(EINVAL, "spec key %s has no value", key);
        char *value = p;
        p += strlen(p) + 1;
        if (strcmp(key, "job-dir") == 0)
            s->job_dir = value;
        else if (strcmp(key, "uid") == 0)
            s->uid = (uid_t)parse_id(key, value);
        else if (strcmp(key, "gid") == 0)
            s->gid = (gid_t)parse_id(key, value);
        else if (strcmp(key, "hostname") == 0)
            s->hostname = value;
        else if (strcmp(key, "storage") == 0) {
            if (strcmp(value, "memory") == 0)
                s->storage = STORAGE_MEMORY;
            else if (strcmp(value, "disk") == 0)
                s->storage = STORAGE_DISK;
            else
                fail(EINVAL, "spec storage %s", value);
        } else if (strcmp(key, "storage-bytes") == 0)
            s->storage_bytes = parse_count(key, value);
        else if (strcmp(key, "storage-inodes") == 0)
            s->storage_inodes = parse_count(key, value);
        else if (strcmp(key, "storage-image") == 0)
            s->storage_image = value;
        else if (strcmp(key, "cwd") == 0)
            s->cwd = value;
        else if (strcmp(key, "tmp-size") == 0)
            s->tmp_size = parse_count(key, value);
        else if (strcmp(key, "output-max") == 0) {
            s->output_max = parse_count(key, value);
            has_output_max = true;
        } else if (strcmp(key, "timeout-ms") == 0)
            s->timeout_ms = parse_count(key, value);
        else if (strcmp(key, "timeout-grace-ms") == 0)
            s->timeout_grace_ms = parse_count(key, value);
        else if (strcmp(key, "nofile") == 0)
            s->nofile = parse_count(key, value);
        else if (strcmp(key, "cgroup") == 0)
            s->cgroups[s->n_cgroups++] = value;
        else if (strcmp(key, "cgroup2") == 0)
            s->cgroup2 = value;
        else if (strcmp(key, "arg") == 0)
            s->argv[s->argc++] = value;
        else if (strcmp(key, "env") == 0)
            s->envp[s->envc++] = value;
        else if (strcmp(key, "record") == 0)
            s->record = value;
        else
            fail(EINVAL, "spec key %s unknown", key);
    }

    /* The executor validated all of this; a job must still never run as root here. */
    if (!s->job_dir || !is_absolute_clean_path(s->job_dir))
        fail(EINVAL, "spec job-dir");
    if (!s->record || !s->record[0])
        fail(EINVAL, "spec record");
    if (s->uid == 0 || s->gid == 0)
        fail(EPERM, "spec uid/gid");
    if (s->argc == 0)
        fail(EINVAL, "spec argv empty");
    if (!s->hostname || strlen(s->hostname) == 0 || strlen(s->hostname) > 64)
        fail(EINVAL, "spec hostname");
    if (s->storage == STORAGE_UNSET || s->storage_bytes == 0 || s->storage_inodes == 0)
        fail(EINVAL, "spec storage");
    if ((s->storage == STORAGE_DISK) != (s->storage_image != NULL) ||
        (s->storage_image && !is_absolute_clean_path(s->storage_image)))
        fail(EINVAL, "spec storage-image");
    if (!s->cwd || !is_absolute_clean_path(s->cwd))
        fail(EINVAL, "spec cwd");
    if (s->tmp_size == 0)
        fail(EINVAL, "spec tmp-size");
    if (!has_output_max)
        fail(EINVAL, "spec output-max");
    if (s->nofile < 16 || s->nofile > 1u << 20)
        fail(EINVAL, "spec nofile");
    /* Past a day of milliseconds times a thousand years, a timer's arithmetic could wrap. */
    if (s->timeout_ms > 1ull << 45 || s->timeout_grace_ms > 1ull << 45)
        fail(EINVAL, "spec timeout");
    for (size_t i = 0; i < s->n_cgroups; i++)
        if (!is_absolute_clean_path(s->cgroups[i]))
            fail(EINVAL, "spec cgroup %s", s->cgroups[i]);
    if (s->cgroup2 && !is_absolute_clean_path(s->cgroup2))
        fail(EINVAL, "spec cgroup2 %s", s->cgroup2);
}

/* ---------------------------------------------------------------------------------------- */
/* Keeper: start                                                                             */

/* The signals the executor may send to stop or notify a job; all are forwarded inward. */
static const int forwarded_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

static void forwarded_and_child_set(sigset_t *set)
{
    sigemptyset(set);
    for (size_t i = 0; i < sizeof forwarded_signals / sizeof *forwarded_signals; i++)
        sigaddset(set, forwarded_signals[i]);
    sigaddset(set, SIGCHLD);
}

/* Our start time in clock ticks since boot (/proc/self/stat field 22). With the pid it names
 * this process uniquely for the life of the host: a pid reused later has a later start time. */
static unsigned long long own_start_time(void)
{
    char buf[1024];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fail(errno, "read own start time");
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        fail(EIO, "read own start time");
    buf[n] = '\0';
    /* comm (field 2) may hold spaces and parentheses: count fields after the last ')'. */
    char *p = strrchr(buf, ')');
    for (int field = 2; p && field < 22; field++)
        p = strchr(p + 1, ' ');
    if (!p)
        fail(EIO, "parse own start time");
    return strtoull(p + 1, NULL, 10);
}

static void make_output_pipe(int fds[2], const struct spec *s)
{
    if (pipe2(fds, O_CLOEXEC) < 0)
        fail(errno, "create output pipe");
    /* A larger buffer lets a bursty job keep running while the disk catches up. */
    (void)fcntl(fds[1], F_SETPIPE_SZ, OUTPUT_PIPE_BYTES);
    /* Our end never blocks: the keeper has other pipes and connections to serve. */
    if (fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0)
        fail(errno, "output pipe non-blocking");
    /* A pipe belongs to its creator (root, mode 0600); give it to the job so that reopening it,
     * as `echo >/dev/stderr` does through /proc/self/fd/2, works (runc does the same). */
    if (fchown(fds[1], s->uid, s->gid) < 0)
        fail(errno, "chown output pipe");
}

/* The output files are new (O_EXCL): a job's output is never appended to anything older. */
static int create_job_file(const char *name)
{
    int fd = openat(JOB_DIR_FD, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        fail(errno, "create %s", name);
    return fd;
}

/* A whole file or none: written under a temporary name, then renamed over `name`. */
static void write_job_file(const char *name, const char *temporary, const char *text, size_t len)
{
    int fd = openat(JOB_DIR_FD, temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        fail(errno, "create %s", temporary);
    for (size_t done = 0; done < len;) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fail(n < 0 ? errno : ENOSPC, "write %s", temporary);
        done += (size_t)n;
    }
    close(fd);
    if (renameat(JOB_DIR_FD, temporary, JOB_DIR_FD, name) < 0)
        fail(errno, "rename %s", temporary);
}

/* The status file's space, taken now: a full disk later cannot stop the job's end being
 * recorded (overwriting allocated bytes and renaming in the same directory need no new space). */
static int reserve_status_file(void)
{
    int fd = openat(JOB_DIR_FD, STATUS_TEMP_FILE, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        fail(errno, "create %s", STATUS_TEMP_FILE);
    char blank[STATUS_BYTES];
    memset(blank, '\n', sizeof blank);
    if (pwrite(fd, blank, sizeof blank, 0) != (ssize_t)sizeof blank)
        fail(errno ? errno : ENOSPC, "reserve %s", STATUS_TEMP_FILE);
    return fd;
}

/* keeper.sock, in the root-only job directory (our working directory): only root can have
 * made it, and only root can reach it. */
static int listen_keeper_socket(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fail(errno, "keeper socket");
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    strcpy(address.sun_path, KEEPER_SOCKET);
    if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0 || listen(fd, 4) < 0)
        fail(errno, "listen on %s", KEEPER_SOCKET);
    return fd;
}

/* The exec pipe's write ends belong to the init and the job and close when the job's execve
 * succeeds. The init writes SETUP_DONE before it forks the job; either may write a start error.
 * So: an error line → that error; SETUP_DONE then EOF → the program is running; EOF alone → the
 * init died during setup (killed, or out of memory under a tiny limit). Returns true when the
 * program is running; the line for the executor is in `result`. */
#define SETUP_DONE "setup-done\n"

static bool await_start(int exec_read_fd, char *result, size_t size)
{
    char buf[1024];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(exec_read_fd, buf + len, sizeof buf - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == sizeof buf - 1)
            break;
    }
    buf[len] = '\0';
    char *error = strstr(buf, "start-error ");
    if (error) {
        snprintf(result, size, "%.*s", (int)strcspn(error, "\n"), error);
        return false;
    }
    if (strncmp(buf, SETUP_DONE, strlen(SETUP_DONE)) == 0) {
        snprintf(result, size, "started");
        return true;
    }
    snprintf(result, size, "start-error 0 init ended during setup");
    return false;
}

static void run_init(const struct spec *s, pid_t keeper, int out_fd, int err_fd, int exec_fd,
                     int status_fd, int go_fd) __attribute__((noreturn));

/* ---------------------------------------------------------------------------------------- */
/* Keeper: the job's life                                                                    */

#define MAX_CLIENTS 4
#define CLIENT_LINE_BYTES 64
/* How much of one pipe is moved before the keeper looks at its other inputs again. */
#define MOVE_BUDGET_BYTES (4u << 20)
/* After the init has exited, how long a pipe may stay open: only a process outside the job
 * (given the pipe over a socket) could still hold its write end. */
#define DRAIN_AFTER_EXIT_MS 1000
/* After a wake that moved less than this, output pipes are left alone for NAP_MS. */
#define NAP_BELOW_BYTES (64u << 10)
#define NAP_MS 1
#define MAX_GRACE_MS 3600000ull

enum stop_reason { STOP_NONE, STOP_STOPPED, STOP_TIMED_OUT };

struct client {
    int fd; /* -1: free */
    bool watching;
    bool size_due;
    size_t len;
    char line[CLIENT_LINE_BYTES];
};

struct output {
    int fd; /* -1: at end of file */
    int tag; /* 0 stdout, 1 stderr, as in output.idx */
};

struct keeper {
    const struct spec *spec;
    pid_t pid;
    unsigned long long start_time;
    pid_t init;
    int status_pipe; /* the init writes the job's exact wait status here before it exits */
    bool init_exited;
    int init_status;
    int job_status;
    bool job_status_known;
    char start_error[512]; /* "start-error …" when the program never ran */
    unsigned long long exited_at_ms; /* CLOCK_MONOTONIC */

    int data_fd, index_fd, status_fd, listen_fd, signal_fd, timeout_fd, kill_fd;
    struct output outputs[2];
    unsigned long long data_bytes, index_entries;
    int last_tag;
    bool truncated;
    bool write_failed;
    bool use_splice;
    unsigned long long sent_bytes;
    bool sent_truncated;

    enum stop_reason stop;
    unsigned long long kill_deadline_ms; /* CLOCK_MONOTONIC; 0: no kill pending */
    unsigned long long nap_until_ms;     /* CLOCK_MONOTONIC; 0: output pipes are polled */

    struct client clients[MAX_CLIENTS];
};

static unsigned long long monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (unsigned long long)now.tv_sec * 1000ull + (unsigned long long)now.tv_nsec / 1000000ull;
}

static void arm_timer(int fd, unsigned long long at_ms)
{
    struct itimerspec when = {
        .it_value = {.tv_sec = (time_t)(at_ms / 1000), .tv_nsec = (long)(at_ms % 1000) * 1000000L},
    };
    if (timerfd_settime(fd, TFD_TIMER_ABSTIME, &when, NULL) < 0)
        die_errno("arm timer");
}

/* --- output ---------------------------------------------------------------------------------- */

/* Stops storing output for good (full disk, I/O error): the job keeps running, its pipes keep
 * being drained, and its output is marked truncated. */
static void give_up_storing(struct keeper *k)
{
    k->write_failed = true;
    k->truncated = true;
}

/* The index entry that tags the bytes about to be stored, unless they continue the last run. */
static bool begin_run(struct keeper *k, int tag)
{
    if (k->last_tag == tag)
        return true;
    unsigned long long entry = k->data_bytes << 1 | (unsigned long long)tag;
    unsigned char bytes[8];
    for (int i = 7; i >= 0; i--) {
        bytes[i] = (unsigned char)(entry & 0xff);
        entry >>= 8;
    }
    if (pwrite(k->index_fd, bytes, sizeof bytes, (off_t)(k->index_entries * sizeof bytes)) !=
        (ssize_t)sizeof bytes) {
        give_up_storing(k);
        return false;
    }
    k->index_entries++;
    k->last_tag = tag;
    return true;
}

/* Reads and forgets what waits in the pipe: past the cap, or when nothing can be stored. */
static ssize_t discard(int fd, size_t len)
{
    static char scratch[64 * 1024];
    return read(fd, scratch, len < sizeof scratch ? len : sizeof scratch);
}

/* Moves up to `len` bytes from the pipe to the end of output.bin. splice(2) moves pipe pages into
 * the file without copying them through user space; where the filesystem cannot splice, read and
 * write do the same. Returns the bytes taken from the pipe (all stored unless storing failed
 * part-way), 0 at end of file, -1 with errno. */
static ssize_t store(struct keeper *k, int fd, size_t len)
{
    if (k->use_splice) {
        loff_t at = (loff_t)k->data_bytes;
        ssize_t n = splice(fd, NULL, k->data_fd, &at, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0)
            k->data_bytes += (unsigned long long)n;
        if (n >= 0 || errno != EINVAL)
            return n;
        k->use_splice = false;
    }
    static char buffer[64 * 1024];
    ssize_t n = read(fd, buffer, len < sizeof buffer ? len : sizeof buffer);
    if (n <= 0)
        return n;
    ssize_t written = pwrite(k->data_fd, buffer, (size_t)n, (off_t)k->data_bytes);
    if (written > 0)
        k->data_bytes += (unsigned long long)written;
    if (written != n)
        give_up_storing(k); /* the rest of this read is lost with the disk */
    return n;
}

/* The largest single move: a whole pipe buffer. */
#define MOVE_BYTES (1u << 20)

/* Takes what the job wrote to one pipe, adding the bytes to *taken. Returns false once the pipe
 * is at end of file (empty, and no writer left). */
static bool take_output(struct keeper *k, struct output *o, size_t *taken)
{
    for (size_t moved = 0; moved < MOVE_BUDGET_BYTES;) {
        unsigned long long room = k->write_failed || k->data_bytes >= k->spec->output_max
                                      ? 0
                                      : k->spec->output_max - k->data_bytes;
        ssize_t n;
        if (room > 0 && k->last_tag != o->tag) {
            /* A new run's index entry is written only for bytes that are really there. */
            int waiting = 0;
            if (ioctl(o->fd, FIONREAD, &waiting) < 0 || waiting <= 0) {
                struct pollfd hup = {.fd = o->fd, .events = POLLIN};
                return !(poll(&hup, 1, 0) == 1 && (hup.revents & POLLHUP));
            }
            if (!begin_run(k, o->tag))
                room = 0;
        }
        if (room == 0) {
            n = discard(o->fd, MOVE_BYTES);
            if (n > 0)
                k->truncated = true;
        } else {
            n = store(k, o->fd, room < MOVE_BYTES ? (size_t)room : MOVE_BYTES);
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                give_up_storing(k); /* ENOSPC, EIO, EFBIG, EDQUOT: drop from here on */
                continue;
            }
        }
        if (n == 0)
            return false;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return true; /* EAGAIN: drained for now */
        }
        moved += (size_t)n;
        *taken += (size_t)n;
    }
    return true;
}

/* --- control connections --------------------------------------------------------------------- */

static void close_client(struct client *c)
{
    close(c->fd);
    c->fd = -1;
}

/* Writes one line, or closes the connection: a control line is tiny, so a socket that cannot
 * take it is a peer that stopped reading. Size notices are resent later instead (send_due). */
__attribute__((format(printf, 2, 3))) static void tell(struct client *c, const char *fmt, ...)
{
    char line[128];
    va_list ap;
    va_start(ap, fmt);
    size_t len = format_line(line, sizeof line, fmt, ap);
    va_end(ap);
    if (c->fd >= 0 && send(c->fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)len)
        close_client(c);
}

static struct client *add_client(struct keeper *k, int fd)
{
    for (size_t i = 0; i < MAX_CLIENTS; i++) {
        struct client *c = &k->clients[i];
        if (c->fd >= 0)
            continue;
        *c = (struct client){.fd = fd};
        return c;
    }
    close(fd); /* one executor at a time is normal; a few are tolerated; more are refused */
    return NULL;
}

static void begin_stop(struct keeper *k, enum stop_reason reason, unsigned long long grace_ms)
{
    if (k->init_exited)
        return;
    unsigned long long deadline = monotonic_ms() + grace_ms;
    if (k->stop == STOP_NONE) {
        k->stop = reason;
        /* The init forwards it to the job's process group, as for any forwarded signal. */
        kill(k->init, SIGTERM);
    }
    /* A later stop may shorten the grace (a drain), never lengthen it. */
    if (k->kill_deadline_ms == 0 || deadline < k->kill_deadline_ms) {
        k->kill_deadline_ms = deadline;
        arm_timer(k->kill_fd, deadline);
    }
}

static void obey(struct keeper *k, struct client *c, const char *line)
{
    char *end;
    if (strcmp(line, "watch") == 0) {
        c->watching = true;
        c->size_due = true;
    } else if (strncmp(line, "stop ", 5) == 0 && line[5] >= '0' && line[5] <= '9') {
        errno = 0;
        unsigned long long grace = strtoull(line + 5, &end, 10);
        if (errno != 0 || *end != '\0' || grace > MAX_GRACE_MS) {
            close_client(c);
            return;
        }
        begin_stop(k, STOP_STOPPED, grace);
    } else {
        close_client(c);
    }
}

static void read_commands(struct keeper *k, struct client *c)
{
    char buf[256];
    ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        close_client(c);
        return;
    }
    for (ssize_t i = 0; i < n && c->fd >= 0; i++) {
        if (buf[i] == '\n') {
            c->line[c->len] = '\0';
            c->len = 0;
            obey(k, c, c->line);
        } else if (c->len + 1 < sizeof c->line) {
            c->line[c->len++] = buf[i];
        } else {
            close_client(c); /* no command is this long */
        }
    }
}

static void accept_client(struct keeper *k)
{
    int fd = accept4(k->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    struct client *c = add_client(k, fd);
    if (c) {
        tell(c, "keeper %d %llu\n", k->pid, k->start_time);
        tell(c, "job %u %d\n", (unsigned)k->spec->uid, k->init);
    }
}

/* Size notices carry only the latest figure, so a reader that falls behind gets one line, not
 * a backlog: the keeper never waits on an executor. */
static void send_sizes(struct keeper *k)
{
    bool changed = k->data_bytes != k->sent_bytes || k->truncated != k->sent_truncated;
    k->sent_bytes = k->data_bytes;
    k->sent_truncated = k->truncated;
    for (size_t i = 0; i < MAX_CLIENTS; i++) {
        struct client *c = &k->clients[i];
        if (c->fd < 0 || !c->watching || !(c->size_due || changed))
            continue;
        char line[64];
        int len = snprintf(line, sizeof line, "size %llu %d\n", k->data_bytes, k->truncated);
        ssize_t n = send(c->fd, line, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n == len)
            c->size_due = false;
        else if (n < 0 && errno == EAGAIN)
            c->size_due = true; /* sent when the socket drains (POLLOUT) */
        else
            close_client(c);
    }
}

/* --- the end ------------------------------------------------------------------------------- */

static unsigned long long realtime_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (unsigned long long)now.tv_sec * 1000ull + (unsigned long long)now.tv_nsec / 1000000ull;
}

/* keeper.status, written in place into the space reserved at start, then renamed: a reader sees
 * no file or the whole file. The result line comes from, in order: a start error; the job's exact
 * wait status as the init reported it; the init's own status (the init was killed, e.g. at the
 * end of a stop's grace period). Its text is left in `text` (STATUS_BYTES); returns its length. */
static size_t write_status(struct keeper *k, char *text)
{
    int len;
    int status = k->job_status_known ? k->job_status : k->init_status;
    if (k->start_error[0])
        len = snprintf(text, STATUS_BYTES, "result start-failed %s\n",
                       k->start_error + strlen("start-error "));
    else if (WIFSIGNALED(status))
        len = snprintf(text, STATUS_BYTES, "result signaled %d\n", WTERMSIG(status));
    else
        len = snprintf(text, STATUS_BYTES, "result exited %d\n", WEXITSTATUS(status));
    if (k->stop != STOP_NONE && len < (int)STATUS_BYTES)
        len += snprintf(text + len, STATUS_BYTES - (size_t)len, "stop %s\n",
                        k->stop == STOP_TIMED_OUT ? "timed-out" : "stopped");
    if (len < (int)STATUS_BYTES)
        len += snprintf(text + len, STATUS_BYTES - (size_t)len, "output %llu %d\nended %llu\n",
                        k->data_bytes, k->truncated, realtime_ms());
    if (len >= STATUS_BYTES)
        len = STATUS_BYTES - 1;
    if (pwrite(k->status_fd, text, (size_t)len, 0) != len || ftruncate(k->status_fd, len) < 0 ||
        renameat(JOB_DIR_FD, STATUS_TEMP_FILE, JOB_DIR_FD, STATUS_FILE) < 0)
        die_errno("write %s", STATUS_FILE);
    return (size_t)len;
}

/* The end as the executor's channels get it: each line of the status prefixed "status ", then
 * "ended", in one send, so that the executor records the end without reading the file. */
static size_t ended_lines(const char *status, size_t len, char *out, size_t size)
{
    static const char prefix[] = "status ";
    static const char ended[] = "ended\n";
    size_t n = 0;
    for (size_t at = 0; at < len;) {
        const char *newline = memchr(status + at, '\n', len - at);
        size_t line = (newline ? (size_t)(newline - status) : len) - at;
        if (n + strlen(prefix) + line + 1 + strlen(ended) > size)
            break; /* cannot happen (size is twice the status's); the file still says it all */
        memcpy(out + n, prefix, strlen(prefix));
        n += strlen(prefix);
        memcpy(out + n, status + at, line);
        n += line;
        out[n++] = '\n';
        at += line + 1;
    }
    memcpy(out + n, ended, strlen(ended));
    return n + strlen(ended);
}

__attribute__((noreturn)) static void finish(struct keeper *k)
{
    /* The status first: an executor that finds no socket (or no answer on it) finds the status
     * file, never neither. */
    char status[STATUS_BYTES];
    char ended[2 * STATUS_BYTES];
    size_t ended_len = ended_lines(status, write_status(k, status), ended, sizeof ended);
    unlinkat(JOB_DIR_FD, KEEPER_SOCKET, 0);
    for (size_t i = 0; i < MAX_CLIENTS; i++) {
        struct client *c = &k->clients[i];
        if (c->fd < 0)
            continue;
        c->size_due = c->watching;
    }
    send_sizes(k);
    for (size_t i = 0; i < MAX_CLIENTS; i++) {
        struct client *c = &k->clients[i];
        if (c->fd >= 0)
            send(c->fd, ended, ended_len, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    exit(0);
}

static void note_init_exit(struct keeper *k)
{
    int status;
    pid_t done = waitpid(k->init, &status, WNOHANG);
    if (done != k->init)
        return;
    k->init_exited = true;
    k->init_status = status;
    ssize_t n;
    do
        n = read(k->status_pipe, &k->job_status, sizeof k->job_status);
    while (n < 0 && errno == EINTR);
    k->job_status_known = n == (ssize_t)sizeof k->job_status;
    k->exited_at_ms = monotonic_ms();
    k->kill_deadline_ms = 0;
}

static void take_signal(struct keeper *k)
{
    struct signalfd_siginfo info;
    while (read(k->signal_fd, &info, sizeof info) == (ssize_t)sizeof info) {
        int sig = (int)info.ssi_signo;
        if (sig == SIGCHLD)
            note_init_exit(k);
        else if (sig == SIGTERM || sig == SIGINT)
            /* Someone ends the keeper (host shutdown): stop the job the way the executor would. */
            begin_stop(k, STOP_STOPPED, k->spec->timeout_grace_ms);
        else if (!k->init_exited)
            kill(k->init, sig);
    }
}

/* Reads a timerfd's expiry count; true when it expired. */
static bool expired(int fd)
{
    uint64_t count;
    return read(fd, &count, sizeof count) == (ssize_t)sizeof count && count > 0;
}

/* The job's life after its program started: output in, commands in, notices out, timers; until
 * the init has exited and both pipes are at their end. */
__attribute__((noreturn)) static void keep(struct keeper *k)
{
    enum { SIGNALS, TIMEOUT, KILL, LISTEN, OUT, ERR, CLIENTS, SLOTS = CLIENTS + MAX_CLIENTS };
    for (;;) {
        int timeout = -1;
        if (k->init_exited) {
            bool open = k->outputs[0].fd >= 0 || k->outputs[1].fd >= 0;
            unsigned long long since = monotonic_ms() - k->exited_at_ms;
            if (!open || since >= DRAIN_AFTER_EXIT_MS)
                finish(k);
            timeout = (int)(DRAIN_AFTER_EXIT_MS - since);
        }
        bool napping = false;
        if (k->nap_until_ms > 0) {
            unsigned long long now = monotonic_ms();
            napping = now < k->nap_until_ms && !k->init_exited;
            if (napping && (timeout < 0 || k->nap_until_ms - now < (unsigned long long)timeout))
                timeout = (int)(k->nap_until_ms - now);
            if (!napping)
                k->nap_until_ms = 0;
        }
        struct pollfd fds[SLOTS];
        fds[SIGNALS] = (struct pollfd){.fd = k->signal_fd, .events = POLLIN};
        fds[TIMEOUT] = (struct pollfd){.fd = k->timeout_fd, .events = POLLIN};
        fds[KILL] = (struct pollfd){.fd = k->kill_fd, .events = POLLIN};
        fds[LISTEN] = (struct pollfd){.fd = k->listen_fd, .events = POLLIN};
        fds[OUT] = (struct pollfd){.fd = napping ? -1 : k->outputs[0].fd, .events = POLLIN};
        fds[ERR] = (struct pollfd){.fd = napping ? -1 : k->outputs[1].fd, .events = POLLIN};
        for (size_t i = 0; i < MAX_CLIENTS; i++) {
            struct client *c = &k->clients[i];
            fds[CLIENTS + i] = (struct pollfd){
                .fd = c->fd, .events = (short)(POLLIN | (c->size_due ? POLLOUT : 0))};
        }
        if (poll(fds, SLOTS, timeout) < 0) {
            if (errno == EINTR)
                continue;
            die_errno("poll");
        }
        if (fds[SIGNALS].revents)
            take_signal(k);
        if (fds[TIMEOUT].revents && expired(k->timeout_fd))
            begin_stop(k, STOP_TIMED_OUT, k->spec->timeout_grace_ms);
        if (fds[KILL].revents && expired(k->kill_fd) && !k->init_exited)
            kill(k->init, SIGKILL); /* the PID namespace, and every process of the job, with it */
        size_t taken = 0;
        for (int i = 0; i < 2; i++) {
            struct output *o = &k->outputs[i];
            if (o->fd >= 0 && fds[OUT + i].revents && !take_output(k, o, &taken)) {
                close(o->fd);
                o->fd = -1;
            }
        }
        /* A job writing in small pieces would wake the keeper for each: after a wake that moved
         * little, let its output gather for a moment (a pipe holds far more than that much). */
        if (taken > 0 && taken < NAP_BELOW_BYTES && !k->init_exited)
            k->nap_until_ms = monotonic_ms() + NAP_MS;
        if (fds[LISTEN].revents)
            accept_client(k);
        for (size_t i = 0; i < MAX_CLIENTS; i++) {
            struct client *c = &k->clients[i];
            if (c->fd >= 0 && fds[CLIENTS + i].fd == c->fd &&
                (fds[CLIENTS + i].revents & (POLLIN | POLLHUP | POLLERR)))
                read_commands(k, c);
        }
        send_sizes(k);
    }
}

/* The init, in new PID, mount, network, UTS and IPC namespaces. clone3 without a new stack
 * behaves like fork: the child continues on a copy of ours. With a cgroup v2 directory, the init
 * is born in it (CLONE_INTO_CGROUP): no migration, which would wait for an RCU grace period. A
 * kernel without clone3 (before 5.7), or a sandbox that refuses it, gets a plain clone, and the
 * init moves itself into that cgroup too. */
static pid_t clone_init(struct spec *s)
{
    /* No CLONE_NEWNS: the init makes its mount namespace a copy of the view template's, not
     * of the host's (build_filesystem). */
    const unsigned long long namespaces = CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC;
    int cgroup_fd = -1;
    if (s->cgroup2) {
        cgroup_fd = open(s->cgroup2, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (cgroup_fd < 0)
            fail(errno, "open cgroup %s", s->cgroup2);
    }
    struct clone_args args = {
        .flags = namespaces | (cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0),
        .exit_signal = SIGCHLD,
        .cgroup = cgroup_fd >= 0 ? (unsigned long long)cgroup_fd : 0,
    };
    pid_t init = (pid_t)syscall(SYS_clone3, &args, sizeof args);
    if (init < 0 && errno == ENOSYS) {
        s->cgroup2_by_move = s->cgroup2 != NULL;
        init = (pid_t)syscall(SYS_clone, namespaces | SIGCHLD, NULL, NULL, NULL, 0);
    }
    if (init < 0)
        fail(errno, "clone namespaces");
    if (init > 0 && cgroup_fd >= 0)
        close(cgroup_fd);
    return init;
}

/* The init keeps only what it needs: the executor's connection (until "ready"), the job's
 * pipes' write ends, its two report pipes, the go pipe, and the view template and its root.
 * Everything else of the keeper's (output files, sockets, timers) is closed in it. */
#define MAX_KEPT_FDS 8
static void close_all_but(const int *keep, size_t n)
{
    int last = STDERR_FILENO;
    int sorted[MAX_KEPT_FDS];
    if (n > MAX_KEPT_FDS)
        _exit(EXIT_HELPER_FAILED);
    memcpy(sorted, keep, n * sizeof *keep);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (sorted[j] < sorted[i]) {
                int t = sorted[i];
                sorted[i] = sorted[j];
                sorted[j] = t;
            }
    for (size_t i = 0; i < n; i++) {
        if (sorted[i] > last + 1)
            close_range((unsigned)last + 1, (unsigned)sorted[i] - 1, 0);
        last = sorted[i];
    }
    close_range((unsigned)last + 1, ~0u, 0);
}

/* The job's directory becomes JOB_DIR_FD and our working directory. The executor made it,
 * root's alone; anything else at that path is refused, not written into. */
static void enter_job_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        fail(errno, "open the job directory");
    struct stat st;
    if (fstat(fd, &st) < 0)
        fail(errno, "stat the job directory");
    if (st.st_uid != 0 || (st.st_mode & 077) != 0)
        fail(EPERM, "the job directory is not root's alone");
    if (fd != JOB_DIR_FD) {
        if (dup3(fd, JOB_DIR_FD, O_CLOEXEC) < 0)
            fail(errno, "enter the job directory");
        close(fd);
    }
    if (fchdir(JOB_DIR_FD) < 0)
        fail(errno, "enter the job directory");
}

/* The keeper's start, in a child the launcher has just forked (see run_launcher): fd 3 is the
 * executor's connection, 0-2 are /dev/null, nothing else is open. */
__attribute__((noreturn)) static void run_keeper(void)
{
    /* The keeper outlives the executor: no death signal from it, and a write to a connection
     * the executor dropped is an error to handle (EPIPE), not the keeper's end. */
    signal(SIGPIPE, SIG_IGN);
    /* Our files are root's alone; keeper.sock's path is relative to the job directory. */
    umask(077);

    struct keeper k = {.pid = getpid(), .last_tag = -1, .use_splice = true};
    for (size_t i = 0; i < MAX_CLIENTS; i++)
        k.clients[i].fd = -1;
    k.start_time = own_start_time();
    report(CONTROL_FD, "keeper %d %llu\n", k.pid, k.start_time);

    struct spec spec = {0};
    read_spec(&spec);
    k.spec = &spec;
    enter_job_dir(spec.job_dir);

    /* Signals stay blocked from here on: the keeper takes them from a signalfd in its loop, the
     * init with sigwaitinfo; nothing can arrive between a check and a wait. */
    sigset_t waited;
    forwarded_and_child_set(&waited);
    if (sigprocmask(SIG_BLOCK, &waited, NULL) < 0)
        fail(errno, "block signals");
    k.signal_fd = signalfd(-1, &waited, SFD_NONBLOCK | SFD_CLOEXEC);
    k.timeout_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    k.kill_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (k.signal_fd < 0 || k.timeout_fd < 0 || k.kill_fd < 0)
        fail(errno, "signal and timer descriptors");

    int out[2], err[2], exec_pipe[2], status_pipe[2], go_pipe[2];
    make_output_pipe(out, &spec);
    make_output_pipe(err, &spec);
    if (pipe2(exec_pipe, O_CLOEXEC) < 0 || pipe2(status_pipe, O_CLOEXEC) < 0 ||
        pipe2(go_pipe, O_CLOEXEC) < 0)
        fail(errno, "create status pipes");

    pid_t init = clone_init(&spec);
    if (init == 0) {
        int keep_fds[] = {CONTROL_FD,     out[1],     err[1],           exec_pipe[1],
                          status_pipe[1], go_pipe[0], VIEW_TEMPLATE_FD, VIEW_ROOT_FD};
        close_all_but(keep_fds, sizeof keep_fds / sizeof *keep_fds);
        run_init(&spec, k.pid, out[1], err[1], exec_pipe[1], status_pipe[1], go_pipe[0]);
    }
    close(go_pipe[0]);
    /* The init has its copies; ours would only keep an outdated template's mounts alive. */
    close(VIEW_TEMPLATE_FD);
    close(VIEW_ROOT_FD);
    /* The init waits for the executor's "ready" itself (run_init); meanwhile the job's record
     * and the keeper's identity, then the go, before which the init does not fork the job. An
     * executor that restarts finds both for every job that ran, and can tell this keeper from a
     * process that took its pid, or kill it when it does not answer. */
    write_job_file(RECORD_FILE, RECORD_TEMP_FILE, spec.record, strlen(spec.record));
    char identity[64];
    int identity_len = snprintf(identity, sizeof identity, "%d %llu\n", k.pid, k.start_time);
    write_job_file(KEEPER_ID_FILE, KEEPER_ID_TEMP_FILE, identity, (size_t)identity_len);
    write_all(go_pipe[1], "g", 1);
    close(go_pipe[1]);
    k.init = init;
    k.status_pipe = status_pipe[0];
    k.outputs[0] = (struct output){.fd = out[0], .tag = 0};
    k.outputs[1] = (struct output){.fd = err[0], .tag = 1};
    close(out[1]);
    close(err[1]);
    close(exec_pipe[1]);
    close(status_pipe[1]);
    /* While the init sets the job up, the keeper creates its own files. */
    k.data_fd = create_job_file(OUTPUT_DATA_FILE);
    k.index_fd = create_job_file(OUTPUT_INDEX_FILE);
    k.status_fd = reserve_status_file();
    k.listen_fd = listen_keeper_socket();
    report(CONTROL_FD, "init %d\n", init);

    char start_line[sizeof k.start_error];
    bool running = await_start(exec_pipe[0], start_line, sizeof start_line);
    close(exec_pipe[0]);
    report(CONTROL_FD, "%s\n", start_line);
    if (!running) {
        memcpy(k.start_error, start_line, sizeof k.start_error);
        /* Nothing of the job's ran: record the failure once the init is gone. */
        int status;
        while (waitpid(init, &status, 0) < 0 && errno == EINTR)
            ;
        k.init_exited = true;
        k.init_status = status;
        finish(&k);
    }
    if (spec.timeout_ms > 0)
        arm_timer(k.timeout_fd, monotonic_ms() + spec.timeout_ms);

    /* From here on fd 3 is the starting executor's control connection, like any other. */
    if (fcntl(CONTROL_FD, F_SETFL, O_NONBLOCK) < 0)
        die_errno("control socket non-blocking");
    add_client(&k, CONTROL_FD);
    keep(&k);
}

/* ---------------------------------------------------------------------------------------- */
/* Launcher                                                                                  */

/* An outdated view template is built again once the host's mounts and top-level entries have
 * been still this long (or before the next fork, whichever comes first): the old one holds the
 * mounts it copied, so a filesystem unmounted on the host stays busy until then (a loop device
 * stays attached, a disk cannot be ejected). A burst of changes costs one rebuild. */
#define VIEW_SETTLE_MS 100

/* After a failed accept that may repeat at once (out of descriptors or memory), a pause before
 * the next try instead of a busy loop; the executor's connection waits in the backlog. */
#define ACCEPT_RETRY_MS 10

/* The launcher's arguments ("launcher", its socket, the masks), which its children rewrite
 * (name_launcher_child). */
static char *launcher_arguments;
static size_t launcher_arguments_bytes;

/* A child of the launcher rewrites the launcher's arguments in place to `name` (shorter than
 * "launcher"), so that ps and /proc/<pid>/cmdline tell it from the launcher. */
static void name_launcher_child(const char *name)
{
    memset(launcher_arguments, 0, launcher_arguments_bytes);
    memcpy(launcher_arguments, name, strlen(name) + 1);
}

/* The executor's paths every job must not see (the launcher's arguments). */
struct masks {
    char *const *paths;
    size_t n;
};

/* The jobs' view template: its mount namespace and its root directory. setns into a mount
 * namespace makes the caller's root that namespace's root mount (and what is stacked on it);
 * where the launcher runs chrooted below it, the template's root is elsewhere, so the init
 * enters this one explicitly. */
struct view_template {
    int ns;
    int root;
};

/* In a keeper being forked: the connection becomes CONTROL_FD, the view template and its root
 * VIEW_TEMPLATE_FD and VIEW_ROOT_FD, and nothing else stays open. Through copies above them all
 * first, so that no number is overwritten before it was moved, whatever the numbers were. */
static bool place_keeper_fds(int conn, const struct view_template *view)
{
    const int from[] = {conn, view->ns, view->root};
    const int to[] = {CONTROL_FD, VIEW_TEMPLATE_FD, VIEW_ROOT_FD};
    int moved[3];
    for (size_t i = 0; i < 3; i++)
        if ((moved[i] = fcntl(from[i], F_DUPFD_CLOEXEC, VIEW_ROOT_FD + 1)) < 0)
            return false;
    if (close_range(STDERR_FILENO + 1, VIEW_ROOT_FD, 0) < 0)
        return false;
    for (size_t i = 0; i < 3; i++)
        if (dup3(moved[i], to[i], O_CLOEXEC) < 0)
            return false;
    return close_range(VIEW_ROOT_FD + 1, ~0u, 0) == 0;
}

/* One connection, one keeper (see place_keeper_fds). */
static void launch_keeper(int listen_fd, const struct view_template *view)
{
    int conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0) {
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            poll(NULL, 0, ACCEPT_RETRY_MS);
        return;
    }
    /* Only root can reach the socket (the state directory is root's alone); checked all the
     * same, because what connects here gets a process that runs as root. */
    struct ucred peer;
    socklen_t len = sizeof peer;
    if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &peer, &len) < 0 || peer.uid != 0) {
        close(conn);
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        /* Its own session: signals to the executor's process group (a Ctrl-C on a dev stack's
         * terminal) never reach a keeper. */
        setsid();
        signal(SIGCHLD, SIG_DFL);
        name_launcher_child("keeper");
        if (!place_keeper_fds(conn, view))
            _exit(EXIT_HELPER_FAILED);
        run_keeper();
    }
    /* The child has its copies; if the fork failed, the executor sees its connection close
     * before any hello, and reports that job's start as failed. */
    close(conn);
}

static void build_view_template(const struct masks *masks);

/* The first line `fd` gives, without its newline ("" if it ends before one). */
static void read_line(int fd, char *line, size_t size)
{
    size_t got = 0;
    while (got < size - 1) {
        ssize_t n = read(fd, line + got, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || line[got] == '\n')
            break;
        got++;
    }
    line[got] = '\0';
}

/* Builds the view template in a child (build_view_template) and keeps the child's mount
 * namespace and root directory (O_PATH) open: they live on through the descriptors once the
 * child is gone. On failure, false with the start-error line in `error`. */
static bool make_view_template(const struct masks *masks, struct view_template *view,
                               char *error, size_t size)
{
    int link[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, link) < 0) {
        snprintf(error, size, "start-error %d view template: channel", errno);
        return false;
    }
    pid_t builder = fork();
    if (builder == 0) {
        name_launcher_child("builder");
        close(link[0]);
        report_fd = link[1];
        build_view_template(masks);
        report(link[1], "built\n");
        /* Held until the launcher has opened our namespace and root: then it closes its end. */
        char byte;
        while (read(link[1], &byte, 1) < 0 && errno == EINTR)
            ;
        _exit(0);
    }
    close(link[1]);
    bool made = false;
    if (builder < 0) {
        snprintf(error, size, "start-error %d view template: fork", errno);
    } else {
        char line[512];
        read_line(link[0], line, sizeof line);
        char ns_path[64], root_path[64];
        snprintf(ns_path, sizeof ns_path, "/proc/%d/ns/mnt", builder);
        snprintf(root_path, sizeof root_path, "/proc/%d/root", builder);
        if (strcmp(line, "built") != 0)
            snprintf(error, size, "%s",
                     line[0] ? line : "start-error 0 view template: its builder died");
        else if ((view->ns = open(ns_path, O_RDONLY | O_CLOEXEC)) < 0)
            snprintf(error, size, "start-error %d view template: open its namespace", errno);
        else if ((view->root = open(root_path, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
            snprintf(error, size, "start-error %d view template: open its root", errno);
            close(view->ns);
        } else
            made = true;
    }
    close(link[0]);
    /* SIGCHLD is ignored in the launcher: the kernel reaps it; this only waits for its end. */
    if (builder > 0)
        while (waitpid(builder, NULL, 0) < 0 && errno == EINTR)
            ;
    return made;
}

/* Replaces an outdated template with a new one. A template that can no longer be built (the
 * executor's link hears nothing now) ends this launcher; the executor's next start starts
 * another, which reports why. */
static void renew_view_template(const struct masks *masks, struct view_template *view)
{
    char error[512];
    struct view_template fresh;
    if (!make_view_template(masks, &fresh, error, sizeof error))
        die_errno("rebuild the view template: %s", error);
    close(view->ns);
    close(view->root);
    *view = fresh;
}

/* What tells the launcher that its view template is out of date: /proc/self/mountinfo polls
 * POLLPRI after any mount or unmount in the host's mount namespace (the launcher's), and an
 * inotify watch on / reports top-level entries created, removed or renamed. (What is inside the
 * bound directories needs nothing: binds show it live.) */
struct host_watch {
    int mountinfo;
    int root;
};

static struct host_watch watch_host(void)
{
    struct host_watch w = {
        .mountinfo = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC),
        .root = inotify_init1(IN_NONBLOCK | IN_CLOEXEC),
    };
    if (w.mountinfo < 0 || w.root < 0 ||
        inotify_add_watch(w.root, "/",
                          IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR) < 0)
        fail(errno, "watch the host's mounts and top-level entries");
    return w;
}

/* Empties the inotify queue; its events say only "changed". */
static void drain_root_events(int fd)
{
    char events[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (read(fd, events, sizeof events) > 0)
        ;
}

/* The executor starts this once, as `jobworker-helper launcher <socket> [<mask>...]`, and asks
 * it for every job's keeper: forking this small process costs a fraction of what a spawn from
 * the executor did (a fork of a Node process of a hundred MiB, then an exec of the helper). It
 * builds the view template (make_view_template; the masks are the executor's paths every job
 * must not see), listens on <socket>, in the executor's root-only state directory, and forks
 * one keeper per connection, which then serves that connection (the protocol at the top). After
 * a change of the host's mounts or top-level entries it builds the template anew, once they
 * have been still for VIEW_SETTLE_MS and in any case before its next fork: a job sees the host
 * as it was when its start came. fd 3 is its link to the executor: "ready" once it listens, or
 * the start error; when the executor closes it (stops, restarts, crashes) the launcher ends,
 * and the keepers, which are not its to keep, carry on without it. It leaves the socket's file
 * for the next executor, which may already have bound a new one. */
__attribute__((noreturn)) static void run_launcher(const char *socket_path, char *const *masks,
                                                   size_t n_masks)
{
    if (fcntl(CONTROL_FD, F_SETFD, FD_CLOEXEC) < 0) {
        fprintf(stderr, "jobworker-helper: no executor link on fd 3\n");
        _exit(EXIT_HELPER_FAILED);
    }
    if (close_range(CONTROL_FD + 1, ~0u, 0) < 0)
        fail(errno, "close inherited descriptors");
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 || dup2(devnull, STDOUT_FILENO) < 0 ||
        dup2(devnull, STDERR_FILENO) < 0)
        fail(errno, "stdio /dev/null");
    close(devnull);
    signal(SIGPIPE, SIG_IGN);
    /* Keepers are reaped by the kernel: the launcher never waits for one. */
    signal(SIGCHLD, SIG_IGN);
    umask(077);
    for (size_t i = 0; i < n_masks; i++)
        if (!is_absolute_clean_path(masks[i]))
            fail(EINVAL, "launcher mask %s", masks[i]);

    /* Watched before the template is built: a change during the build makes the next fork
     * build it again. */
    struct host_watch host = watch_host();
    char error[512];
    /* Copied: a builder rewrites the argument strings (name_launcher_child) before it masks. */
    char **mask_copies = calloc(n_masks + 1, sizeof *mask_copies);
    if (!mask_copies)
        fail(ENOMEM, "launcher masks");
    for (size_t i = 0; i < n_masks; i++)
        if (!(mask_copies[i] = strdup(masks[i])))
            fail(ENOMEM, "launcher masks");
    const struct masks job_masks = {.paths = mask_copies, .n = n_masks};
    struct view_template view;
    if (!make_view_template(&job_masks, &view, error, sizeof error)) {
        report(CONTROL_FD, "%s\n", error);
        _exit(EXIT_START_FAILED);
    }

    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (!is_absolute_clean_path(socket_path) || strlen(socket_path) >= sizeof address.sun_path)
        fail(EINVAL, "launcher socket path");
    strcpy(address.sun_path, socket_path);
    int listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd < 0)
        fail(errno, "launcher socket");
    if (unlink(socket_path) < 0 && errno != ENOENT)
        fail(errno, "remove an old launcher socket");
    if (bind(listen_fd, (struct sockaddr *)&address, sizeof address) < 0 ||
        listen(listen_fd, SOMAXCONN) < 0)
        fail(errno, "listen on the launcher socket");
    report(CONTROL_FD, "ready\n");

    bool outdated = false;
    struct pollfd fds[] = {{.fd = CONTROL_FD, .events = POLLIN},
                           {.fd = host.mountinfo, .events = POLLPRI},
                           {.fd = host.root, .events = POLLIN},
                           {.fd = listen_fd, .events = POLLIN}};
    for (;;) {
        int ready = poll(fds, sizeof fds / sizeof *fds, outdated ? VIEW_SETTLE_MS : -1);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            die_errno("launcher poll");
        }
        if (ready == 0) {
            renew_view_template(&job_masks, &view);
            outdated = false;
            continue;
        }
        /* The executor never writes here: readable means it is gone. */
        if (fds[0].revents != 0)
            _exit(0);
        /* Looked at before the connection: a mount made before a start is in its job's view. */
        if (fds[1].revents != 0)
            outdated = true;
        if (fds[2].revents != 0) {
            drain_root_events(host.root);
            outdated = true;
        }
        if (fds[3].revents == 0)
            continue;
        if (outdated) {
            renew_view_template(&job_masks, &view);
            outdated = false;
        }
        launch_keeper(listen_fd, &view);
    }
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "launcher") == 0) {
        /* The kernel lays the arguments out one after another: argv[1] to the end of the last. */
        launcher_arguments = argv[1];
        launcher_arguments_bytes = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) + 1 - argv[1]);
        run_launcher(argv[2], argv + 3, (size_t)argc - 3);
    }
    fprintf(stderr, "jobworker-helper: started by the jobworker executor only\n");
    return EXIT_HELPER_FAILED;
}

/* ---------------------------------------------------------------------------------------- */
/* Filesystem view                                                                           */

static void xmkdir(const char *path, mode_t mode)
{
    if (mkdir(path, mode) < 0 && errno != EEXIST)
        fail(errno, "mkdir %s", path);
}

static void mount_tmpfs(const char *target, unsigned long flags, const char *options)
{
    if (mount("tmpfs", target, "tmpfs", flags, options) < 0)
        fail(errno, "mount tmpfs on %s", target);
}

/* A recursive bind of a host directory, then read-only, nosuid and nodev on every mount in it
 * (mount_setattr with AT_RECURSIVE: one call, no window where a submount is still writable
 * inside the job, because the job does not exist yet). */
static void bind_read_only(const char *source, const char *target)
{
    if (mount(source, target, NULL, MS_BIND | MS_REC, NULL) < 0)
        fail(errno, "bind %s", source);
    struct mount_attr attr = {
        .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
    };
    if (mount_setattr(AT_FDCWD, target, AT_RECURSIVE, &attr, sizeof attr) < 0)
        fail(errno, "make %s read-only", source);
}

static void touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        fail(errno, "create %s", path);
    close(fd);
}

/* Host top-level entries the job gets fresh instances of instead: its own /proc (new PID
 * namespace), /sys (new network namespace), a minimal /dev, private /tmp and /run (where host
 * daemons keep their sockets), and JOB_DIR. */
static bool replaced_in_job(const char *name)
{
    static const char *const replaced[] = {"proc", "sys", "dev", "tmp", "run", "job" /* JOB_DIR */};
    for (size_t i = 0; i < sizeof replaced / sizeof *replaced; i++)
        if (strcmp(name, replaced[i]) == 0)
            return true;
    return false;
}

static void bind_host_root(void)
{
    DIR *root = opendir("/");
    if (!root)
        fail(errno, "open /");
    struct dirent *entry;
    char source[PATH_MAX], target[PATH_MAX], link[PATH_MAX];
    while ((entry = readdir(root)) != NULL) {
        const char *name = entry->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || replaced_in_job(name))
            continue;
        snprintf(source, sizeof source, "/%s", name);
        snprintf(target, sizeof target, NEW_ROOT "/%s", name);
        struct stat st;
        if (lstat(source, &st) < 0)
            fail(errno, "stat %s", source);
        if (S_ISDIR(st.st_mode)) {
            xmkdir(target, 0755);
            bind_read_only(source, target);
        } else if (S_ISLNK(st.st_mode)) {
            ssize_t len = readlink(source, link, sizeof link - 1);
            if (len < 0)
                fail(errno, "readlink %s", source);
            link[len] = '\0';
            if (symlink(link, target) < 0)
                fail(errno, "symlink %s", target);
        } else if (S_ISREG(st.st_mode)) {
            touch(target);
            bind_read_only(source, target);
        }
    }
    closedir(root);
}

/* A /dev with only the harmless character devices, like bubblewrap's --dev. */
static void build_dev(void)
{
    static const char *const devices[] = {"null", "zero", "full", "random", "urandom", "tty"};
    static const char *const links[][2] = {
        {"fd", "/proc/self/fd"},
        {"stdin", "/proc/self/fd/0"},
        {"stdout", "/proc/self/fd/1"},
        {"stderr", "/proc/self/fd/2"},
    };
    char source[64], target[PATH_MAX];
    xmkdir(NEW_ROOT "/dev", 0755);
    mount_tmpfs(NEW_ROOT "/dev", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k,nr_inodes=64");
    for (size_t i = 0; i < sizeof devices / sizeof *devices; i++) {
        snprintf(source, sizeof source, "/dev/%s", devices[i]);
        snprintf(target, sizeof target, NEW_ROOT "/dev/%s", devices[i]);
        touch(target);
        if (mount(source, target, NULL, MS_BIND, NULL) < 0)
            fail(errno, "bind %s", source);
    }
    for (size_t i = 0; i < sizeof links / sizeof *links; i++) {
        snprintf(target, sizeof target, NEW_ROOT "/dev/%s", links[i][0]);
        if (symlink(links[i][1], target) < 0)
            fail(errno, "symlink %s", target);
    }
    /* Each job mounts its own /dev/shm here (build_filesystem). */
    xmkdir(NEW_ROOT "/dev/shm", 01777);
    if (mount(NULL, NEW_ROOT "/dev", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC,
              NULL) < 0)
        fail(errno, "make /dev read-only");
}

/* Hide a path of the executor's (state, socket, keys) behind an empty, unreadable mount. Runs
 * after the pivot, so the path resolves exactly as the job would resolve it. */
static void mask(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return;
        fail(errno, "mask %s", path);
    }
    if (S_ISLNK(st.st_mode))
        fail(ELOOP, "mask %s", path);
    if (S_ISDIR(st.st_mode)) {
        mount_tmpfs(path, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=000,size=4k,nr_inodes=1");
        return;
    }
    if (mount("/dev/null", path, NULL, MS_BIND, NULL) < 0 ||
        mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
        fail(errno, "mask %s", path);
}

/* ---------------------------------------------------------------------------------------- */
/* The job's own filesystem                                                                  */

/* JOB_DIR is a filesystem of the job's own, with a size cap and an inode cap, that goes away as
 * one unit with the job's mount namespace: nothing of what the job wrote is ever left for the
 * executor to walk and remove. Spec keys:
 *   storage         memory: a tmpfs, its pages charged to the job's memory cgroup (the executor
 *                   keeps its size at most the job's memory limit, so a full /job is ENOSPC,
 *                   not an OOM kill)
 *                   disk: an ext4 image on the state directory's disk, through a loop device
 *   storage-bytes   the size cap
 *   storage-inodes  the inode cap (tmpfs nr_inodes; the executor made the image with as many)
 *   storage-image   disk only: the image's host path, a new file in the job's root-only directory
 */

/* How often a free loop device may be taken by someone else between finding and claiming it. */
#define LOOP_ATTEMPTS 16
/* ext4's block size in the image (storage-image.ts); also the loop device's, so that direct IO
 * works on disks with 4096-byte sectors too. */
#define STORAGE_BLOCK_BYTES 4096

/* Reserves the image's blocks (fallocate: so a job filling its filesystem meets ENOSPC from ext4,
 * never a write error of the disk under it) and attaches it to a free loop device with autoclear
 * (the device detaches itself when its last user, the job's mount, is gone) and direct IO. Direct
 * IO is required, not hoped for: through it the job's reads and writes reach the disk under the
 * image in the job's own cgroup, so the IO throttles the executor set on that disk hold (through
 * the page cache, the loop device's writes would be written back by no one's cgroup), and nothing
 * is cached twice. Then the image is unlinked: it lives on only through the loop device, and its
 * space returns to the disk with the job's mount namespace. Runs before the init enters the view
 * template, so the image's path resolves as the executor wrote it. Returns the loop device,
 * open; its path is in `device`. */
static int attach_storage_image(const struct spec *s, char *device, size_t size)
{
    int image = open(s->storage_image, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (image < 0)
        fail(errno, "storage: open image");
    if (fallocate(image, 0, 0, (off_t)s->storage_bytes) < 0)
        fail(errno, "storage: reserve %llu bytes on disk", s->storage_bytes);
    int control = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (control < 0)
        fail(errno, "storage: open /dev/loop-control");
    for (int attempt = 1;; attempt++) {
        int free_device = ioctl(control, LOOP_CTL_GET_FREE);
        if (free_device < 0)
            fail(errno, "storage: find a free loop device");
        snprintf(device, size, "/dev/loop%d", free_device);
        int loop = open(device, O_RDWR | O_CLOEXEC);
        if (loop < 0)
            fail(errno, "storage: open %s", device);
        struct loop_config config = {
            .fd = (__u32)image,
            .block_size = STORAGE_BLOCK_BYTES,
            .info = {.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO},
        };
        snprintf((char *)config.info.lo_file_name, LO_NAME_SIZE, "jobworker %s", s->hostname);
        if (ioctl(loop, LOOP_CONFIGURE, &config) == 0) {
            /* Older kernels quietly drop direct IO the backing file cannot do; the device then
             * detaches at our exit (autoclear). */
            struct loop_info64 status;
            if (ioctl(loop, LOOP_GET_STATUS64, &status) < 0)
                fail(errno, "storage: read the state of %s", device);
            if (!(status.lo_flags & LO_FLAGS_DIRECT_IO))
                fail(EINVAL, "storage: direct IO on the state directory's filesystem");
            close(control);
            close(image);
            if (unlink(s->storage_image) < 0)
                fail(errno, "storage: unlink image");
            return loop;
        }
        int err = errno;
        close(loop);
        if (err != EBUSY || attempt == LOOP_ATTEMPTS)
            fail(err, "storage: attach %s with direct IO", device);
    }
}

/* The job's filesystem at JOB_DIR, owned by the job's uid, mode 0700, nosuid and nodev. Disk
 * storage arrives as `storage_mount`, a detached mount made while the init still saw the host's
 * /dev (the job's /dev has no loop devices); memory storage is mounted here. */
static void mount_job_storage(const struct spec *s, int storage_mount)
{
    char options[160];
    if (s->storage == STORAGE_MEMORY) {
        snprintf(options, sizeof options, "mode=0700,uid=%u,gid=%u,size=%llu,nr_inodes=%llu",
                 (unsigned)s->uid, (unsigned)s->gid, s->storage_bytes, s->storage_inodes);
        mount_tmpfs(JOB_DIR, MS_NOSUID | MS_NODEV, options);
        return;
    }
    if (move_mount(storage_mount, "", AT_FDCWD, JOB_DIR, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        fail(errno, "storage: mount at %s", JOB_DIR);
    close(storage_mount);
    /* mke2fs's lost+found serves only fsck, which never runs on a filesystem discarded whole. */
    if (rmdir(JOB_DIR "/lost+found") < 0 && errno != ENOENT)
        fail(errno, "storage: remove lost+found");
    if (chown(JOB_DIR, s->uid, s->gid) < 0 || chmod(JOB_DIR, 0700) < 0)
        fail(errno, "storage: give %s to the job", JOB_DIR);
}

/* The ext4 image on its loop device, as a mount not yet attached anywhere. noinit_itable: the
 * kernel would otherwise zero the unused inode tables in the background, disk writes charged to
 * no job; the image's unwritten blocks read as zeros anyway. */
static int make_disk_storage(const struct spec *s)
{
    char device[32];
    int loop = attach_storage_image(s, device, sizeof device);
    int context = fsopen("ext4", FSOPEN_CLOEXEC);
    if (context < 0 || fsconfig(context, FSCONFIG_SET_STRING, "source", device, 0) < 0 ||
        fsconfig(context, FSCONFIG_SET_FLAG, "noinit_itable", NULL, 0) < 0 ||
        fsconfig(context, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
        fail(errno, "storage: mount %s", device);
    int mounted = fsmount(context, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
    if (mounted < 0)
        fail(errno, "storage: mount %s", device);
    close(context);
    close(loop); /* the mount holds the device now; autoclear detaches it after the mount */
    return mounted;
}

/* The view every job starts from, built once by the launcher (make_view_template) and copied
 * into each job's mount namespace: a tmpfs root with the host's top-level directories and files
 * bound read-only, symlinks copied, a minimal /dev, empty /proc, /sys, /tmp, /run and JOB_DIR
 * for the job's own mounts, the masks hidden, the root read-only. Runs in a process of its own,
 * in a new mount namespace, which the launcher keeps only as a descriptor. */
static void build_view_template(const struct masks *masks)
{
    if (unshare(CLONE_NEWNS) < 0)
        fail(errno, "new mount namespace");
    /* Nothing we mount from here on may propagate back to the host. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        fail(errno, "make mounts private");
    mount_tmpfs(NEW_ROOT, MS_NOSUID | MS_NODEV, "mode=0755,size=1m,nr_inodes=4096");
    bind_host_root();
    build_dev();
    xmkdir(NEW_ROOT "/proc", 0555);
    xmkdir(NEW_ROOT "/sys", 0555);
    xmkdir(NEW_ROOT "/tmp", 01777);
    xmkdir(NEW_ROOT "/run", 0755);
    xmkdir(NEW_ROOT JOB_DIR, 0755);

    /* pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves the
     * host's root unreachable from the view (runc does the same). */
    if (chdir(NEW_ROOT) < 0)
        fail(errno, "chdir new root");
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        fail(errno, "pivot_root");
    if (umount2(".", MNT_DETACH) < 0)
        fail(errno, "detach old root");
    if (chdir("/") < 0)
        fail(errno, "chdir /");

    /* After the pivot, so that each path resolves exactly as a job would resolve it. */
    for (size_t i = 0; i < masks->n; i++)
        mask(masks->paths[i]);
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
        fail(errno, "make / read-only");
}

/* The job's view: a copy of the template (fd VIEW_TEMPLATE_FD) with the job's own /proc (of its
 * PID namespace), /sys (of its network namespace), /tmp, /run, /dev/shm and JOB_DIR mounted on
 * it. The init enters the template only now: until here it saw the host's paths (its cgroups,
 * a disk image and its loop device). */
static void build_filesystem(const struct spec *s)
{
    char options[96];
    int storage_mount = s->storage == STORAGE_DISK ? make_disk_storage(s) : -1;
    if (setns(VIEW_TEMPLATE_FD, CLONE_NEWNS) < 0)
        fail(errno, "enter the view template");
    if (fchdir(VIEW_ROOT_FD) < 0 || chroot(".") < 0)
        fail(errno, "enter the view template's root");
    close(VIEW_TEMPLATE_FD);
    close(VIEW_ROOT_FD);
    /* A copy of our own: nothing mounted from here on reaches the template or another job. */
    if (unshare(CLONE_NEWNS) < 0)
        fail(errno, "copy the view template");
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        fail(errno, "mount /proc");
    if (mount("sysfs", "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        fail(errno, "mount /sys");
    snprintf(options, sizeof options, "mode=1777,size=%llu", s->tmp_size);
    mount_tmpfs("/tmp", MS_NOSUID | MS_NODEV, options);
    mount_tmpfs("/run", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k");
    mount_tmpfs("/dev/shm", MS_NOSUID | MS_NODEV, "mode=1777,size=64m");
    mount_job_storage(s, storage_mount);
    if (chdir("/") < 0)
        fail(errno, "chdir /");
}

/* A new network namespace has only lo, and it is down. */
static void bring_up_loopback(void)
{
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0)
        fail(errno, "loopback socket");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0)
        fail(errno, "loopback flags");
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0)
        fail(errno, "loopback up");
    close(sock);
}

/* ---------------------------------------------------------------------------------------- */
/* Job                                                                                       */

static void drop_privileges(uid_t uid, gid_t gid)
{
    /* Empty the bounding set while CAP_SETPCAP is still ours: no later exec, setuid binary or
     * file capability can bring a capability back. */
    for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
            fail(errno, "drop bounding capability %d", cap);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        fail(errno, "clear ambient capabilities");
    /* Groups first (needs CAP_SETGID), then gid, then uid: after setresuid we can no longer. */
    if (setgroups(0, NULL) < 0)
        fail(errno, "setgroups");
    if (setresgid(gid, gid, gid) < 0)
        fail(errno, "setresgid %u", (unsigned)gid);
    if (setresuid(uid, uid, uid) < 0)
        fail(errno, "setresuid %u", (unsigned)uid);
    /* Leaving uid 0 cleared the permitted and effective sets; clear inheritable too. */
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &header, data) < 0)
        fail(errno, "clear capabilities");
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 || ru != uid || eu != uid ||
        su != uid || rg != gid || eg != gid || sg != gid || getgroups(0, NULL) != 0)
        fail(EPERM, "verify dropped identity");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        fail(errno, "no_new_privs");
}

/* Syscalls that would let a job reach past its namespaces and cgroups, reach a host-wide table
 * no limit of its own bounds (io_setup: the host's AIO contexts), or that are large kernel
 * attack surface a batch job does not need. They fail with EPERM; namespace creation and socket
 * families are handled separately below. ptrace stays allowed: the job may debug its own
 * processes, and its PID namespace and uid keep it away from everyone else's. */
static const int denied_syscalls[] = {
    __NR_mount,         __NR_umount2,           __NR_pivot_root,      __NR_move_mount,
    __NR_open_tree,     __NR_fsopen,            __NR_fsconfig,        __NR_fsmount,
    __NR_fspick,        __NR_mount_setattr,     __NR_kexec_load,      __NR_kexec_file_load,
    __NR_init_module,   __NR_finit_module,      __NR_delete_module,   __NR_bpf,
    __NR_keyctl,        __NR_add_key,           __NR_request_key,     __NR_setns,
    __NR_perf_event_open, __NR_userfaultfd,     __NR_io_uring_setup,  __NR_io_uring_enter,
    __NR_io_uring_register, __NR_open_by_handle_at, __NR_name_to_handle_at, __NR_swapon,
    __NR_swapoff,       __NR_reboot,            __NR_syslog,          __NR_acct,
    __NR_quotactl,      __NR_lookup_dcookie,    __NR_fanotify_init,   __NR_io_setup,
#ifdef __NR_iopl
    __NR_iopl,
#endif
#ifdef __NR_ioperm
    __NR_ioperm,
#endif
#ifdef __NR_uselib
    __NR_uselib,
#endif
};

#if defined(__x86_64__)
#define SECCOMP_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SECCOMP_ARCH AUDIT_ARCH_AARCH64
#else
#error "jobworker-helper: add this architecture's AUDIT_ARCH for the seccomp filter"
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ARG0_LOW offsetof(struct seccomp_data, args[0])
#else
#define ARG0_LOW (offsetof(struct seccomp_data, args[0]) + 4)
#endif

#define NAMESPACE_FLAGS                                                                            \
    (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC |     \
     CLONE_NEWCGROUP)
#define RET_ERRNO(e) BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((e) & SECCOMP_RET_DATA))
#define RET_ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

static void install_seccomp(void)
{
    enum { DENIED = sizeof denied_syscalls / sizeof *denied_syscalls };
    struct sock_filter filter[48 + 2 * DENIED];
    size_t n = 0;
    /* Another ABI (i386 via int 0x80, x32) would sidestep every number below: kill outright. */
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SECCOMP_ARCH, 1, 0);
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#ifdef __x86_64__
    filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1);
    filter[n++] = (struct sock_filter)RET_ERRNO(ENOSYS);
#endif
    /* clone and unshare may not create namespaces: an unprivileged user namespace would hand
     * the job capabilities (and the kernel surface behind them) inside it. */
    filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 4);
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG0_LOW);
    filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, NAMESPACE_FLAGS, 0, 1);
    filter[n++] = (struct sock_filter)RET_ERRNO(EPERM);
    filter[n++] = (struct sock_filter)RET_ALLOW;
    filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_unshare, 0, 4);
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG0_LOW);
    filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, NAMESPACE_FLAGS | CLONE_NEWTIME, 0, 1);
    filter[n++] = (struct sock_filter)RET_ERRNO(EPERM);
    filter[n++] = (struct sock_filter)RET_ALLOW;
    /* Sockets of the families a job's network namespace isolates, and netlink for `ip` and `ss`;
     * no other family (AF_VSOCK, for one, reaches the hypervisor whatever the namespace). */
    filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 7);
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG0_LOW);
    filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 4, 0);
    filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET, 3, 0);
    filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET6, 2, 0);
    filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_NETLINK, 1, 0);
    filter[n++] = (struct sock_filter)RET_ERRNO(EAFNOSUPPORT);
    filter[n++] = (struct sock_filter)RET_ALLOW;
    /* clone3 passes its flags in memory a filter cannot read; ENOSYS makes libc fall back to
     * clone, which is checked above (Docker's profile does the same). */
    filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1);
    filter[n++] = (struct sock_filter)RET_ERRNO(ENOSYS);
    for (size_t i = 0; i < DENIED; i++) {
        filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)denied_syscalls[i], 0, 1);
        filter[n++] = (struct sock_filter)RET_ERRNO(EPERM);
    }
    filter[n++] = (struct sock_filter)RET_ALLOW;

    struct sock_fprog program = {.len = (unsigned short)n, .filter = filter};
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program, 0, 0) < 0)
        fail(errno, "install seccomp filter");
}

static const char *env_lookup(char **envp, const char *name)
{
    size_t len = strlen(name);
    for (; *envp; envp++)
        if (strncmp(*envp, name, len) == 0 && (*envp)[len] == '=')
            return *envp + len + 1;
    return NULL;
}

/* execvp without its habits we do not want: no /bin/sh fallback for files without a #! line
 * (ENOEXEC is an error), no empty PATH entries meaning ".". EACCES wins over ENOENT, as in
 * shells, so "found but not executable" is reported as such. */
/* The job's exec failed: report it, and end with the shell's code (127 not found, 126 found but
 * not executable), which is what the job's status shows to anyone reading it. */
__attribute__((noreturn)) static void fail_exec(int err)
{
    report(report_fd, "start-error %d exec\n", err);
    _exit(err == ENOENT ? 127 : 126);
}

__attribute__((noreturn)) static void exec_job(char **argv, char **envp)
{
    const char *file = argv[0];
    if (strchr(file, '/')) {
        execve(file, argv, envp);
        fail_exec(errno);
    }
    const char *path = env_lookup(envp, "PATH");
    if (!path)
        path = DEFAULT_PATH;
    bool saw_eacces = false;
    char candidate[PATH_MAX];
    for (const char *dir = path; *dir;) {
        const char *end = strchrnul(dir, ':');
        size_t dir_len = (size_t)(end - dir);
        if (dir_len > 0 && snprintf(candidate, sizeof candidate, "%.*s/%s", (int)dir_len, dir, file) <
                               (int)sizeof candidate) {
            execve(candidate, argv, envp);
            if (errno == EACCES)
                saw_eacces = true;
            else if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP && errno != ENAMETOOLONG)
                fail_exec(errno);
        }
        dir = *end ? end + 1 : end;
    }
    fail_exec(saw_eacces ? EACCES : ENOENT);
}

__attribute__((noreturn)) static void run_job(const struct spec *s, int out_fd, int err_fd)
{
    sigset_t none;
    sigemptyset(&none);
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL); /* fails harmlessly for SIGKILL, SIGSTOP and the RT range libc keeps */
    if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
        fail(errno, "unblock signals");
    if (dup2(out_fd, STDOUT_FILENO) < 0 || dup2(err_fd, STDERR_FILENO) < 0)
        fail(errno, "connect output");
    /* Its own session and process group, so that a stop reaches the whole job, as Ctrl-C does. */
    if (setsid() < 0)
        fail(errno, "setsid");
    struct rlimit no_core = {0, 0};
    if (setrlimit(RLIMIT_CORE, &no_core) < 0)
        fail(errno, "disable core dumps");
    /* The host's open-file table is shared by everyone: a job's processes get a bounded number
     * of descriptors each (never more than the executor was given: raising needs a capability
     * the executor does not keep). */
    struct rlimit files;
    if (getrlimit(RLIMIT_NOFILE, &files) < 0)
        fail(errno, "read the open files limit");
    if (files.rlim_max > s->nofile)
        files.rlim_max = s->nofile;
    files.rlim_cur = files.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &files) < 0)
        fail(errno, "limit open files");
    /* The init dropped every privilege before forking us, and installed the seccomp filter: the
     * kernel checks the working directory against the job's identity. */
    if (chdir(s->cwd) < 0)
        fail(errno, "chdir");
    /* Only 0, 1 and 2 survive the exec; the exec pipe goes with them, telling the keeper the
     * exec succeeded. */
    if (close_range(STDERR_FILENO + 1, ~0u, CLOSE_RANGE_CLOEXEC) < 0)
        fail(errno, "close descriptors");
    exec_job(s->argv, s->envp);
}

/* ---------------------------------------------------------------------------------------- */
/* ---------------------------------------------------------------------------------------- */
/* Init                                                                                      */

/* The next of the (blocked) signals in `set`: how the init waits for anything. */
static int next_signal(const sigset_t *set)
{
    for (;;) {
        int sig = sigwaitinfo(set, NULL);
        if (sig >= 0)
            return sig;
        if (errno != EINTR)
            die_errno("sigwaitinfo");
    }
}

/* The parent's pid as the host sees it; /proc here is still the host's until the pivot. */
static pid_t host_parent_pid(void)
{
    char buf[512];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *after_comm = strrchr(buf, ')'); /* comm may contain spaces and parentheses */
    int ppid;
    if (!after_comm || sscanf(after_comm, ") %*c %d", &ppid) != 1)
        return -1;
    return ppid;
}

/* Writes "0" to `file` in each of the cgroup directories `dirs`: moves the caller there. */
static void move_self(const char *const *dirs, size_t n, const char *file)
{
    char path[PATH_MAX];
    for (size_t i = 0; i < n; i++) {
        if (snprintf(path, sizeof path, "%s/%s", dirs[i], file) >= (int)sizeof path)
            fail(ENAMETOOLONG, "join cgroup %s", dirs[i]);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            fail(errno, "join cgroup %s", dirs[i]);
        if (write(fd, "0", 1) != 1)
            fail(errno, "join cgroup %s", dirs[i]);
        close(fd);
    }
}

/* The init moves itself into the job's v1 cgroups (its v2 cgroup, when there is one, it was
 * cloned into), first of all: everything it does from here on, the job's filesystem included
 * (a disk image's loop device must be allowed by the job's device rules, not the executor's,
 * which systemd's DevicePolicy=closed may close), counts against the job's limits, and the job
 * is born inside them. It writes "0" to each `tasks` file: a thread moving itself is the one
 * migration for which the kernel skips its global cgroup_threadgroup_rwsem, whose write side
 * waits for an RCU grace period after a quiet spell (moving by pid into six hierarchies took
 * 8–9 ms here, moving itself 0.5 ms). The init is a single thread: the whole process moves. The
 * keeper stays outside: the job's OOM kill or pids limit never reaches the process that records
 * the job's end. */
static void join_cgroups(const struct spec *s)
{
    move_self(s->cgroups, s->n_cgroups, "tasks");
    /* v2 has no tasks file, and moves a process only whole (rare: clone3 refused). */
    if (s->cgroup2_by_move)
        move_self(&s->cgroup2, 1, "cgroup.procs");
}

/* One go from the keeper (one byte on the go pipe); without it the init ends, having run nothing. */
static void await_go(int go_fd)
{
    char go;
    ssize_t got;
    while ((got = read(go_fd, &go, 1)) < 0 && errno == EINTR)
        ;
    if (got != 1)
        _exit(EXIT_HELPER_FAILED);
}

/* Set up, the init needs no privilege to reap and forward signals: it becomes the job's uid with
 * no capabilities, no_new_privs and the job's seccomp filter, as bubblewrap's and runc's inits
 * do, before it forks the job, which inherits all of it. Changing uid makes the init
 * non-dumpable (the job cannot ptrace it or read its memory; the job's exec makes the job
 * dumpable again) and, as a PID namespace's init, it takes no signal the job sends. A failure is
 * the job's start failure; `exec_fd` is still open to report it. */
static void drop_init_privileges(const struct spec *s, int exec_fd)
{
    drop_privileges(s->uid, s->gid);
    install_seccomp();
    /* The uid change cleared the parent-death signal: set it again, then make sure the keeper
     * did not die in between (the exec pipe's reader, the keeper, would then be gone). */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
        fail(errno, "init parent-death signal");
    struct pollfd keeper = {.fd = exec_fd, .events = POLLOUT};
    if (poll(&keeper, 1, 0) == 1 && (keeper.revents & POLLERR))
        _exit(EXIT_HELPER_FAILED);
}

static void run_init(const struct spec *s, pid_t keeper, int out_fd, int err_fd, int exec_fd,
                     int status_fd, int go_fd)
{
    report_fd = exec_fd;
    /* Die with the keeper: the job must never outlive the process that records its end; when
     * the init dies the kernel kills every process in the namespace. If the keeper died before
     * this line, give up now. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || host_parent_pid() != keeper)
        _exit(EXIT_HELPER_FAILED);
    prctl(PR_SET_NAME, "jobworker-init", 0, 0, 0);

    /* The executor's "ready" on its connection to the keeper, read here and nowhere else
     * (the keeper reads that connection only once the job started): the job's cgroups are
     * made. Read by the init itself, so that its setup does not wait for the keeper's files.
     * An executor that gives up on the start (its cgroups failed) closes the connection
     * instead: the read fails, and nothing of the job is built. */
    char ready[sizeof CGROUPS_READY - 1];
    read_exact(CONTROL_FD, ready, sizeof ready, "cgroups ready");
    if (memcmp(ready, CGROUPS_READY, sizeof ready) != 0)
        fail(EPROTO, "read cgroups ready");
    close(CONTROL_FD);
    /* In the job's cgroups before it builds anything, so that all of it counts as the job's. */
    join_cgroups(s);
    build_filesystem(s);
    if (sethostname(s->hostname, strlen(s->hostname)) < 0)
        fail(errno, "sethostname");
    bring_up_loopback();
    /* Its own cgroup namespace, rooted at the job's cgroups: /proc/self/cgroup shows "/", no
     * host cgroup path. The job inherits it. */
    if (unshare(CLONE_NEWCGROUP) < 0)
        fail(errno, "cgroup namespace");
    /* The keeper's go: the job's record is on disk. Without it (the keeper could not write it,
     * or died) the job never runs. */
    await_go(go_fd);
    close(go_fd);
    /* Before the fork: the job inherits the init's identity, its empty capability sets,
     * no_new_privs and its seccomp filter, so they are set up once for both. */
    drop_init_privileges(s, exec_fd);
    write_all(exec_fd, SETUP_DONE, strlen(SETUP_DONE));
    pid_t job = fork();
    if (job < 0)
        fail(errno, "fork job");
    if (job == 0)
        run_job(s, out_fd, err_fd);
    close(out_fd);
    close(err_fd);
    close(exec_fd);

    sigset_t waited;
    forwarded_and_child_set(&waited);
    for (;;) {
        int sig = next_signal(&waited);
        if (sig != SIGCHLD) {
            if (kill(-job, sig) < 0)
                kill(job, sig);
            continue;
        }
        /* Reap everything: the job and any orphan re-parented to us. */
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            if (pid != job)
                continue;
            write_all(status_fd, (const char *)&status, sizeof status);
            /* Leaving PID 1 makes the kernel kill whatever the job left running. */
            _exit(WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status));
        }
    }
}
