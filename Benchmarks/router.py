#!/usr/bin/env python3
"""Benchmarks of the router and rollouts (issue 10), beside nginx and haproxy.

usage: python3 Benchmarks/router.py [--paas PATH] [--seconds N] [--connections C]
needs: wrk, nginx, haproxy (apt-get install wrk nginx haproxy)

One run prints, side by side, wrk's requests/s and p50/p99 latency over 4 instances of a small
HTTP server (Tests/Fixtures/httpd.c, epoll, keep-alive):
  - direct to one instance (the floor: no proxy at all);
  - paas up with web=4 behind its router, tcp mode and http mode (one router thread);
  - nginx as a reverse proxy (least_conn, upstream keep-alive, 1 worker process);
  - haproxy in tcp mode and in http mode (leastconn, 1 thread);
and the router's CPU per request (paas's own user+system time over the run / requests).
Then, with paas in http mode under wrk load:
  - failed requests (socket errors and non-2xx) during a blue-green rollout;
  - the time from a canary's first traffic (a version answering 500) to the rollback being
    complete (every canary instance exited), from paas's own event times.
Every proxy runs on loopback; one wrk (2 threads) drives them all in turn.
"""
import argparse, json, os, re, shutil, signal, subprocess, sys, tempfile, time

from bench_common import ROOT, accepts, build_fixture, cpu_ticks

TICK = os.sysconf("SC_CLK_TCK")


def wait(cond, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


def wrk(port, seconds, connections, path="/"):
    out = subprocess.run(["wrk", "-t2", "-c%d" % connections, "-d%ds" % seconds, "--latency", "http://127.0.0.1:%d%s" % (port, path)],
                         capture_output=True, text=True).stdout
    def unit(v):
        m = re.match(r"([\d.]+)(us|ms|s|m)$", v)
        if not m:
            raise SystemExit("cannot read wrk's latency %r in:\n%s" % (v, out))
        return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[m.group(2)]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = unit(re.search(r"50%\s+(\S+)", out).group(1))
    p99 = unit(re.search(r"99%\s+(\S+)", out).group(1))
    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = int(re.search(r"Non-2xx or 3xx responses: (\d+)", out).group(1)) if "Non-2xx" in out else 0
    return {"rps": rps, "requests": total, "p50_ms": p50, "p99_ms": p99, "errors": errors, "non2xx": non2xx}


def start(cmd, **kw):
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, **kw)


def stop(p):
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Paas:
    def __init__(self, paas, httpd, work, mode, base, extra_json=None, log=None):
        self.paas, self.base = paas, base
        self.app = os.path.join(work, "app-%s-%d" % (mode, base))
        os.makedirs(self.app, exist_ok=True)
        with open(os.path.join(self.app, "Procfile"), "w") as f:
            f.write("web: exec %s\n" % httpd)
        settings = {"router": mode}
        settings.update(extra_json or {})
        with open(os.path.join(self.app, "app.json"), "w") as f:
            json.dump({"paas": {"processes": {"web": settings}}}, f)
        env = dict(os.environ)
        env.pop("PAAS_NO_ROUTER", None)
        self.log = open(log, "w") if log else subprocess.DEVNULL
        self.proc = subprocess.Popen([paas, "up", "-m", "web=4", "-p", str(base), "--log-format", "json", "-d", self.app],
                                     stdout=self.log, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        if not wait(lambda: self.ready() == 4):
            raise SystemExit("paas did not get 4 ready instances")

    def ps(self):
        out = subprocess.run([self.paas, "ps", "--json", "-d", self.app], capture_output=True, text=True).stdout
        try:
            return json.loads(out)
        except ValueError:
            return []

    def ready(self):
        return sum(1 for r in self.ps() if r.get("ready"))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)


def nginx_conf(work, port, backends):
    conf = os.path.join(work, "nginx.conf")
    ups = "".join("server 127.0.0.1:%d;" % p for p in backends)
    with open(conf, "w") as f:
        f.write("""worker_processes 1; daemon off; pid %s/nginx.pid; error_log %s/nginx.err;
events { worker_connections 4096; }
http { access_log off; upstream app { least_conn; %s keepalive 64; }
  server { listen 127.0.0.1:%d; location / { proxy_pass http://app; proxy_http_version 1.1;
    proxy_set_header Connection ""; proxy_set_header X-Forwarded-For $remote_addr; } } }
""" % (work, work, ups, port))
    return conf


def haproxy_conf(work, port, backends, mode):
    conf = os.path.join(work, "haproxy-%s.cfg" % mode)
    servers = "".join("  server s%d 127.0.0.1:%d\n" % (i, p) for i, p in enumerate(backends))
    with open(conf, "w") as f:
        f.write("""global
  nbthread 1
  maxconn 4096
defaults
  mode %s
  timeout connect 5s
  timeout client 30s
  timeout server 30s
%s
frontend f
  bind 127.0.0.1:%d
  default_backend b
backend b
  balance leastconn
%s""" % (mode, "  option http-keep-alive\n  option forwardfor" if mode == "http" else "", port, servers))
    return conf


