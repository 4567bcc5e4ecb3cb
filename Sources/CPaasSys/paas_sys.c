#define _GNU_SOURCE
#include "CPaasSys.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#if defined(__linux__)
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#endif

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* ---- the child path: async-signal-safe only ---- */

struct child_report {
    int err;
    int step; /* index into step_names */
};

static const char *const step_names[] = {"fork", "setpgid", "prctl", "parent died", "dup2", "close_range", "chdir", "execve"};

static void child_fail(int report_fd, int step) {
    struct child_report r = {errno, step};
    ssize_t unused = write(report_fd, &r, sizeof r);
    (void)unused;
    _exit(127);
}

/* Marks (or closes) every open descriptor from `lowest` up; returns how many it touched.
 *
 * close_range (Linux 5.11) does it in one call. Without it, the descriptors that are open are
 * listed with raw getdents64 on /proc/self/fd: open, getdents64, fcntl and close are plain
 * system calls, safe between vfork and exec (no malloc, no lock: glibc's opendir would
 * allocate, in a child that shares the parent's heap). This touches only the descriptors that
 * exist, instead of 65,536 fcntl calls, and the parent cannot compute the list beforehand
 * because another thread may open a descriptor in between (the result must hold at exec).
 * Only when /proc is missing too does it fall back to every number below the descriptor limit. */
static int sweep_fds(int lowest, int close_them, int try_close_range) {
#if defined(__linux__) && defined(SYS_close_range)
    if (try_close_range && syscall(SYS_close_range, (unsigned)lowest, ~0U, close_them ? 0U : CLOSE_RANGE_CLOEXEC) == 0) return -1;
#else
    (void)try_close_range;
#endif
    int touched = 0;
#if defined(__linux__)
    int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        /* linux_dirent64: ino (8), off (8), reclen (2), type (1), name. */
        _Alignas(8) char buf[2048];
        for (;;) {
            long n = syscall(SYS_getdents64, dir, buf, sizeof buf);
            if (n <= 0) break;
            for (long off = 0; off < n;) {
                unsigned short reclen;
                memcpy(&reclen, buf + off + 16, sizeof reclen);
                const char *name = buf + off + 19;
                off += reclen;
                int fd = 0, digits = 0;
                for (; *name >= '0' && *name <= '9'; name++, digits++) fd = fd * 10 + (*name - '0');
                if (digits == 0 || *name != '\0' || fd < lowest || fd == dir) continue;
                touched++;
                if (close_them) close(fd);
                else {
                    int flags = fcntl(fd, F_GETFD);
                    if (flags >= 0) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
                }
            }
        }
        close(dir);
        return touched;
    }
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536) max = 65536;
    for (int fd = lowest; fd < max; fd++) {
        if (close_them) { if (close(fd) == 0) touched++; continue; }
        int flags = fcntl(fd, F_GETFD);
        if (flags >= 0) { fcntl(fd, F_SETFD, flags | FD_CLOEXEC); touched++; }
    }
    return touched;
}

/* Marks every descriptor from 3 up close-on-exec, so exec closes them but the report pipe
 * stays usable until then. */
static void mark_cloexec_from_3(void) { (void)sweep_fds(3, 0, 1); }

int paas_mark_cloexec_from(int lowest, int use_close_range) {
    return sweep_fds(lowest, 0, use_close_range);
}

