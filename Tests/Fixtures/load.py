"""A load client that counts every failure: connect refused, reset, timeout, wrong answer.

usage: load.py PORT STOPFILE OUTFILE [--keepalive] [--threads N]
Runs until STOPFILE exists, then writes JSON to OUTFILE:
{"ok": n, "failures": {"refused": n, "reset": n, "timeout": n, "status": n, "wrong": n},
 "answers": {"web.1 v1": n, ...}, "last": {"web.1 v2": n} (answers of the last 0.5 s)}
"""
import http.client, json, os, socket, sys, threading, time

port = int(sys.argv[1])
stopfile, outfile = sys.argv[2], sys.argv[3]
keepalive = "--keepalive" in sys.argv
threads = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 4
lock = threading.Lock()
ok = 0
failures = {"refused": 0, "reset": 0, "timeout": 0, "status": 0, "wrong": 0}
answers, recent = {}, []
examples = []


def record(kind, detail=""):
    with lock:
        failures[kind] += 1
        if len(examples) < 20:
            examples.append(f"{kind}: {detail}")


def worker():
    global ok
    conn = None
    while not os.path.exists(stopfile):
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/", headers={} if keepalive else {"Connection": "close"})
            r = conn.getresponse()
            body = r.read().decode()
            if r.status != 200:
                record("status", f"{r.status} {body[:80]}")
            elif not body.strip():
                record("wrong", "empty body")
            else:
                who = " ".join(body.split()[:2])
                with lock:
                    ok += 1
                    answers[who] = answers.get(who, 0) + 1
                    recent.append((time.monotonic(), who))
            if not keepalive or r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except ConnectionRefusedError as e:
            record("refused", str(e)); conn = None
        except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected, http.client.BadStatusLine) as e:
            record("reset", repr(e)); conn = None
        except (socket.timeout, TimeoutError) as e:
            record("timeout", str(e)); conn = None
        except OSError as e:
            record("reset", repr(e)); conn = None


ts = [threading.Thread(target=worker) for _ in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
end = time.monotonic()
last = {}
for at, who in recent:
    if at >= end - 0.5:
        last[who] = last.get(who, 0) + 1
with open(outfile + ".tmp", "w") as f:
    json.dump({"ok": ok, "failures": failures, "answers": answers, "last": last, "examples": examples}, f)
os.rename(outfile + ".tmp", outfile)
