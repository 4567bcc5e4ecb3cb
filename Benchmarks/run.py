#!/usr/bin/env python3
"""Benchmarks for paas, beside foreman, honcho and no supervisor at all.

usage: python3 Benchmarks/run.py [--paas PATH] [--only NAME[,NAME...]] [--quick]
                                 [--runs N] [--lines N] [--deadline S] [--json FILE]

Supervisors: paas (--paas, default .build/release/paas), foreman and honcho
(each skipped when not installed), and "none": a bash loop that starts the
same children with `/bin/sh -c` (PORT, PS and DYNO set) and lets them write
straight into the harness's pipe.

Metrics (names for --only; supervisor names work there too):
  listeners  100 listeners (web=100): launch until all 100 ports accept
  lines      16 writers, 100-byte lines, one write() per line: lines/s, and
             lost / torn / mislabelled lines
  blocks     the same with 100 KB writes (lines straddle writes)
  sigterm    SIGTERM to the supervisor with 10 idle children: until it exits
  childexit  a child exits on its own: from its exit until the supervisor's
  firstline  launch until the first line of a child is read from stdout
  rss        RSS and PSS of the supervisor and its helper processes (every
             descendant but the apps: shells, guardians) with 100 idle listeners
             whose Procfile line has no `exec`

Each run starts its supervisor in its own session and process group and always
ends with SIGKILL to it and to every process it started (found through /proc).
Every run has a deadline; a run that misses it is reported as "stall".
Each figure is the median of --runs runs (3; 1 with --quick). Progress goes to
stderr; one markdown table goes to stdout.

Python 3 standard library only; Linux only (/proc).
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from bench_common import accepts

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FIXTURES_SRC = os.path.join(REPO, "Tests", "Fixtures")

SUPERVISORS = ["paas", "foreman", "honcho", "none"]
METRICS = ["listeners", "lines", "blocks", "sigterm", "childexit", "firstline", "rss"]

WRITERS = 16
LINE_SIZE = 100
LISTENERS = 100
LISTEN_PORT = 17000
RSS_CHILDREN = 100
RSS_PORT = 18000
SIGTERM_CHILDREN = 10

# Lines that are plainly one of the writer's lines, or a piece of one.
DATAISH = re.compile(rb"xx|^\S+ \d+ ")
ANSI = re.compile(rb"\x1b\[[0-9;]*[A-Za-z]")

# The "none" supervisor: start every child, wait for the first to exit (or for
# SIGTERM), then SIGTERM the rest, reap them and exit with the first status.
NONE_SH = r"""
trap 'kill -TERM $(jobs -p) 2>/dev/null; wait; exit 143' TERM INT
while [ $# -gt 0 ]; do
  PORT=$2 PS=$1 DYNO=$1 /bin/sh -c "$3" </dev/null &
  shift 3
done
wait -n; st=$?
kill -TERM $(jobs -p) 2>/dev/null
wait
exit $st
"""


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# /proc helpers


def proc_table():
    """pid -> (ppid, pgid, comm, state) for every process."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                stat = f.read()
        except OSError:
            continue
        close = stat.rindex(b")")
        comm = stat[stat.index(b"(") + 1:close].decode("utf-8", "replace")
        fields = stat[close + 2:].split()
        table[int(name)] = (int(fields[1]), int(fields[2]), comm, fields[0].decode())
    return table


def descendants(pid, table=None):
    """pids of every live descendant of pid (not pid itself)."""
    table = proc_table() if table is None else table
    children = {}
    for p, (ppid, _pgid, _comm, _state) in table.items():
        children.setdefault(ppid, []).append(p)
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def count_live(pid, comm):
    """how many live (non-zombie) descendants of pid run program `comm`."""
    table = proc_table()
    return sum(1 for p in descendants(pid, table)
               if table[p][2] == comm and table[p][3] not in ("Z", "X"))


def vm_rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid):
    """proportional set size: shared pages (e.g. after fork) counted once."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# ---------------------------------------------------------------------------
# One run of one supervisor


class Run:
    """A supervisor in its own session, its stdout read by a thread.

    watch(buf) is called by the reader with the text read so far that the
    previous calls have not seen (plus a short overlap) and returns True when
    what the run waits for has arrived; the time of that read is done_at.
    """

    counter = 0

    def __init__(self, argv, cwd, env, watch=None, keep=True):
        Run.counter += 1
        # every process of the run inherits this tag: cleanup finds orphans by it
        self.tag = "%d-%d" % (os.getpid(), Run.counter)
        env = dict(env, BENCH_RUN_ID=self.tag)
        self.argv = argv
        self.watch = watch
        self.keep = keep
        self.chunks = []
        self.nbytes = 0
        self.done_at = None
        self.last_read_at = None
        self.eof_at = None
        self.exited_at = None
        self.done = threading.Event()
        self.eof = threading.Event()
        self.stderr = tempfile.TemporaryFile()
        rfd, wfd = os.pipe()
        self.t0 = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=wfd,
                stderr=self.stderr, start_new_session=True, close_fds=True)
        finally:
            os.close(wfd)
        self.rfd = rfd
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        tail = b""
        while True:
            try:
                chunk = os.read(self.rfd, 1 << 20)
            except OSError:
                chunk = b""
            now = time.monotonic()
            if not chunk:
                self.eof_at = now
                self.eof.set()
                self.done.set()
                return
            self.last_read_at = now
            self.nbytes += len(chunk)
            if self.keep:
                self.chunks.append(chunk)
            if self.watch is not None and self.done_at is None:
                buf = tail + chunk
                if self.watch(buf):
                    self.done_at = now
                    self.done.set()
                tail = buf[-4096:]

    def wait_done(self, deadline, idle=None):
        """Waits until watch() said done, EOF, the deadline (monotonic) or, if
        idle is given, that many seconds without output. True if watch() said done."""
        while self.done_at is None and not self.eof.is_set():
            now = time.monotonic()
            if now >= deadline:
                return False
            if idle is not None and self.last_read_at is not None and now - self.last_read_at > idle:
                return False
            self.done.wait(min(0.05, deadline - now))
        return self.done_at is not None

    def wait_exit(self, timeout):
        # A blocking wait in a thread: Popen.wait(timeout) polls with sleeps of up to 50 ms,
        # which would blur an exit time measured in milliseconds.
        def waiter():
            self.proc.wait()
            self.exited_at = time.monotonic()
        t = threading.Thread(target=waiter, daemon=True)
        t.start()
        t.join(timeout)
        return not t.is_alive()

    def data(self):
        return b"".join(self.chunks)

    def stderr_tail(self, n=800):
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")[-n:]

    def leftovers(self):
        """live processes of this run other than the supervisor itself."""
        return [p for p in tagged_processes(self.tag) if p != self.proc.pid]

    def kill(self):
        """SIGKILL the supervisor and everything it started, and reap it."""
        pid = self.proc.pid
        for _ in range(5):
            try:
                os.killpg(pid, signal.SIGSTOP)  # freeze: nothing new is spawned
            except OSError:
                pass
            table = proc_table()
            victims = set(descendants(pid, table)) | set(tagged_processes(self.tag, table))
            victims.discard(pid)
            groups = {table[p][1] for p in victims if p in table}
            groups.add(pid)
            groups -= {os.getpgrp(), 0, 1}
            for p in victims:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            for g in groups:
                try:
                    os.killpg(g, signal.SIGKILL)
                except OSError:
                    pass
            if not victims:
                break
            time.sleep(0.01)
        try:
            self.proc.kill()
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            log("  warning: pid %d did not die" % pid)
        self.reader.join(5)
        remove_cgroup(pid)
        try:
            os.close(self.rfd)
        except OSError:
            pass
        self.stderr.close()


def remove_cgroup(pid):
    """paas makes a cgroup paas-PID where it may (as root); its guardian removes it when
    paas dies, but kill() above SIGKILLs the guardian too: remove it here once empty."""
    try:
        with open("/proc/self/mountinfo") as f:
            mounts = [l.split() for l in f]
        mount = next(m[4] for m in mounts if "-" in m and m[m.index("-") + 1] == "cgroup2")
        with open("/proc/self/cgroup") as f:
            own = next(l.strip()[3:] for l in f if l.startswith("0::"))
    except (OSError, StopIteration):
        return
    path = os.path.join(mount + own.rstrip("/"), "paas-%d" % pid)
    for _ in range(200):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.01)


def tagged_processes(tag, table=None):
    """live (non-zombie) processes whose environment has BENCH_RUN_ID=tag."""
    table = proc_table() if table is None else table
    needle = b"\x00BENCH_RUN_ID=" + tag.encode() + b"\x00"
    out = []
    for p, (_ppid, _pgid, _comm, state) in table.items():
        if state in ("Z", "X"):
            continue
        try:
            with open("/proc/%d/environ" % p, "rb") as f:
                env = b"\x00" + f.read() + b"\x00"
        except OSError:
            continue
        if needle in env:
            out.append(p)
    return out


# ---------------------------------------------------------------------------
# Supervisors


class Supervisor:
    def __init__(self, name, argv0):
        self.name = name
        self.argv0 = argv0

    def argv(self, procfile, formation, port):
        """formation: list of (type, count)."""
        spec = ",".join("%s=%d" % tc for tc in formation)
        if self.name == "paas":
            return [self.argv0, "up", "-f", procfile, "-m", spec, "-p", str(port),
                    "-t", "5", "--no-color"]
        if self.name == "foreman":
            return [self.argv0, "start", "-f", procfile, "-m", spec, "-p", str(port),
                    "-t", "5", "--no-color"]
        if self.name == "honcho":
            return [self.argv0, "start", "-d", os.path.dirname(procfile), "-f", procfile,
                    "-c", spec, "-p", str(port), "--no-colour"]
        # none: bash loop; ports as foreman assigns them
        commands = read_procfile(procfile)
        args = ["bash", "-c", NONE_SH, "none"]
        for i, (typ, count) in enumerate(formation):
            for n in range(1, count + 1):
                args += ["%s.%d" % (typ, n), str(port + 100 * i + n - 1), commands[typ]]
        return args

    def start(self, procfile, formation, port=5000, watch=None, keep=True):
        return Run(self.argv(procfile, formation, port), os.path.dirname(procfile),
                   child_env(), watch=watch, keep=keep)


def read_procfile(path):
    out = {}
    with open(path) as f:
        for line in f:
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                out[k.strip()] = v.strip()
    return out


def child_env():
    env = dict(os.environ)
    for k in list(env):
        if k in ("PORT", "PS", "DYNO", "HONCHO_PROCESS_NAME", "NOTIFY_SOCKET",
                 "JOURNAL_STREAM", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS",
                 "LISTEN_PID", "LISTEN_FDNAMES") or k.startswith("PAAS_"):
            del env[k]
    env["NO_COLOR"] = "1"
    return env


def find_supervisors(paas_path):
    found, notes = [], []
    p = paas_path
    if not os.path.isabs(p) and not os.path.exists(p):
        p = os.path.join(REPO, p)
    if os.path.isfile(p) and os.access(p, os.X_OK):
        found.append(Supervisor("paas", os.path.abspath(p)))
    else:
        notes.append("paas skipped: no executable at %s (build it with `swift build -c release`)" % paas_path)
    for name in ("foreman", "honcho"):
        exe = shutil.which(name)
        if exe:
            found.append(Supervisor(name, exe))
        else:
            notes.append("%s skipped: not installed" % name)
    if shutil.which("bash"):
        found.append(Supervisor("none", "bash"))
    else:
        notes.append("none skipped: bash not found")
    return found, notes


# ---------------------------------------------------------------------------
# Measurements. Each returns a dict: value (number or None), and text fields.


class Bench:
    def __init__(self, args, workdir, fixtures):
        self.args = args
        self.work = workdir
        self.fx = fixtures
        self.seq = 0

    def procfile(self, text):
        self.seq += 1
        d = os.path.join(self.work, "app%d" % self.seq)
        os.makedirs(d)
        path = os.path.join(d, "Procfile")
        with open(path, "w") as f:
            f.write(text)
        return path

    # a. 100 listeners ------------------------------------------------------
    def listeners(self, sup):
        ports = list(range(LISTEN_PORT, LISTEN_PORT + LISTENERS))
        busy = [p for p in ports if accepts(p)]
        if busy:
            return {"value": None, "text": "ports busy"}
        pf = self.procfile("web: exec %s\n" % self.fx["listener"])
        run = sup.start(pf, [("web", LISTENERS)], LISTEN_PORT, keep=False)
        try:
            deadline = run.t0 + 30
            waiting = set(ports)
            while waiting and time.monotonic() < deadline:
                for p in list(waiting):
                    if accepts(p):
                        waiting.discard(p)
                if waiting:
                    if run.proc.poll() is not None:
                        break
                    time.sleep(0.002)
            if waiting:
                return {"value": None, "text": "stall (%d/%d up)" % (LISTENERS - len(waiting), LISTENERS),
                        "stderr": run.stderr_tail()}
            return {"value": time.monotonic() - run.t0}
        finally:
            run.kill()
            wait_ports_free(ports)

    # b/c. writers ----------------------------------------------------------
    def writers(self, sup, mode):
        n = self.args.lines
        names = ["w.%d" % i for i in range(1, WRITERS + 1)]
        pf = self.procfile(
            "w: PS=${PS:-${HONCHO_PROCESS_NAME:-w}} %s %d %d %s; exec sleep 1000\n"
            % (self.fx["writer"], n, LINE_SIZE, mode))
        # the whole last line of each writer, newline included (a marker that
        # matched a line's first half would end the run before its second half)
        markers = []
        for ps in names:
            head = "%s %d " % (ps, n - 1)
            markers.append((head + "x" * (LINE_SIZE - 1 - len(head)) + "\n").encode())
        pending = set(markers)
        expected_bytes = WRITERS * n * LINE_SIZE

        last_seq = (" %d " % (n - 1)).encode()  # only in the last line of each writer

        def watch(buf):
            if last_seq in buf:
                for m in list(pending):
                    if m in buf:
                        pending.discard(m)
            if sup.name == "none" and run_box[0] is not None and run_box[0].nbytes >= expected_bytes:
                return True
            return not pending

        run_box = [None]
        # the watch closure needs the run for the byte count of "none"
        run = sup.start(pf, [("w", WRITERS)], 5000, watch=watch)
        run_box[0] = run
        ok = False
        try:
            ok = run.wait_done(run.t0 + self.args.deadline, idle=10)
            progressing = (not ok and run.last_read_at is not None
                           and time.monotonic() - run.last_read_at < 10 and not run.eof.is_set())
        finally:
            tail = None if ok else run.stderr_tail()
            run.kill()
        check = validate(run.data(), names, n, labelled=(sup.name != "none"))
        res = {"check": check, "nbytes": run.nbytes}
        if ok:
            res["value"] = WRITERS * n / (run.done_at - run.t0)
        elif progressing:
            # still going at the deadline: a slow supervisor, not a stuck one.
            # Its rate is what it delivered by then; lost lines mean nothing.
            res["value"] = check["valid"] / (run.last_read_at - run.t0)
            res["note"] = "partial: %.0f s deadline" % self.args.deadline
            check["lost"] = None
        else:
            # no output for 10 s before the deadline (or none at all): stuck
            res["value"] = None
            res["text"] = "stall"
            res["stderr"] = tail
            check["lost"] = None
        return res

    def lines(self, sup):
        return self.writers(sup, "line")

    def blocks(self, sup):
        return self.writers(sup, "block")

    # d. SIGTERM -> exit ----------------------------------------------------
    def sigterm(self, sup):
        pf = self.procfile("idle: exec sleep 1000\n")
        run = sup.start(pf, [("idle", SIGTERM_CHILDREN)], 5000, keep=False)
        try:
            if not wait_until(lambda: count_live(run.proc.pid, "sleep") >= SIGTERM_CHILDREN, 30):
                return {"value": None, "text": "children not started"}
            time.sleep(0.2)
            t = time.monotonic()
            os.kill(run.proc.pid, signal.SIGTERM)
            if not run.wait_exit(30):
                return {"value": None, "text": "stall"}
            res = {"value": run.exited_at - t, "status": run.proc.returncode}
            left = run.leftovers()
            if left:
                res["note"] = "%d processes left running" % len(left)
            return res
        finally:
            run.kill()

    # e. a child's exit -> supervisor's exit --------------------------------
    def childexit(self, sup):
        d = os.path.join(self.work, "stamp%d" % (self.seq + 1))
        os.makedirs(d)
        stamp = os.path.join(d, "exited")
        pf = self.procfile(
            "a: exec sleep 1000\n"
            "b: sleep 0.5; date +%%s.%%N > %s; exit 3\n" % stamp)
        run = sup.start(pf, [("a", 1), ("b", 1)], 5000, keep=False)
        try:
            if not run.wait_exit(30):
                return {"value": None, "text": "stall"}
            end = time.time() - (time.monotonic() - run.exited_at)
            try:
                with open(stamp) as f:
                    child_exit = float(f.read().strip())
            except (OSError, ValueError):
                return {"value": None, "text": "no stamp"}
            res = {"value": end - child_exit, "status": run.proc.returncode}
            left = run.leftovers()
            if left:
                res["note"] = "%d processes left running" % len(left)
            return res
        finally:
            run.kill()

    # f. launch -> first line -----------------------------------------------
    def firstline(self, sup):
        pf = self.procfile("hello: echo hello\n")
        pat = re.compile(rb"(?:^|\| )hello\r?$", re.M)
        run = sup.start(pf, [("hello", 1)], 5000, watch=lambda buf: pat.search(buf) is not None,
                        keep=False)
        try:
            if not run.wait_done(run.t0 + 30):
                return {"value": None, "text": "stall", "stderr": run.stderr_tail()}
            return {"value": run.done_at - run.t0}
        finally:
            run.kill()

    # g. RSS with 100 idle listeners --------------------------------------
    def rss(self, sup):
        # No `exec` in the Procfile: what a supervisor leaves between itself and each app
        # (a shell per process, say) is what this measures.
        ports = list(range(RSS_PORT, RSS_PORT + RSS_CHILDREN))
        if any(accepts(p) for p in ports[:1] + ports[-1:]):
            return {"value": None, "text": "ports busy"}
        pf = self.procfile("idle: %s\n" % self.fx["listener"])
        run = sup.start(pf, [("idle", RSS_CHILDREN)], RSS_PORT, keep=False)
        try:
            if not wait_until(lambda: count_live(run.proc.pid, "listener") >= RSS_CHILDREN, 30):
                return {"value": None, "text": "children not started", "stderr": run.stderr_tail()}
            time.sleep(1.0)
            table = proc_table()
            helpers = [run.proc.pid] + [p for p in descendants(run.proc.pid, table)
                                        if table[p][2] != "listener" and table[p][3] not in ("Z", "X")]
            kb = sum(vm_rss_kb(p) for p in helpers)
            pss = sum(pss_kb(p) for p in helpers)
            names = {}
            for p in helpers[1:]:
                names[table[p][2]] = names.get(table[p][2], 0) + 1
            note = ", ".join("%d %s" % (n, c) for c, n in sorted(names.items())) or "no helper"
            return {"value": kb / 1024.0, "pss": pss / 1024.0, "helpers": len(helpers),
                    "note": "besides the supervisor: " + note}
        finally:
            run.kill()
            wait_ports_free(ports)


def wait_ports_free(ports, timeout=10):
    wait_until(lambda: not any(accepts(p) for p in ports[:1] + ports[-1:]), timeout)


def wait_until(pred, timeout, step=0.01):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


# ---------------------------------------------------------------------------
# Validation of the writers' output


def validate(data, names, n, labelled):
    """Counts lost, torn, mislabelled and duplicated lines."""
    if b"\x1b" in data:
        data = ANSI.sub(b"", data)
    if labelled:
        pat = re.compile(rb"^(?:\d\d:\d\d:\d\d )?([^ \n|]+) *\| ([^ \n]+) (\d+) (x*)\n", re.M)
    else:
        pat = re.compile(rb"^()([^ \n]+) (\d+) (x*)\n", re.M)
    seen = {name.encode(): bytearray(n) for name in names}
    torn = mislabelled = dup = 0
    examples = []  # a few torn lines, shortened, for the progress output
    for label, ps, seq, xs in pat.findall(data):
        bits = seen.get(ps)
        i = int(seq)
        if bits is None or i >= n or len(ps) + len(seq) + len(xs) + 3 != LINE_SIZE:
            torn += 1
            if len(examples) < 3:
                examples.append((label + b" | " if labelled else b"") + b"%s %s %s" % (ps, seq, xs))
            continue
        if bits[i]:
            dup += 1
        bits[i] = 1
        if labelled and label != ps:
            mislabelled += 1
    for line in pat.sub(b"", data).split(b"\n"):
        if not line:
            continue
        text = line.split(b"| ", 1)[1] if labelled and b"| " in line else line
        if DATAISH.search(text):
            torn += 1
            if len(examples) < 3:
                examples.append(line)
    got = sum(b.count(1) for b in seen.values())
    return {"valid": got, "lost": len(names) * n - got, "torn": torn, "mislabelled": mislabelled if labelled else None,
            "dup": dup, "examples": [shorten(e) for e in examples]}


def shorten(line, keep=60):
    text = line.decode("utf-8", "replace")
    return text if len(text) <= 2 * keep else "%s…(%d chars)…%s" % (text[:keep], len(text), text[-keep:])


# ---------------------------------------------------------------------------
# Reporting


def fmt_value(metric, v):
    if metric in ("lines", "blocks"):
        return "{:,.0f}".format(v)
    if metric == "rss":
        return "%.1f" % v
    if metric == "listeners":
        return "%.3f" % v
    return "%.1f" % (v * 1000)


ROWS = {
    "listeners": "a. 100 listeners: launch → all ports accept (s)",
    "lines": "b. 16 writers, 100 B lines, write()/line: lines/s (higher is better)",
    "blocks": "c. 16 writers, 100 KB writes: lines/s (higher is better)",
    "sigterm": "d. SIGTERM → exit, 10 idle children (ms)",
    "childexit": "e. child exits → supervisor exits (ms)",
    "firstline": "f. launch → first child line on stdout (ms)",
    "rss": "g. RSS (VmRSS sum), supervisor + helpers, 100 idle listeners without exec (MB)",
}


def summarize(metric, results):
    """results: list of per-run dicts -> (cell text, median or None)."""
    if not results:
        return "—", None
    values = [r["value"] for r in results if r.get("value") is not None]
    failed = [r for r in results if r.get("value") is None]
    med = statistics.median(values) if values else None
    if med is None:
        text = failed[0].get("text", "fail")
    else:
        text = fmt_value(metric, med)
        if failed:
            text += " (%d/%d %s)" % (len(failed), len(results), failed[0].get("text", "fail"))
    notes = sorted({r["note"] for r in results if r.get("note")})
    if notes:
        text += " [" + "; ".join(notes) + "]"
    return text, med


def summarize_check(results):
    checks = [r["check"] for r in results if r.get("check")]
    if not checks:
        return "—"
    def worst(k):
        vals = [c[k] for c in checks if c[k] is not None]
        return str(max(vals)) if vals else "n/a"
    text = "%s / %s / %s" % (worst("lost"), worst("torn"), worst("mislabelled"))
    if worst("dup") != "0":
        text += " (dup %s)" % worst("dup")
    return text


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return "%.2f×" % (a / b)


def build_fixtures(dest):
    cc = os.environ.get("CC", "cc")
    out = {}
    for name in ("writer", "listener"):
        src = os.path.join(FIXTURES_SRC, name + ".c")
        exe = os.path.join(dest, name)
        subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-o", exe, src], check=True)
        out[name] = exe
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--paas", default=".build/release/paas", help="paas executable")
    ap.add_argument("--only", default="", help="comma-separated metric and/or supervisor names")
    ap.add_argument("--quick", action="store_true", help="1 run each, fewer lines")
    ap.add_argument("--runs", type=int, help="runs per figure (default 3, 1 with --quick)")
    ap.add_argument("--lines", type=int, help="lines per writer (default 200000, 20000 with --quick)")
    ap.add_argument("--deadline", type=float, default=60.0, help="seconds before a writer run is a stall")
    ap.add_argument("--json", help="also write all raw results to this file")
    args = ap.parse_args()
    args.runs = args.runs or (1 if args.quick else 3)
    args.lines = args.lines or (20000 if args.quick else 200000)

    only = [x for x in args.only.split(",") if x]
    bad = [x for x in only if x not in METRICS and x not in SUPERVISORS]
    if bad:
        ap.error("unknown name(s) for --only: %s (metrics: %s; supervisors: %s)"
                 % (", ".join(bad), ", ".join(METRICS), ", ".join(SUPERVISORS)))
    metrics = [m for m in METRICS if m in only] or METRICS
    wanted_sups = [s for s in SUPERVISORS if s in only] or SUPERVISORS

    sups, notes = find_supervisors(args.paas)
    sups = [s for s in sups if s.name in wanted_sups]
    for note in notes:
        log("note:", note)

    work = tempfile.mkdtemp(prefix="paas-bench-")
    results = {m: {s.name: [] for s in sups} for m in metrics}
    try:
        fixtures = build_fixtures(work)
        bench = Bench(args, work, fixtures)
        for metric in metrics:
            for sup in sups:
                for i in range(args.runs):
                    r = getattr(bench, metric)(sup)
                    results[metric][sup.name].append(r)
                    shown = fmt_value(metric, r["value"]) if r.get("value") is not None else r.get("text", "fail")
                    extra = ""
                    if "check" in r:
                        c = r["check"]
                        extra = " lost=%s torn=%s mislabelled=%s dup=%s" % (
                            c["lost"], c["torn"], c["mislabelled"], c["dup"])
                    if "status" in r:
                        extra += " status=%s" % r["status"]
                    if "helpers" in r:
                        extra += " pss=%.1f processes=%d" % (r["pss"], r["helpers"])
                    if r.get("note"):
                        extra += " (%s)" % r["note"]
                    for e in (r.get("check") or {}).get("examples", []):
                        extra += "\n  torn: %r" % e
                    log("%-9s %-8s run %d: %s%s" % (metric, sup.name, i + 1, shown, extra))
                    if r.get("stderr"):
                        log("  stderr: " + r["stderr"].strip().replace("\n", "\n  "))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": args.runs, "lines": args.lines, "results": results}, f, indent=1,
                      default=str)

    names = [s.name for s in sups]
    ratio_cols = [o for o in ("foreman", "honcho", "none") if "paas" in names and o in names]
    header = ["metric"] + names + ["paas/%s" % o for o in ratio_cols]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for metric in metrics:
        cells, meds = [], {}
        for name in names:
            text, med = summarize(metric, results[metric][name])
            cells.append(text)
            meds[name] = med
        row = [ROWS[metric]] + cells + [ratio(meds.get("paas"), meds.get(o)) for o in ratio_cols]
        out.append("| " + " | ".join(row) + " |")
        if metric == "rss":
            pss = {}
            row = ["   PSS, the same processes (MB)"]
            for name in names:
                text, pss[name] = summarize("rss", [{"value": r.get("pss")} for r in results[metric][name]])
                row.append(text)
            row += [ratio(pss.get("paas"), pss.get(o)) for o in ratio_cols]
            out.append("| " + " | ".join(row) + " |")
            row = ["   processes counted"] + [
                str(max([r.get("helpers", 0) for r in results[metric][n]] or [0])) for n in names]
            out.append("| " + " | ".join(row + [""] * len(ratio_cols)) + " |")
        if metric in ("lines", "blocks"):
            row = ["   lost / torn / mislabelled"] + [summarize_check(results[metric][n]) for n in names]
            row += [""] * len(ratio_cols)
            out.append("| " + " | ".join(row) + " |")
    print()
    print("%d run(s) per figure, median; %d lines of %d B per writer; %s"
          % (args.runs, args.lines, LINE_SIZE, os.uname().release))
    for note in notes:
        print("note: " + note)
    print()
    print("\n".join(out))


if __name__ == "__main__":
    main()