pid_t paas_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
                 int stdin_fd, int stdout_fd, int stderr_fd,
                 int *out_errno, const char **out_step) {
    int report[2];
#if defined(__linux__)
    if (pipe2(report, O_CLOEXEC) != 0) {
#else
    if (pipe(report) != 0 || fcntl(report[0], F_SETFD, FD_CLOEXEC) != 0 || fcntl(report[1], F_SETFD, FD_CLOEXEC) != 0) {
#endif
        *out_errno = errno;
        *out_step = "pipe2";
        return -1;
    }
    pid_t parent = getpid();
    /* vfork: the child borrows the parent's memory until execve, so spawning costs the
     * same whatever paas's size. Only the calling thread is suspended meanwhile. Every
     * signal is blocked in paas's threads (signalfd), so no handler can run in the child
     * before the mask is reset right before execve. */
    pid_t pid = vfork();
    if (pid == 0) {
        if (setpgid(0, 0) != 0) child_fail(report[1], 1);
#if defined(__linux__)
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) child_fail(report[1], 2);
        /* The parent may have died before prctl: then the signal never comes. */
        if (getppid() != parent) { errno = ESRCH; child_fail(report[1], 3); }
#endif
        if (stdin_fd != 0 && dup2(stdin_fd, 0) < 0) child_fail(report[1], 4);
        if (stdout_fd != 1 && dup2(stdout_fd, 1) < 0) child_fail(report[1], 4);
        if (stderr_fd != 2 && dup2(stderr_fd, 2) < 0) child_fail(report[1], 4);
        mark_cloexec_from_3();
        if (cwd != NULL && chdir(cwd) != 0) child_fail(report[1], 6);
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        for (int s = 1; s < NSIG; s++) {
            if (s == SIGKILL || s == SIGSTOP) continue;
            if (sigaction(s, &dfl, NULL) != 0) {
#if defined(__linux__)
                /* glibc refuses its reserved signals (32, 33); an ignored disposition there is
                 * inherited all the same, so reset it with the raw system call. */
                struct { void *handler; unsigned long flags; void *restorer; unsigned long mask; } k = {0};
                syscall(SYS_rt_sigaction, s, &k, NULL, sizeof k.mask);
#endif
            }
        }
        sigset_t empty;
        sigemptyset(&empty);
        sigprocmask(SIG_SETMASK, &empty, NULL);
        execve(path, argv, envp);
        child_fail(report[1], 7);
    }
    if (pid < 0) {
        *out_errno = errno;
        *out_step = "fork";
        close(report[0]);
        close(report[1]);
        return -1;
    }
    /* Also set the group from the parent, so a signal to -pid right after we return
     * cannot miss (the classic setpgid race). EACCES after exec is fine. */
    setpgid(pid, pid);
    close(report[1]);
    struct child_report r;
    ssize_t n;
    do { n = read(report[0], &r, sizeof r); } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == (ssize_t)sizeof r) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        *out_errno = r.err;
        *out_step = step_names[r.step];
        return -1;
    }
    return pid;
}

/* ---- the guardian ---- */

/* The guardian's table: an open-addressing set of process-group ids (0 empty, -1 deleted)
 * in memory from mmap, so that it grows without malloc (the guardian is a fork of a process
 * that may have threads, where malloc is not safe). */
struct group_set {
    int32_t *slots;
    size_t cap;   /* a power of two */
    size_t used;  /* live + deleted slots */
};

static int group_set_resize(struct group_set *set, size_t cap) {
    int32_t *slots = mmap(NULL, cap * sizeof *slots, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (slots == MAP_FAILED) return -1;
    size_t used = 0;
    for (size_t i = 0; i < set->cap; i++) {
        int32_t v = set->slots[i];
        if (v <= 0) continue;
        size_t j = ((uint32_t)v * 2654435761u) & (cap - 1);
        while (slots[j] != 0) j = (j + 1) & (cap - 1);
        slots[j] = v;
        used++;
    }
    if (set->slots != NULL) munmap(set->slots, set->cap * sizeof *set->slots);
    set->slots = slots;
    set->cap = cap;
    set->used = used;
    return 0;
}

static int group_set_add(struct group_set *set, int32_t v) {
    if ((set->used + 1) * 2 > set->cap) {
        size_t live = 0;
        for (size_t i = 0; i < set->cap; i++) live += set->slots[i] > 0;
        /* Grow when at least a quarter is live; otherwise rehash in place to drop deleted slots. */
        size_t cap = set->cap == 0 ? 1024 : ((live + 1) * 4 > set->cap ? set->cap * 2 : set->cap);
        if (group_set_resize(set, cap) != 0) return -1;
    }
    size_t j = ((uint32_t)v * 2654435761u) & (set->cap - 1);
    while (set->slots[j] != 0) {
        if (set->slots[j] == v) return 0;
        j = (j + 1) & (set->cap - 1);
    }
    set->slots[j] = v;
    set->used++;
    return 0;
}

static void group_set_remove(struct group_set *set, int32_t v) {
    if (set->cap == 0) return;
    size_t j = ((uint32_t)v * 2654435761u) & (set->cap - 1);
    while (set->slots[j] != 0) {
        if (set->slots[j] == v) { set->slots[j] = -1; return; }
        j = (j + 1) & (set->cap - 1);
    }
}

#define GUARDIAN_NAME "paas-guardian"

/* Names the guardian `paas-guardian` in ps, /proc/PID/comm and /proc/PID/cmdline. A fork
 * keeps paas's command line, so `pkill -9 -f 'paas up'` would kill the guardian along with
 * paas and leave the grandchildren it exists for: overwrite this process's copy of the
 * argument strings in place, as setproctitle does (open, read and memset only). */
static void guardian_rename(void) {
#if defined(__linux__)
    prctl(PR_SET_NAME, GUARDIAN_NAME);
#endif
#if defined(__GLIBC__)
    char *args = program_invocation_name; /* argv[0]; the other arguments follow it */
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (args == NULL || fd < 0) { if (fd >= 0) close(fd); return; }
    char buf[4096];
    size_t total = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) if (n > 0) total += (size_t)n;
    close(fd);
    if (total < 2) return;
    memset(args, 0, total);
    size_t len = strlen(GUARDIAN_NAME);
    memcpy(args, GUARDIAN_NAME, len < total - 1 ? len : total - 1);
#endif
}

