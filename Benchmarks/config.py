#!/usr/bin/env python3
"""How long `paas check` takes, and how much memory it peaks at, on large generated
configuration files (issue 8, fault 24): both parsers must be linear in their input.

Cases (each in a fresh temporary app directory):
  env-keys      a .env of N distinct keys (default 100,000), each line interpolating the
                key before it, so lookups of earlier keys are exercised too
  env-files     the same keys split over two env files (-e a.env,b.env): the second file
                looks names up in the first
  json-array    an app.json with one ignored top-level key holding an array of N numbers
  json-keyed    an app.json whose ignored key is long (K bytes) and holds an array of N/10
                elements: the case where storing a JSON path per element grew as N*K
  json-members  an app.json whose ignored key holds an object of N members

Prints one line per case: seconds (wall, best of --runs) and peak RSS (KiB, ru_maxrss of
the paas process), then the exit status (0: the files were read and found valid). Usage:

  python3 Benchmarks/config.py [--paas .build/release/paas] [--keys 100000] [--runs 3]
"""
import argparse, os, resource, shutil, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def env_text(first, count):
    lines = ["K%07d=value-%d" % (first, first)]
    for i in range(first + 1, first + count):
        lines.append("K%07d=${K%07d:-x}-%d" % (i, i - 1, i) if i % 2 else "K%07d=v%d" % (i, i))
    return "\n".join(lines) + "\n"


def make_cases(work, keys):
    cases = []

    d = os.path.join(work, "env-keys")
    os.mkdir(d)
    write(os.path.join(d, "Procfile"), "web: true\n")
    write(os.path.join(d, ".env"), env_text(0, keys))
    cases.append(("env-keys (%d keys)" % keys, d, ["check"]))

    d = os.path.join(work, "env-files")
    os.mkdir(d)
    write(os.path.join(d, "Procfile"), "web: true\n")
    write(os.path.join(d, "a.env"), env_text(0, keys // 2))
    write(os.path.join(d, "b.env"), env_text(keys // 2, keys - keys // 2).replace(
        "K%07d=v" % (keys // 2), "K%07d=${K%07d}" % (keys // 2, keys // 2 - 1), 1))
    cases.append(("env-files (2 x %d keys)" % (keys // 2), d, ["check", "-e", "a.env,b.env"]))

    d = os.path.join(work, "json-array")
    os.mkdir(d)
    write(os.path.join(d, "Procfile"), "web: true\n")
    write(os.path.join(d, "app.json"), '{"name": "x", "env": [%s]}\n' % ",\n".join(["1"] * keys))
    cases.append(("json-array (%d elements)" % keys, d, ["check"]))

    d = os.path.join(work, "json-keyed")
    os.mkdir(d)
    write(os.path.join(d, "Procfile"), "web: true\n")
    key = "k" * 60000
    n = keys // 10
    write(os.path.join(d, "app.json"), '{"%s": [%s]}\n' % (key, ",".join(["0"] * n)))
    cases.append(("json-keyed (60000-byte key, %d elements)" % n, d, ["check"]))

    d = os.path.join(work, "json-members")
    os.mkdir(d)
    write(os.path.join(d, "Procfile"), "web: true\n")
    members = ",\n".join('"member-%d": {"a": [1, 2]}' % i for i in range(keys))
    write(os.path.join(d, "app.json"), '{"scripts": {%s}}\n' % members)
    cases.append(("json-members (%d members)" % keys, d, ["check"]))
    return cases


# Runs in a fresh, small Python: forks, execs paas and reports the child's wall time, peak
# RSS and exit status. Measuring from here instead would be wrong: Linux keeps the RSS
# high-water mark across execve, so a child forked from this process (which holds the
# generated files' text) would report this process's size as its own peak.
# A run past its deadline is killed here, so no paas outlives the benchmark.
HELPER = r"""
import os, sys, time
deadline = time.monotonic() + float(sys.argv[1])
start = time.monotonic()
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.execv(sys.argv[2], sys.argv[2:])
while True:
    done, status, usage = os.wait4(pid, os.WNOHANG)
    if done == pid:
        break
    if time.monotonic() > deadline:
        os.kill(pid, 9)
        os.wait4(pid, 0)
        print("timeout")
        sys.exit(0)
    time.sleep(0.002)  # polling interval of a deadline-bounded wait
print(time.monotonic() - start, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def run_once(paas, args, cwd, timeout):
    """Runs paas ARGS in CWD; returns (seconds, peak RSS KiB, exit status)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAAS_") and k != "PORT"}
    out = subprocess.run([sys.executable, "-c", HELPER, str(timeout), paas] + args, cwd=cwd, env=env,
                         capture_output=True, text=True, check=True).stdout
    if out.strip() == "timeout":
        return (None, None, "timeout")
    seconds, rss, status = out.split()
    return (float(seconds), int(rss), int(status))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paas", default=os.path.join(ROOT, ".build", "release", "paas"))
    ap.add_argument("--keys", type=int, default=100000, help="keys, elements or members per case")
    ap.add_argument("--runs", type=int, default=3, help="runs per case (the best time and its RSS are shown)")
    ap.add_argument("--timeout", type=float, default=120, help="seconds before a run is killed")
    args = ap.parse_args()
    paas = os.path.abspath(args.paas)
    if not os.access(paas, os.X_OK):
        sys.exit("no executable at %s (build it with `swift build -c release`)" % paas)

    work = tempfile.mkdtemp(prefix="paas-config-bench-")
    try:
        print("paas: %s" % paas)
        print("%-45s %10s %14s %6s" % ("case", "seconds", "peak RSS KiB", "exit"))
        for name, cwd, cmd in make_cases(work, args.keys):
            best = None
            for _ in range(args.runs):
                seconds, rss, status = run_once(paas, cmd, cwd, args.timeout)
                if seconds is None:
                    best = (None, None, status)
                    break
                if best is None or seconds < best[0]:
                    best = (seconds, rss, status)
            seconds, rss, status = best
            print("%-45s %10s %14s %6s" % (name, "%.3f" % seconds if seconds is not None else "-",
                                             rss if rss is not None else "-", status), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
