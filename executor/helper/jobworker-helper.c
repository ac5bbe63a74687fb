/*
 * jobworker-helper: the one native step between the root executor and a job.
 *
 * Node cannot clone into namespaces, act as PID 1, drop privileges between fork and exec, or
 * report an exec failure from inside a namespace, so this small program does exactly that and
 * nothing more. It is started by the executor only (never by a user) and trusts the executor;
 * it still refuses specs that would run a job as root.
 *
 * Three processes, all inside the job's cgroups from their first instruction:
 *
 *   monitor  (host PID namespace)  reads the spec, joins the cgroups, creates the output pipes,
 *      │                           clones the init, relays start/exit reports to the executor,
 *      │                           forwards signals to the init. Dies with the executor.
 *      └─ init  (PID 1 of new PID, mount, network, UTS and IPC namespaces)
 *           │                      builds the job's filesystem view, sets the hostname, brings
 *           │                      up loopback, forks the job, forwards signals to its process
 *           │                      group, reaps every orphan, exits with the job's status (and
 *           │                      the kernel then kills whatever is left in the namespace).
 *           └─ job                 drops every privilege, installs the seccomp filter, execs.
 *
 * Protocol on fd 3 (a socket from the executor):
 *   executor → helper  u32 big-endian length, then NUL-terminated "key\0value\0" pairs
 *                      (keys: uid gid hostname workdir cwd tmp-size cgroup* mask* arg* env*)
 *   helper → executor  text lines: "pipes <stdout-fd> <stderr-fd>", "init <pid>",
 *                      "started" | "start-error <errno> <stage>", then "exit code <n>" |
 *                      "exit signal <n>"
 *   executor → helper  one byte once it has opened /proc/<monitor>/fd/<n> for both pipes; the
 *                      monitor holds the pipes' read ends until then, so no output is lost
 *                      however fast the job ends.
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
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <grp.h>

#define CONTROL_FD 3
#define MAX_SPEC_BYTES (1u << 20)
#define OUTPUT_PIPE_BYTES (1 << 20)
/* Where the job's writable directory appears, and its default working directory. */
#define JOB_DIR "/job"
/* The job's root is a tmpfs mounted here inside our private mount namespace, then pivoted to. */
#define NEW_ROOT "/tmp"
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Exit statuses of the monitor itself (the job's status is reported on fd 3, not here). */
#define EXIT_START_FAILED 1
#define EXIT_HELPER_FAILED 2

struct spec {
    uid_t uid;
    gid_t gid;
    const char *hostname;
    const char *workdir; /* host path of the job's writable directory */
    const char *cwd;     /* path inside the job's view */
    unsigned long long tmp_size;
    const char **cgroups;
    size_t n_cgroups;
    const char **masks;
    size_t n_masks;
    char **argv;
    size_t argc;
    char **envp;
    size_t envc;
};

/* Start-time failures go to the executor as "start-error <errno> <stage>": from the monitor
 * directly on fd 3, from the init and the job through the close-on-exec exec pipe, which the
 * monitor relays. */
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

__attribute__((format(printf, 2, 3))) static void report(int fd, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    /* One line per record: a path with a newline in it must not forge a second record, and a
     * truncated record still ends its line. */
    for (size_t i = 0; i + 1 < len; i++)
        if (line[i] == '\n')
            line[i] = '?';
    line[len - 1] = '\n';
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

/* A failure after the job started: there is no start error to report any more. */
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

static void read_exact(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fail(n == 0 ? EPIPE : errno, "read spec");
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
    read_exact(CONTROL_FD, header, sizeof header);
    uint32_t len = (uint32_t)header[0] << 24 | (uint32_t)header[1] << 16 |
                   (uint32_t)header[2] << 8 | header[3];
    if (len == 0 || len > MAX_SPEC_BYTES)
        fail(EMSGSIZE, "spec length %u", len);
    char *buf = malloc(len);
    if (!buf)
        fail(ENOMEM, "spec buffer");
    read_exact(CONTROL_FD, buf, len);
    if (buf[len - 1] != '\0')
        fail(EINVAL, "spec not NUL-terminated");

    /* Every list is at most the number of strings, which is at most len / 2 pairs. */
    size_t max_items = len / 2 + 1;
    s->cgroups = calloc(max_items, sizeof *s->cgroups);
    s->masks = calloc(max_items, sizeof *s->masks);
    s->argv = calloc(max_items + 1, sizeof *s->argv);
    s->envp = calloc(max_items + 1, sizeof *s->envp);
    if (!s->cgroups || !s->masks || !s->argv || !s->envp)
        fail(ENOMEM, "spec lists");

    for (char *p = buf; p < buf + len;) {
        char *key = p;
        p += strlen(p) + 1;
        if (p >= buf + len)
            fail(EINVAL, "spec key %s has no value", key);
        char *value = p;
        p += strlen(p) + 1;
        if (strcmp(key, "uid") == 0)
            s->uid = (uid_t)parse_id(key, value);
        else if (strcmp(key, "gid") == 0)
            s->gid = (gid_t)parse_id(key, value);
        else if (strcmp(key, "hostname") == 0)
            s->hostname = value;
        else if (strcmp(key, "workdir") == 0)
            s->workdir = value;
        else if (strcmp(key, "cwd") == 0)
            s->cwd = value;
        else if (strcmp(key, "tmp-size") == 0)
            s->tmp_size = strtoull(value, NULL, 10);
        else if (strcmp(key, "cgroup") == 0)
            s->cgroups[s->n_cgroups++] = value;
        else if (strcmp(key, "mask") == 0)
            s->masks[s->n_masks++] = value;
        else if (strcmp(key, "arg") == 0)
            s->argv[s->argc++] = value;
        else if (strcmp(key, "env") == 0)
            s->envp[s->envc++] = value;
        else
            fail(EINVAL, "spec key %s unknown", key);
    }

    /* The executor validated all of this; a job must still never run as root here. */
    if (s->uid == 0 || s->gid == 0)
        fail(EPERM, "spec uid/gid");
    if (s->argc == 0)
        fail(EINVAL, "spec argv empty");
    if (!s->hostname || strlen(s->hostname) == 0 || strlen(s->hostname) > 64)
        fail(EINVAL, "spec hostname");
    if (!s->workdir || !is_absolute_clean_path(s->workdir))
        fail(EINVAL, "spec workdir");
    if (!s->cwd || !is_absolute_clean_path(s->cwd))
        fail(EINVAL, "spec cwd");
    if (s->tmp_size == 0)
        fail(EINVAL, "spec tmp-size");
    for (size_t i = 0; i < s->n_cgroups; i++)
        if (!is_absolute_clean_path(s->cgroups[i]))
            fail(EINVAL, "spec cgroup %s", s->cgroups[i]);
    for (size_t i = 0; i < s->n_masks; i++)
        if (!is_absolute_clean_path(s->masks[i]))
            fail(EINVAL, "spec mask %s", s->masks[i]);
}

/* ---------------------------------------------------------------------------------------- */
/* Monitor                                                                                   */

/* The signals the executor may send to stop or notify a job; all are forwarded inward. */
static const int forwarded_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

/* The next of the (blocked) signals in `set`: how the monitor and the init wait for anything. */
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

static void forwarded_and_child_set(sigset_t *set)
{
    sigemptyset(set);
    for (size_t i = 0; i < sizeof forwarded_signals / sizeof *forwarded_signals; i++)
        sigaddset(set, forwarded_signals[i]);
    sigaddset(set, SIGCHLD);
}

/* Writing our own pid into each cgroup.procs before cloning means the init and the job are
 * born inside the job's cgroups: nothing the job runs is ever outside its limits. */
static void join_cgroups(const struct spec *s)
{
    char path[PATH_MAX], pid[32];
    int len = snprintf(pid, sizeof pid, "%d\n", getpid());
    for (size_t i = 0; i < s->n_cgroups; i++) {
        if (snprintf(path, sizeof path, "%s/cgroup.procs", s->cgroups[i]) >= (int)sizeof path)
            fail(ENAMETOOLONG, "join cgroup %s", s->cgroups[i]);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            fail(errno, "join cgroup %s", s->cgroups[i]);
        if (write(fd, pid, (size_t)len) != len)
            fail(errno, "join cgroup %s", s->cgroups[i]);
        close(fd);
    }
}

static void make_output_pipe(int fds[2], const struct spec *s)
{
    if (pipe2(fds, O_CLOEXEC) < 0)
        fail(errno, "create output pipe");
    /* A larger buffer lets a bursty job keep running while the executor is busy elsewhere. */
    (void)fcntl(fds[1], F_SETPIPE_SZ, OUTPUT_PIPE_BYTES);
    /* A pipe belongs to its creator (root, mode 0600); give it to the job so that reopening it,
     * as `echo >/dev/stderr` does through /proc/self/fd/2, works (runc does the same). */
    if (fchown(fds[1], s->uid, s->gid) < 0)
        fail(errno, "chown output pipe");
}

static void report_exit_status(int status)
{
    if (WIFSIGNALED(status))
        report(CONTROL_FD, "exit signal %d\n", WTERMSIG(status));
    else
        report(CONTROL_FD, "exit code %d\n", WEXITSTATUS(status));
}

/* The exec pipe's write ends belong to the init and the job and close when the job's execve
 * succeeds. The init writes SETUP_DONE before it forks the job; either may write a start error.
 * So: an error line → that error; SETUP_DONE then EOF → the program is running; EOF alone → the
 * init died during setup (killed, or out of memory under a tiny limit). */
#define SETUP_DONE "setup-done\n"

static void relay_start_result(int exec_read_fd)
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
    if (error)
        write_all(CONTROL_FD, error, strlen(error));
    else if (strncmp(buf, SETUP_DONE, strlen(SETUP_DONE)) == 0)
        report(CONTROL_FD, "started\n");
    else
        report(CONTROL_FD, "start-error 0 init ended during setup\n");
}

static void run_init(const struct spec *s, pid_t monitor, int out_fd, int err_fd, int exec_fd,
                     int status_fd) __attribute__((noreturn));

int main(int argc, char **argv)
{
    (void)argv;
    pid_t executor = getppid();
    /* Die with the executor: a job must never outlive the process that accounts for it. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != executor)
        return EXIT_HELPER_FAILED;
    if (argc != 1) {
        fprintf(stderr, "jobworker-helper: started by the jobworker executor only\n");
        return EXIT_HELPER_FAILED;
    }
    if (fcntl(CONTROL_FD, F_SETFD, FD_CLOEXEC) < 0) {
        fprintf(stderr, "jobworker-helper: no control socket on fd 3\n");
        return EXIT_HELPER_FAILED;
    }
    /* Only 0 (/dev/null), 1, 2 and the control socket are expected; drop anything else. */
    if (close_range(CONTROL_FD + 1, ~0u, 0) < 0)
        fail(errno, "close inherited descriptors");
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0)
        fail(errno, "stdin /dev/null");
    close(devnull);

    struct spec spec = {0};
    read_spec(&spec);

    /* Signals stay blocked from here on and are taken with sigwaitinfo, in the monitor and in the
     * init alike: nothing can arrive between a check and a wait. */
    sigset_t waited;
    forwarded_and_child_set(&waited);
    if (sigprocmask(SIG_BLOCK, &waited, NULL) < 0)
        fail(errno, "block signals");

    int out[2], err[2], exec_pipe[2], status_pipe[2];
    make_output_pipe(out, &spec);
    make_output_pipe(err, &spec);
    report(CONTROL_FD, "pipes %d %d\n", out[0], err[0]);

    join_cgroups(&spec);

    if (pipe2(exec_pipe, O_CLOEXEC) < 0 || pipe2(status_pipe, O_CLOEXEC) < 0)
        fail(errno, "create status pipes");

    pid_t monitor = getpid();
    /* A raw clone without a new stack behaves like fork: the child continues on a copy of ours. */
    pid_t init = (pid_t)syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET |
                                               CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD,
                                NULL, NULL, NULL, 0);
    if (init < 0)
        fail(errno, "clone namespaces");
    if (init == 0) {
        close(out[0]);
        close(err[0]);
        close(exec_pipe[0]);
        close(status_pipe[0]);
        run_init(&spec, monitor, out[1], err[1], exec_pipe[1], status_pipe[1]);
    }

    close(out[1]);
    close(err[1]);
    close(exec_pipe[1]);
    close(status_pipe[1]);
    report(CONTROL_FD, "init %d\n", init);
    relay_start_result(exec_pipe[0]);
    close(exec_pipe[0]);

    int init_status = 0;
    for (;;) {
        int sig = next_signal(&waited);
        if (sig != SIGCHLD) {
            kill(init, sig);
            continue;
        }
        pid_t done = waitpid(init, &init_status, WNOHANG);
        if (done == init)
            break;
        if (done < 0 && errno != EINTR)
            die_errno("waitpid");
    }

    /* The init writes the job's exact wait status before it exits; if the init itself was
     * killed (a stop that escalated), its own status is the best there is. */
    int job_status;
    ssize_t n;
    char buf[1];
    do
        n = read(status_pipe[0], &job_status, sizeof job_status);
    while (n < 0 && errno == EINTR);
    report_exit_status(n == (ssize_t)sizeof job_status ? job_status : init_status);

    /* Hold the pipes' read ends until the executor says it has its own. */
    do
        n = read(CONTROL_FD, buf, 1);
    while (n < 0 && errno == EINTR);
    return 0;
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
    xmkdir(NEW_ROOT "/dev/shm", 01777);
    mount_tmpfs(NEW_ROOT "/dev/shm", MS_NOSUID | MS_NODEV, "mode=1777,size=64m");
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