/* The guardian's whole life: async-signal-safe calls only (it is a forked child of a paas that
 * may have threads). Messages are 4-byte values in the pipe's byte stream: +pgid,
 * -pgid, PAAS_GUARDIAN_RESET, 0 (goodbye). */
static void guardian_loop(int fd, int kill_fd, const char *cgroup_dir) __attribute__((noreturn));
static void guardian_loop(int fd, int kill_fd, const char *cgroup_dir) {
    guardian_rename();
    /* Every signal whose default would end it quietly, except SIGKILL: paas reports a dead
     * guardian and starts another, but the guardian should not die of a stray signal. */
    static const int ignored[] = {SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM,
                                  SIGTSTP, SIGTTIN, SIGTTOU, SIGXFSZ, SIGXCPU, SIGVTALRM, SIGPROF, SIGIO};
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) sigaction(ignored[i], &ign, NULL);
    sigset_t empty;
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, NULL);

    struct group_set set = {NULL, 0, 0};
    unsigned char buf[4096];
    size_t have = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof buf - have);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; /* end of file: paas is gone without a goodbye */
        have += (size_t)n;
        size_t off = 0;
        for (; have - off >= 4; off += 4) {
            int32_t v;
            memcpy(&v, buf + off, sizeof v);
            if (v == 0) {
                /* Goodbye: paas stopped everything itself. The cgroup is left to remove: paas is
                 * still in it until it exits (moving it out first costs paas an RCU grace period,
                 * several milliseconds, on its way out), so wait for that, bounded. */
                if (cgroup_dir != NULL) {
                    struct timespec tick = {0, 2 * 1000 * 1000};
                    for (int i = 0; i < 5000 && rmdir(cgroup_dir) != 0 && errno == EBUSY; i++) nanosleep(&tick, NULL);
                }
                _exit(0);
            }
            if (v == PAAS_GUARDIAN_RESET) {
                if (set.cap > 0) memset(set.slots, 0, set.cap * sizeof *set.slots);
                set.used = 0;
            } else if (v > 0) {
                /* Out of memory: exit with a status paas reports; it starts a new guardian. */
                if (group_set_add(&set, v) != 0) _exit(PAAS_GUARDIAN_STATUS_NO_MEMORY);
            } else {
                group_set_remove(&set, -v);
            }
        }
        memmove(buf, buf + off, have - off);
        have -= off;
    }
    for (size_t i = 0; i < set.cap; i++) {
        if (set.slots[i] > 1) kill(-set.slots[i], SIGKILL);
    }
    /* The cgroup also holds daemons that left every group paas knows (setsid). */
    if (kill_fd >= 0) { ssize_t unused = write(kill_fd, "1", 1); (void)unused; }
    /* Then remove the emptied cgroup: rmdir says EBUSY until the killed processes are gone,
     * and they are zombies until whoever inherits them reaps them (paas is dead): up to 30 s. */
    if (cgroup_dir != NULL) {
        struct timespec tick = {0, 20 * 1000 * 1000};
        for (int i = 0; i < 1500 && rmdir(cgroup_dir) != 0 && errno == EBUSY; i++) nanosleep(&tick, NULL);
    }
    _exit(0);
}

