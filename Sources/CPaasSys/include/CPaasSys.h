#ifndef C_PAAS_SYS_H
#define C_PAAS_SYS_H

#include <sys/types.h>
#include <stdint.h>

/// The platform seam of paas, in C because Swift cannot run between fork and exec
/// (only async-signal-safe code may) and because Swift's Glibc module does not expose
/// epoll, signalfd, eventfd or pipe2.

/// Spawns `argv[0]` (an absolute path) with `envp` in a new process group.
///
/// In the child, between vfork and execve, only async-signal-safe calls run:
/// `setpgid(0, 0)`, `prctl(PR_SET_PDEATHSIG, SIGKILL)` followed by a `getppid()`
/// re-check (the parent may already be gone), stdin from `stdin_fd`, stdout and stderr
/// from `stdout_fd`/`stderr_fd`, every other descriptor closed on exec, every signal
/// disposition reset to its default, an empty signal mask, `chdir(cwd)` and `execve`.
/// A failure of any of these is reported through a close-on-exec pipe.
///
/// - Important: the parent-death signal fires when the *thread* that called this
///   function exits, so every spawn must come from one thread that lives as long as paas.
/// - Returns: the child's pid, or -1 with `*out_errno` set and `*out_step` naming the
///   step that failed ("execve", "chdir", "fork", ...). When the child started but its
///   exec failed, the child has already been reaped.
pid_t paas_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
                 int stdin_fd, int stdout_fd, int stderr_fd,
                 int *out_errno, const char **out_step);

/// Starts the guardian: a process in its own session (so a signal to paas's process group,
/// `kill -9 -PGID` or `timeout -s KILL`, misses it) that reads 4-byte values from a pipe
/// (`+pgid` adds a process group, `-pgid` removes it, `PAAS_GUARDIAN_RESET` forgets them all,
/// `0` means a clean exit) and, when the pipe reaches end-of-file without a clean exit (paas
/// was killed, even with SIGKILL), sends SIGKILL to every group it holds. It closes the gap
/// that the parent-death signal leaves: grandchildren in a child's process group.
///
/// It is a fork of paas without exec (smaller than an exec of the binary, which pays for the
/// relocation of the whole binary), so it runs async-signal-safe code only; call this from
/// the thread that spawns, before or after other threads exist. Its table grows without limit (mmap);
/// when memory runs out it exits with `PAAS_GUARDIAN_STATUS_NO_MEMORY`. It keeps no
/// descriptor of paas's but the pipe (stdin), and ignores every terminating signal but SIGKILL.
/// When `cgroup_dir` is not NULL (the cgroup paas and its children live in) and `kill_fd` is
/// its open `cgroup.kill`, the guardian keeps that descriptor and, when paas dies, writes `1`
/// to it after killing its groups (which also ends daemons that left every process group
/// paas knows: a `setsid` child), then removes the emptied directory. `escape_fd`, when not
/// -1, is the `cgroup.procs` of the cgroup paas came from: the guardian moves itself there
/// before exec, so that it is not in the cgroup it kills.
/// - Returns: the guardian's pid and the write end of its pipe (non-blocking, close-on-exec)
///   in `*out_fd`, or -1 with errno.
pid_t paas_guardian_start(int kill_fd, const char *cgroup_dir, int escape_fd, int *out_fd);
/// The guardian message that empties its table (sent before a full re-registration).
#define PAAS_GUARDIAN_RESET INT32_MIN
/// The guardian's exit status when its table could not grow.
#define PAAS_GUARDIAN_STATUS_NO_MEMORY 3

/// Marks every open descriptor from `lowest` up close-on-exec, with `close_range` when
/// `use_close_range` is set and the kernel has it, else by listing /proc/self/fd with
/// `getdents64` (the path the spawn child takes on kernels before 5.11). Returns how many
/// descriptors it visited (-1 when `close_range` did it all), so tests can check the bound.
int paas_mark_cloexec_from(int lowest, int use_close_range);

/// Makes this process a child subreaper. The corresponding C function is `prctl`.
int paas_set_child_subreaper(void);

/// Creates an epoll instance (close-on-exec). The corresponding C function is `epoll_create1`.
int paas_epoll_create(void);
/// Adds (op 1), removes (op 2) or modifies (op 3) `fd` with `events` (bit 0: readable,
/// bit 1: writable) and an opaque `token`. The corresponding C function is `epoll_ctl`.
int paas_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token);
/// Waits for events; fills `tokens` and `flags` (bit 0 readable, bit 1 writable, bit 2
/// hang-up or error). Returns the count, 0 on timeout, -1 with errno (EINTR retried by caller).
/// The corresponding C function is `epoll_wait`.
int paas_epoll_wait(int epfd, uint64_t *tokens, uint32_t *flags, int max, int timeout_ms);

/// Blocks `signals` (a 0-terminated list) in the calling thread and returns a signalfd for
/// them (non-blocking, close-on-exec). Call it before any other thread starts so that every
/// thread inherits the mask. The corresponding C functions are `pthread_sigmask` and `signalfd`.
int paas_signalfd(const int *signals);
/// Reads one pending signal from a signalfd: its number, or 0 when none is pending.
int paas_signalfd_read(int fd);

/// An eventfd (non-blocking, close-on-exec). The corresponding C function is `eventfd`.
int paas_eventfd(void);
/// A pipe with both ends close-on-exec; `nonblock_read` makes the read end non-blocking.
/// The corresponding C function is `pipe2`.
int paas_pipe(int fds[2], int nonblock_read);

/// Ignores SIGPIPE in this process, so that a closed stdout becomes EPIPE.
void paas_ignore_sigpipe(void);

/// One reaped child: pid, and either its exit code or the signal that ended it.
typedef struct {
    pid_t pid;
    int exited;   /* 1: code holds an exit status; 0: code holds a signal number */
    int code;
} paas_reaped_t;
/// Reaps one exited child of any kind without blocking. Returns 1 and fills `out`, 0 when
/// children exist but none has exited, -1 with errno ECHILD when there are no children.
/// The corresponding C function is `waitid(P_ALL, ..., WEXITED | WNOHANG)`.
int paas_reap_one(paas_reaped_t *out);

/// Wall-clock time split for log stamps: seconds since the epoch and nanoseconds.
void paas_realtime(int64_t *sec, int32_t *nsec);
/// Local broken-down time of `sec`: fills hour, minute, second (and the rest of a date).
void paas_localtime(int64_t sec, int *year, int *month, int *day, int *hour, int *minute, int *second);

#endif

/// The uid of the process at the other end of a connected Unix socket, or -1.
/// The corresponding C function is `getsockopt(SO_PEERCRED)`.
long paas_peer_uid(int fd);
/// Binds and listens on a Unix stream socket at `path` (non-blocking, close-on-exec), mode 0600.
/// Returns the descriptor, or -1 with errno (EADDRINUSE when something is there).
int paas_unix_listen(const char *path);
/// Connects a blocking Unix stream socket to `path`. Returns the descriptor or -1 with errno.
int paas_unix_connect(const char *path);
/// Accepts one connection, non-blocking and close-on-exec; -1 with errno (EAGAIN when none).
int paas_unix_accept(int fd);
/// Makes `fd` non-blocking.
int paas_set_nonblocking(int fd);

/// Starts a non-blocking TCP connection to 127.0.0.1:`port` (close-on-exec). Returns the
/// descriptor (connected or in progress), or -1 with errno.
int paas_tcp_connect_local(int port);
/// The pending error of a socket (0 when the connection succeeded).
/// The corresponding C function is `getsockopt(SO_ERROR)`.
int paas_socket_error(int fd);