def events(path):
    out = []
    with open(path) as f:
        for line in f:
            try:
                o = json.loads(line)
            except ValueError:
                continue
            if o.get("process") == "system":
                t = o["time"]
                secs = int(t[11:13]) * 3600 + int(t[14:16]) * 60 + float(t[17:23])
                out.append((secs, o["text"]))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--paas", default=os.path.join(ROOT, ".build", "release", "paas"))
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    args = ap.parse_args()
    for tool in ("wrk", "nginx", "haproxy"):
        if not shutil.which(tool):
            raise SystemExit("needs %s (apt-get install wrk nginx haproxy)" % tool)
    work = tempfile.mkdtemp(prefix="paas-router-bench-")
    httpd = build_fixture("httpd", work)
    base = 21000
    backends = [base + 901 + i for i in range(4)]
    rows = []
    procs = [start([httpd], env=dict(os.environ, PORT=str(p), PS="web.%d" % (i + 1))) for i, p in enumerate(backends)]
    try:
        wait(lambda: all(accepts(p) for p in backends))
        rows.append(("direct, one instance", wrk(backends[0], args.seconds, args.connections), None))
        for mode in ("tcp", "http"):
            p = Paas(args.paas, httpd, work, mode, base + (0 if mode == "tcp" else 200))
            before = cpu_ticks(p.proc.pid)
            r = wrk(p.base, args.seconds, args.connections)
            cpu = (cpu_ticks(p.proc.pid) - before) / TICK
            p.stop()
            rows.append(("paas %s (1 router thread)" % mode, r, cpu))
        ng = start(["nginx", "-c", nginx_conf(work, base + 400, backends)])
        wait(lambda: accepts(base + 400))
        before = cpu_ticks(ng.pid) + sum(cpu_ticks(int(c)) for c in open("/proc/%d/task/%d/children" % (ng.pid, ng.pid)).read().split())
        r = wrk(base + 400, args.seconds, args.connections)
        cpu = cpu_ticks(ng.pid) + sum(cpu_ticks(int(c)) for c in open("/proc/%d/task/%d/children" % (ng.pid, ng.pid)).read().split())
        rows.append(("nginx (1 worker, least_conn)", r, (cpu - before) / TICK))
        stop(ng)
        for mode, port in (("tcp", base + 500), ("http", base + 600)):
            hp = start(["haproxy", "-f", haproxy_conf(work, port, backends, mode)])
            wait(lambda: accepts(port))
            before = cpu_ticks(hp.pid)
            r = wrk(port, args.seconds, args.connections)
            rows.append(("haproxy %s (1 thread, leastconn)" % mode, r, (cpu_ticks(hp.pid) - before) / TICK))
            stop(hp)
    finally:
        for p in procs:
            stop(p)

    print("wrk -t2 -c%d -d%ds over 4 instances of httpd (2 cores, everything on one machine)" % (args.connections, args.seconds))
    print("%-36s %10s %9s %9s %7s %14s" % ("", "req/s", "p50 ms", "p99 ms", "errors", "CPU µs/req"))
    for name, r, cpu in rows:
        per = "%.1f" % (cpu / r["requests"] * 1e6) if cpu is not None and r["requests"] else "-"
        print("%-36s %10.0f %9.2f %9.2f %7d %14s" % (name, r["rps"], r["p50_ms"], r["p99_ms"], r["errors"] + r["non2xx"], per))

    # Blue-green under load (http mode): failed requests.
    log = os.path.join(work, "bluegreen.log")
    p = Paas(args.paas, httpd, work, "http", base + 700, {"rollout": {"drain_timeout": 5}}, log=log)
    load = subprocess.Popen(["wrk", "-t2", "-c%d" % args.connections, "-d8s", "http://127.0.0.1:%d/" % p.base], stdout=subprocess.PIPE, text=True)
    time.sleep(2)
    t0 = time.monotonic()
    rollout = subprocess.run([args.paas, "rollout", "web", "-d", p.app], capture_output=True, text=True)
    took = time.monotonic() - t0
    out = load.communicate()[0]
    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = int(re.search(r"Non-2xx or 3xx responses: (\d+)", out).group(1)) if "Non-2xx" in out else 0
    total = int(re.search(r"(\d+) requests in", out).group(1))
    print("blue-green under wrk load (http mode, web=4): rollout exit %d in %.2f s; %d requests, %d socket errors, %d non-2xx"
          % (rollout.returncode, took, total, errors, non2xx))
    p.stop()

    # Canary answering 500: from its first traffic to every canary instance gone.
    log = os.path.join(work, "canary.log")
    p = Paas(args.paas, httpd, work, "http", base + 800, {"rollout": {"strategy": "canary", "steps": [10, 100], "step_duration": 30, "drain_timeout": 1}}, log=log)
    with open(os.path.join(p.app, ".env"), "w") as f:
        f.write("FAIL=1\n")
    load = subprocess.Popen(["wrk", "-t2", "-c16", "-d6s", "http://127.0.0.1:%d/" % p.base], stdout=subprocess.PIPE, text=True)
    time.sleep(1)
    rollout = subprocess.run([args.paas, "rollout", "web", "-d", p.app], capture_output=True, text=True)
    load.communicate()
    p.stop()
    ev = events(log)
    step = next((t for t, text in ev if "step 1 of" in text), None)
    back = next((t for t, text in ev if "rolling back" in text), None)
    end = next((t for t, text in ev if "stopping all processes" in text), None)
    exits = [t for t, text in ev if back is not None and t >= back and (end is None or t < end) and re.match(r"web\.\d (exited|killed)", text)]
    done = max(exits) if exits else None
    why = next((text for t, text in ev if "rolling back" in text), "")
    if step is not None and back is not None and done is not None:
        print("canary answering 500: rollout exit %d; decision %.0f ms after its first traffic, rollback complete (every canary instance exited) after %.0f ms"
              % (rollout.returncode, (back - step) * 1000, (done - step) * 1000))
        print("  " + why)
    else:
        print("canary: could not find the events (exit %d): %s" % (rollout.returncode, rollout.stdout[-400:]))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