/* The guardian's descriptors: the pipe on stdin, /dev/null on stdout and stderr, cgroup.kill on
 * 3 if any, nothing else (it must not keep paas's stdout, a pipe's write end or the control
 * socket open). */
static int guardian_stdio(int pipe_read, int devnull, int kill_fd) {
    /* Copies above 10 first (closed by the sweep that follows): any source may itself be
     * 0 to 3 when paas was started with a standard descriptor closed. */
    int p = fcntl(pipe_read, F_DUPFD_CLOEXEC, 10);
    int n = devnull >= 0 ? fcntl(devnull, F_DUPFD_CLOEXEC, 10) : -1;
    int k = kill_fd >= 0 ? fcntl(kill_fd, F_DUPFD_CLOEXEC, 10) : -1;
    if (p < 0 || (devnull >= 0 && n < 0) || (kill_fd >= 0 && k < 0)) return -1;
    if (dup2(p, 0) < 0) return -1;
    if (n >= 0 && (dup2(n, 1) < 0 || dup2(n, 2) < 0)) return -1;
    if (k >= 0 && dup2(k, 3) < 0) return -1;
    return 0;
}

pid_t paas_guardian_start(int kill_fd, const char *cgroup_dir, int escape_fd, int *out_fd) {
    if (cgroup_dir == NULL) kill_fd = -1;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    /* The child closes its end once it has its own session and descriptors; the parent waits
     * for that end-of-file, so nothing is spawned while the guardian is still in paas's group. */
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) != 0) { int e = errno; close(fds[0]); close(fds[1]); if (devnull >= 0) close(devnull); errno = e; return -1; }
    /* A fork without exec. Measured with the static release build and 100 listeners: 2.9 MB
     * resident (the copied page tables of paas's data and heap) against 3.8 MB for an exec of
     * /proc/self/exe, which pays the dynamic loader's relocation of the whole binary. A fork
     * needs no /proc either. paas may have threads when it replaces a dead guardian, so the
     * child runs async-signal-safe calls only (no malloc: the table is mmap'ed). */
    pid_t pid = fork();
    if (pid == 0) {
        /* Its own session and process group: `kill -9 -PGID` of paas's group and `timeout -s
         * KILL` (which signals its whole group) miss it. No parent-death signal: outliving
         * paas is its purpose. */
        setsid();
        /* Out of paas's cgroup (paas lives in it), or cgroup.kill would end the guardian too. */
        if (escape_fd >= 0) { ssize_t unused = write(escape_fd, "0", 1); (void)unused; }
        if (guardian_stdio(fds[0], devnull, kill_fd) != 0) _exit(127);
        (void)sweep_fds(kill_fd >= 0 ? 4 : 3, 1, 1); /* closes ready[1] too: the parent goes on */
        guardian_loop(0, kill_fd >= 0 ? 3 : -1, kill_fd >= 0 ? cgroup_dir : NULL);
    }
    close(ready[1]);
    if (pid > 0) {
        char byte;
        while (read(ready[0], &byte, 1) < 0 && errno == EINTR) {}
    }
    close(ready[0]);
    close(fds[0]);
    if (devnull >= 0) close(devnull);
    if (pid < 0) { int e = errno; close(fds[1]); errno = e; return -1; }
    /* Non-blocking: paas queues what the pipe does not take instead of stalling its loop. */
    fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK);
    *out_fd = fds[1];
    return pid;
}

int paas_set_child_subreaper(void) {
#if defined(__linux__)
    return prctl(PR_SET_CHILD_SUBREAPER, 1);
#else
    errno = ENOSYS;
    return -1;
#endif
}

/* ---- epoll, signalfd, eventfd, pipes ---- */