static void build_filesystem(const struct spec *s)
{
    char options[96];
    /* Nothing we mount from here on may propagate back to the host. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        fail(errno, "make mounts private");
    mount_tmpfs(NEW_ROOT, MS_NOSUID | MS_NODEV, "mode=0755,size=1m,nr_inodes=4096");
    bind_host_root();
    build_dev();

    xmkdir(NEW_ROOT "/proc", 0555);
    if (mount("proc", NEW_ROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        fail(errno, "mount /proc");
    xmkdir(NEW_ROOT "/sys", 0555);
    if (mount("sysfs", NEW_ROOT "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
              NULL) < 0)
        fail(errno, "mount /sys");
    xmkdir(NEW_ROOT "/tmp", 01777);
    snprintf(options, sizeof options, "mode=1777,size=%llu", s->tmp_size);
    mount_tmpfs(NEW_ROOT "/tmp", MS_NOSUID | MS_NODEV, options);
    xmkdir(NEW_ROOT "/run", 0755);
    mount_tmpfs(NEW_ROOT "/run", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k");
    xmkdir(NEW_ROOT JOB_DIR, 0755);
    if (mount(s->workdir, NEW_ROOT JOB_DIR, NULL, MS_BIND, NULL) < 0 ||
        mount(NULL, NEW_ROOT JOB_DIR, NULL, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV, NULL) < 0)
        fail(errno, "bind job directory %s", s->workdir);

    /* pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves the
     * host's root unreachable from the job (runc does the same). */
    if (chdir(NEW_ROOT) < 0)
        fail(errno, "chdir new root");
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        fail(errno, "pivot_root");
    if (umount2(".", MNT_DETACH) < 0)
        fail(errno, "detach old root");
    if (chdir("/") < 0)
        fail(errno, "chdir /");

    for (size_t i = 0; i < s->n_masks; i++)
        mask(s->masks[i]);
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
        fail(errno, "make / read-only");
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

/* Syscalls that would let a job reach past its namespaces and cgroups, or that are large
 * kernel attack surface a batch job does not need. They fail with EPERM; namespace creation is
 * handled separately below. ptrace stays allowed: the job may debug its own processes, and
 * its PID namespace and uid keep it away from everyone else's. */
static const int denied_syscalls[] = {
    __NR_mount,         __NR_umount2,           __NR_pivot_root,      __NR_move_mount,
    __NR_open_tree,     __NR_fsopen,            __NR_fsconfig,        __NR_fsmount,
    __NR_fspick,        __NR_mount_setattr,     __NR_kexec_load,      __NR_kexec_file_load,
    __NR_init_module,   __NR_finit_module,      __NR_delete_module,   __NR_bpf,
    __NR_keyctl,        __NR_add_key,           __NR_request_key,     __NR_setns,
    __NR_perf_event_open, __NR_userfaultfd,     __NR_io_uring_setup,  __NR_io_uring_enter,
    __NR_io_uring_register, __NR_open_by_handle_at, __NR_name_to_handle_at, __NR_swapon,
    __NR_swapoff,       __NR_reboot,            __NR_syslog,          __NR_acct,
    __NR_quotactl,      __NR_lookup_dcookie,    __NR_fanotify_init,
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
    struct sock_filter filter[32 + 2 * DENIED];
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
    drop_privileges(s->uid, s->gid);
    /* After the drop, so the kernel checks the working directory against the job's identity. */
    if (chdir(s->cwd) < 0)
        fail(errno, "chdir");
    install_seccomp();
    /* Only 0, 1 and 2 survive the exec; the exec pipe goes with them, telling the monitor the
     * exec succeeded. */
    if (close_range(STDERR_FILENO + 1, ~0u, CLOSE_RANGE_CLOEXEC) < 0)
        fail(errno, "close descriptors");
    exec_job(s->argv, s->envp);
}

/* ---------------------------------------------------------------------------------------- */
/* Init                                                                                      */

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

static void run_init(const struct spec *s, pid_t monitor, int out_fd, int err_fd, int exec_fd,
                     int status_fd)
{
    report_fd = exec_fd;
    close(CONTROL_FD);
    /* Die with the monitor (and so with the executor); when the init dies the kernel kills
     * every process in the namespace. If the monitor died before this line, give up now. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || host_parent_pid() != monitor)
        _exit(EXIT_HELPER_FAILED);
    prctl(PR_SET_NAME, "jobworker-init", 0, 0, 0);

    build_filesystem(s);
    if (sethostname(s->hostname, strlen(s->hostname)) < 0)
        fail(errno, "sethostname");
    bring_up_loopback();

    write_all(exec_fd, SETUP_DONE, strlen(SETUP_DONE));
    pid_t job = fork();
    if (job < 0)
        fail(errno, "fork job");
    if (job == 0)
        run_job(s, out_fd, err_fd);
    close(exec_fd);
    close(out_fd);
    close(err_fd);

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
