#!/usr/bin/env python3
"""Benchmarks of a running `paas up`'s control socket and idle cost (issue: control).

usage: python3 Benchmarks/control.py [--paas PATH] [--calls N]

Prints:
  - `paas ps` round trip with 100 instances running: median and p99 over N calls, both the
    whole command (what a user sees) and the socket exchange alone (connect, request, reply);
  - `paas scale web=1` -> `web=100`: time until all 100 ports accept, beside a cold
    `paas up -m web=100` until all 100 accept;
  - CPU used by paas (and its guardian) over 5 s with 100 idle children, a silent client
    connected and a `logs -f` follower attached: expected 0 (no polling loops).
"""
import argparse, json, os, signal, socket, statistics, subprocess, sys, tempfile, time

from bench_common import ROOT, accepts, build_fixture, children, cpu_ticks, guardian_and_self_ticks


def wait_until(cond, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.002)
    return cond()


def start_up(paas, app, args):
    return subprocess.Popen([paas, "up", "--no-color"] + args, cwd=app, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def stop(p):
    try:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)
    except Exception:
        os.killpg(p.pid, signal.SIGKILL)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--paas", default=os.path.join(ROOT, ".build", "release", "paas"))
    ap.add_argument("--calls", type=int, default=1000)
    args = ap.parse_args()
    paas = os.path.abspath(args.paas)
    work = tempfile.mkdtemp(prefix="paas-control-bench-")
    listener = build_fixture("listener", work)
    app = os.path.join(work, "app")
    os.mkdir(app)
    with open(os.path.join(app, "Procfile"), "w") as f:
        f.write("web: exec %s\nidle: exec sleep 1000\n" % listener)
    base = 21000
    rows = []

    # ps round trip with 100 instances.
    p = start_up(paas, app, ["-p", str(base), "-m", "web=0,idle=100"])
    sock = os.path.join(app, ".paas", "control.sock")
    wait_until(lambda: os.path.exists(sock) and len(children(p.pid)) >= 101)
    cmd, raw = [], []
    for _ in range(args.calls):
        t = time.perf_counter()
        out = subprocess.run([paas, "ps", "--json"], cwd=app, capture_output=True)
        cmd.append((time.perf_counter() - t) * 1000)
        assert out.returncode == 0 and len(json.loads(out.stdout)) == 100, out.stderr
    for _ in range(args.calls):
        t = time.perf_counter()
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        s.sendall(b'{"v":1,"cmd":"ps"}\n')
        data = b""
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            data += b
        s.close()
        raw.append((time.perf_counter() - t) * 1000)
        assert b'"ok":true' in data
    rows.append(("`paas ps --json`, 100 instances: median / p99 (ms)", "%.2f / %.2f" % (statistics.median(cmd), pct(cmd, 99))))
    rows.append(("socket round trip of a ps request: median / p99 (ms)", "%.2f / %.2f" % (statistics.median(raw), pct(raw, 99))))

    # Idle CPU with a silent client and a follower attached.
    silent = socket.socket(socket.AF_UNIX)
    silent.connect(sock)
    follower = subprocess.Popen([paas, "logs", "-f", "-n", "0"], cwd=app, stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    before = guardian_and_self_ticks(p.pid)
    time.sleep(5)
    after = guardian_and_self_ticks(p.pid)
    rows.append(("CPU of paas + guardian over 5 s idle, 100 children, 1 silent client, 1 follower (ticks of 10 ms)", str(after - before)))
    follower.terminate()
    silent.close()
    stop(p)

    # scale 1 -> 100 vs cold up of 100.
    p = start_up(paas, app, ["-p", str(base), "-m", "web=1,idle=0"])
    wait_until(lambda: accepts(base))
    t = time.perf_counter()
    subprocess.run([paas, "scale", "web=100"], cwd=app, check=True, capture_output=True)
    wait_until(lambda: all(accepts(base + i) for i in range(100)))
    scale = time.perf_counter() - t
    stop(p)
    wait_until(lambda: not accepts(base))
    t = time.perf_counter()
    p = start_up(paas, app, ["-p", str(base), "-m", "web=100,idle=0"])
    wait_until(lambda: all(accepts(base + i) for i in range(100)))
    cold = time.perf_counter() - t
    stop(p)
    rows.append(("`paas scale web=1` -> `web=100`: all 100 ports accept (s)", "%.3f" % scale))
    rows.append(("cold `paas up -m web=100`: all 100 ports accept (s)", "%.3f" % cold))

    print("| metric | paas |\n|---|---|")
    for name, value in rows:
        print("| %s | %s |" % (name, value))


if __name__ == "__main__":
    main()