#if defined(__linux__)
int paas_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int paas_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    if (events & 1) ev.events |= EPOLLIN;
    if (events & 2) ev.events |= EPOLLOUT;
    ev.data.u64 = token;
    int cop = op == 1 ? EPOLL_CTL_ADD : op == 2 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
    return epoll_ctl(epfd, cop, fd, &ev);
}

int paas_epoll_wait(int epfd, uint64_t *tokens, uint32_t *flags, int max, int timeout_ms) {
    struct epoll_event evs[256];
    if (max > 256) max = 256;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    for (int i = 0; i < n; i++) {
        tokens[i] = evs[i].data.u64;
        uint32_t f = 0;
        if (evs[i].events & EPOLLIN) f |= 1;
        if (evs[i].events & EPOLLOUT) f |= 2;
        if (evs[i].events & (EPOLLHUP | EPOLLERR)) f |= 4;
        flags[i] = f;
    }
    return n;
}

int paas_signalfd(const int *signals) {
    sigset_t set;
    sigemptyset(&set);
    for (const int *s = signals; *s != 0; s++) sigaddset(&set, *s);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return -1;
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

int paas_signalfd_read(int fd) {
    struct signalfd_siginfo info;
    ssize_t n;
    do { n = read(fd, &info, sizeof info); } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof info) return 0;
    return (int)info.ssi_signo;
}

int paas_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int paas_pipe(int fds[2], int nonblock_read) {
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
    if (nonblock_read) fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    return 0;
}
#endif

void paas_ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }

int paas_reap_one(paas_reaped_t *out) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int r;
    do { r = waitid(P_ALL, 0, &info, WEXITED | WNOHANG); } while (r < 0 && errno == EINTR);
    if (r < 0) return -1;
    if (info.si_pid == 0) return 0;
    out->pid = info.si_pid;
    if (info.si_code == CLD_EXITED) { out->exited = 1; out->code = info.si_status; }
    else { out->exited = 0; out->code = info.si_status; }
    return 1;
}

void paas_realtime(int64_t *sec, int32_t *nsec) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    *sec = ts.tv_sec;
    *nsec = (int32_t)ts.tv_nsec;
}

void paas_localtime(int64_t sec, int *year, int *month, int *day, int *hour, int *minute, int *second) {
    time_t t = (time_t)sec;
    struct tm tm;
    localtime_r(&t, &tm);
    *year = tm.tm_year + 1900; *month = tm.tm_mon + 1; *day = tm.tm_mday;
    *hour = tm.tm_hour; *minute = tm.tm_min; *second = tm.tm_sec;
}

/* ---- Unix sockets for the control channel ---- */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

long paas_peer_uid(int fd) {
#if defined(__linux__)
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -1;
    return (long)cred.uid;
#else
    uid_t uid; gid_t gid;
    if (getpeereid(fd, &uid, &gid) != 0) return -1;
    return (long)uid;
#endif
}

static int fill_addr(struct sockaddr_un *addr, const char *path) {
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof addr->sun_path) { errno = ENAMETOOLONG; return -1; }
    strcpy(addr->sun_path, path);
    return 0;
}

int paas_unix_listen(const char *path) {
    struct sockaddr_un addr;
    if (fill_addr(&addr, path) != 0) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    /* The socket file gets 0600 from the umask at bind time: no window where others may connect. */
    mode_t old = umask(0177);
    int r = bind(fd, (struct sockaddr *)&addr, sizeof addr);
    umask(old);
    if (r != 0 || listen(fd, 128) != 0) { int e = errno; close(fd); errno = e; return -1; }
    return fd;
}

int paas_unix_connect(const char *path) {
    struct sockaddr_un addr;
    if (fill_addr(&addr, path) != 0) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int r;
    do { r = connect(fd, (struct sockaddr *)&addr, sizeof addr); } while (r != 0 && errno == EINTR);
    if (r != 0) { int e = errno; close(fd); errno = e; return -1; }
    return fd;
}

int paas_unix_accept(int fd) {
    return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int paas_set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

#include <netinet/in.h>
#include <arpa/inet.h>

int paas_tcp_connect_local(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0 && errno != EINPROGRESS) {
        int e = errno; close(fd); errno = e; return -1;
    }
    return fd;
}

int paas_socket_error(int fd) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
    return err;
}
