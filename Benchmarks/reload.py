#!/usr/bin/env python3
"""Benchmarks of `paas reload` (issue 9).

usage: python3 Benchmarks/reload.py [--paas PATH] [--instances N]

Prints, for a formation of N listeners (`api`, each ready when its port accepts) beside N
idle workers and one `other` process:
  - reload of `api` (its command changed): seconds until every instance runs the new
    generation, and the fewest ports accepting at any sample during it (a type bound to
    $PORT is replaced stop-first, one instance at a time, until the router of issue 10);
  - reload of `worker` (start-first: each new instance ready before its old one stops):
    seconds until all are replaced, and the fewest worker processes alive at any sample;
  - whether the pids of the types that did not change stayed the same throughout.
"""
import argparse, json, os, signal, subprocess, sys, tempfile, time

from bench_common import ROOT, accepts, build_fixture

def ps(paas, app):
    out = subprocess.run([paas, "ps", "--json", "-d", app], capture_output=True, text=True).stdout
    try:
        return json.loads(out)
    except ValueError:
        return []

def running(rows, type_):
    return {r["name"]: r for r in rows if r["type"] == type_ and r.get("pid")}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--paas", default=os.path.join(ROOT, ".build", "release", "paas"))
    ap.add_argument("--instances", type=int, default=100)
    args = ap.parse_args()
    args.paas = os.path.abspath(args.paas)
    n = args.instances
    work = tempfile.mkdtemp(prefix="paas-reload-")
    listener = build_fixture("listener", work)
    app = os.path.join(work, "app")
    os.mkdir(app)
    base = 21000
    def write_procfile(api_tag, worker_tag):
        with open(os.path.join(app, "Procfile"), "w") as f:
            f.write("api: exec %s # %s\nworker: exec sleep 1000 # %s\nother: exec sleep 1001\n" % (listener, api_tag, worker_tag))
    write_procfile("v1", "v1")
    with open(os.path.join(app, "app.json"), "w") as f:
        json.dump({"healthchecks": {"api": [{"type": "startup", "wait": 0.05, "timeout": 1, "attempts": 200}]},
                   "paas": {"processes": {"worker": {"min_uptime": 0.05}, "other": {"min_uptime": 0.05}}}}, f)
    up = subprocess.Popen([args.paas, "up", "--no-color", "-p", str(base), "-m", "api=%d,worker=%d,other=1" % (n, n)],
                          cwd=app, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    ports = [base + i for i in range(n)]
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not all(accepts(p) for p in ports):
            time.sleep(0.01)
        time.sleep(0.3)
        rows = ps(args.paas, app)
        other_pid = running(rows, "other")["other.1"]["pid"]
        worker_pids = {k: v["pid"] for k, v in running(rows, "worker").items()}

        # 1. api: stop-first, one instance at a time.
        write_procfile("v2", "v1")
        t0 = time.time()
        subprocess.run([args.paas, "reload", "-d", app], check=True, stdout=subprocess.DEVNULL)
        fewest = n
        done = False
        while time.time() - t0 < 300:
            fewest = min(fewest, sum(1 for p in ports if accepts(p)))
            rows = ps(args.paas, app)
            api = running(rows, "api")
            if len(api) == n and all(r.get("generation") == 2 and r.get("ready") for r in api.values()) and all(accepts(p) for p in ports):
                done = True
                break
        api_seconds = time.time() - t0
        rows = ps(args.paas, app)
        same_after_api = running(rows, "other")["other.1"]["pid"] == other_pid and {k: v["pid"] for k, v in running(rows, "worker").items()} == worker_pids

        # 2. worker: start-first.
        write_procfile("v2", "v2")
        t0 = time.time()
        subprocess.run([args.paas, "reload", "-d", app], check=True, stdout=subprocess.DEVNULL)
        fewest_workers = n
        wdone = False
        while time.time() - t0 < 300:
            rows = ps(args.paas, app)
            w = running(rows, "worker")
            alive = sum(1 for r in w.values() if r["state"] == "running" or r["state"].startswith("starting"))
            fewest_workers = min(fewest_workers, min(len({k for k in w}), alive))
            if len(w) == n and all(r.get("generation") == 3 and r.get("ready") for r in w.values()):
                wdone = True
                break
        worker_seconds = time.time() - t0
        rows = ps(args.paas, app)
        same_after_worker = running(rows, "other")["other.1"]["pid"] == other_pid and all(accepts(p) for p in ports)
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)

    print("reload of %d instances (paas %s)" % (n, args.paas))
    print("| | seconds until all replaced | fewest during the reload | other types' pids unchanged |")
    print("|---|---|---|---|")
    print("| api (bound to $PORT, stop-first) | %.2f%s | %d of %d ports accepting | %s |" % (api_seconds, "" if done else " (not finished)", fewest, n, "yes" if same_after_api else "NO"))
    print("| worker (start-first) | %.2f%s | %d of %d instances | %s |" % (worker_seconds, "" if wdone else " (not finished)", fewest_workers, n, "yes" if same_after_worker else "NO"))
    return 0 if done and wdone and same_after_api and same_after_worker else 1

if __name__ == "__main__":
    sys.exit(main())
