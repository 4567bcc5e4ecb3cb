#!/usr/bin/env python3
"""Benchmarks of restarts and health checks (issue: resilience).

usage: python3 Benchmarks/resilience.py [--paas PATH] [--restarts N] [--seconds S]

Prints:
  - crash to respawn: from a child's exit (it writes a timestamp just before exiting) to the
    next start of the same instance (it writes one first thing), minus the configured
    backoff delay (0.1 s, jitter 0): paas's own overhead, median and max over N restarts;
  - CPU of paas (and its guardian) with 100 instances each health-checked every second
    (TCP liveness check of $PORT), over S seconds, as a share of one core.
"""
import argparse, os, signal, statistics, subprocess, sys, tempfile, time

from bench_common import ROOT, build_fixture, children, cpu_ticks, guardian_and_self_ticks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--paas", default=os.path.join(ROOT, ".build", "release", "paas"))
    ap.add_argument("--restarts", type=int, default=30)
    ap.add_argument("--seconds", type=float, default=10)
    args = ap.parse_args()
    paas = os.path.abspath(args.paas)
    work = tempfile.mkdtemp(prefix="paas-resilience-bench-")
    rows = []

    # Crash to respawn.
    app = os.path.join(work, "crash")
    os.mkdir(app)
    stamp = "date +%s.%N"
    with open(os.path.join(app, "Procfile"), "w") as f:
        f.write("crasher: %s >> starts; %s >> exits; exit 1\n" % (stamp, stamp))
    with open(os.path.join(app, "app.json"), "w") as f:
        f.write('{"paas": {"processes": {"crasher": {"restart": "always", "min_uptime": 0, '
                '"backoff": {"initial": 0.1, "max": 0.1, "jitter": 0}, "breaker": {"failures": 100000}}}}}')
    p = subprocess.Popen([paas, "up", "--no-color"], cwd=app, stdout=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if len(open(os.path.join(app, "starts")).read().split()) > args.restarts:
                break
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=20)
    starts = [float(x) for x in open(os.path.join(app, "starts")).read().split()]
    exits = [float(x) for x in open(os.path.join(app, "exits")).read().split()]
    overhead = [(starts[i + 1] - exits[i] - 0.1) * 1000 for i in range(min(len(exits), len(starts) - 1))]
    rows.append(("crash to respawn beyond the 100 ms delay, median / max over %d restarts (ms)" % len(overhead),
                 "%.1f / %.1f" % (statistics.median(overhead), max(overhead))))
    rows.append(("   (includes starting /bin/sh and date(1) for the start stamp: about 1-2 ms)", ""))

    # CPU with 100 health-checked instances.
    app = os.path.join(work, "checked")
    os.mkdir(app)
    listener = build_fixture("listener", work)
    with open(os.path.join(app, "Procfile"), "w") as f:
        f.write("web: exec %s\n" % listener)
    with open(os.path.join(app, "app.json"), "w") as f:
        f.write('{"healthchecks": {"web": [{"type": "startup", "wait": 0.1, "attempts": 100}, '
                '{"type": "liveness", "wait": 1, "timeout": 1, "attempts": 3}]}}')
    p = subprocess.Popen([paas, "up", "--no-color", "-m", "web=100", "-p", "23000"], cwd=app,
                         stdout=subprocess.PIPE, start_new_session=True)
    ready = 0
    t0 = time.time()
    while ready < 100 and time.time() - t0 < 60:
        line = p.stdout.readline().decode()
        if " is ready" in line:
            ready += 1
    drain = subprocess.Popen(["cat"], stdin=p.stdout, stdout=subprocess.DEVNULL)
    before = guardian_and_self_ticks(p.pid)
    time.sleep(args.seconds)
    after = guardian_and_self_ticks(p.pid)
    share = (after - before) / 100.0 / args.seconds * 100
    rows.append(("CPU with 100 instances, a TCP liveness check each every second (%% of one core, %d ready)" % ready, "%.2f%%" % share))
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=20)
    drain.wait()

    print("| metric | paas |\n|---|---|")
    for name, value in rows:
        print("| %s | %s |" % (name, value))


if __name__ == "__main__":
    main()
