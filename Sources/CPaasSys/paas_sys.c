#define _GNU_SOURCE
#include "CPaasSys.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
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

/* Marks every descriptor from 3 up close-on-exec, so exec closes them but the report pipe
 * stays usable until then. close_range needs Linux 5.11; older kernels get the fcntl loop. */
static int mark_cloexec_from_3(void) {
#if defined(__linux__) && defined(SYS_close_range)
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return 0;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536) max = 65536;
    for (int fd = 3; fd < max; fd++) {
        int flags = fcntl(fd, F_GETFD);
        if (flags >= 0) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    }
    return 0;
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

#define GUARDIAN_MAX 65536
static pid_t guardian_groups[GUARDIAN_MAX];

pid_t paas_guardian_start(int *out_fd) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) { close(fds[0]); close(fds[1]); return -1; }
    if (pid == 0) {
        /* Runs without exec, so only async-signal-safe calls from here on. */
        close(fds[1]);
#if defined(__linux__)
        prctl(PR_SET_NAME, "paas-guardian");
#endif
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        signal(SIGQUIT, SIG_IGN);
        signal(SIGPIPE, SIG_IGN);
        int count = 0;
        for (;;) {
            int32_t v;
            ssize_t n = read(fds[0], &v, sizeof v);
            if (n < 0 && errno == EINTR) continue;
            if (n != (ssize_t)sizeof v) break; /* EOF: paas is gone */
            if (v == 0) _exit(0);          /* clean exit: paas stopped everything itself */
            if (v > 0) {
                if (count < GUARDIAN_MAX) guardian_groups[count++] = v;
            } else {
                for (int i = 0; i < count; i++) {
                    if (guardian_groups[i] == -v) { guardian_groups[i] = guardian_groups[--count]; break; }
                }
            }
        }
        for (int i = 0; i < count; i++) kill(-guardian_groups[i], SIGKILL);
        _exit(0);
    }
    close(fds[0]);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
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
