"""A small HTTP/1.1 app for the router's tests: answers "<PS> <VERSION>" on $PORT.

Knobs (environment): VERSION (in every answer), FAIL_EVERY=N (every Nth request gets 500),
CRASH_AFTER=N (exits with status 3 at its Nth request),
NEVER_LISTEN=1 (never binds: never ready), SLOW_MS (delay per request). SIGTERM: stop
accepting, finish what is open, exit 0.
"""
import os, signal, socketserver, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

name = os.environ.get("PS", "?")
version = os.environ.get("VERSION", "v1")
fail_every = int(os.environ.get("FAIL_EVERY", "0"))
crash_after = int(os.environ.get("CRASH_AFTER", "0"))
slow = int(os.environ.get("SLOW_MS", "0")) / 1000
count = 0
active = 0  # requests being answered (a stop waits for them)
lock = threading.Lock()

if os.environ.get("NEVER_LISTEN") == "1":
    print(f"{name} {version} never listens", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(3600)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        global active
        with lock:
            active += 1
        try:
            self.answer()
        finally:
            with lock:
                active -= 1

    def answer(self):
        global count, active  # noqa: PLW0603
        with lock:
            count += 1
            n = count
        if slow:
            time.sleep(slow)
        if self.path.startswith("/ws") and self.headers.get("Upgrade", "").lower() == "websocket":
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.flush()
            with lock:
                active -= 1  # a long-lived upgrade does not hold a stop back
            try:
                self.echo()
            finally:
                with lock:
                    active += 1
            return
        self.plain(n)

    def echo(self):
        # Raw echo, prefixed with who answers, until the client closes.
        while True:
            data = self.rfile.readline()
            if not data:
                return
            self.wfile.write(f"{name} {version} ".encode() + data)
            self.wfile.flush()

    def plain(self, n):
        if self.path == "/health":
            # Unready while a file `unready-<PS>` exists in the app root.
            status = 503 if os.path.exists(f"unready-{name}") else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if crash_after and n >= crash_after:
            print(f"{name} {version} crashes", flush=True)
            os._exit(3)
        status = 500 if fail_every and n % fail_every == 0 else 200
        if os.path.exists(f"fail-{name}"):
            status = 500  # fails while a file `fail-<PS>` exists in the app root
        body = f"{name} {version} {self.headers.get('X-Forwarded-For', '-')} {self.headers.get('X-Request-Id', '-')}\n".encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


server = Server(("127.0.0.1", int(os.environ["PORT"])), Handler)


def stop(*_):
    threading.Thread(target=server.shutdown, daemon=True).start()


signal.signal(signal.SIGTERM, stop)
print(f"{name} {version} listening on {os.environ['PORT']}", flush=True)
server.serve_forever(poll_interval=0.05)
# Graceful: the requests being answered finish (at most 3 s) before the process exits.
deadline = time.monotonic() + 3
while active > 0 and time.monotonic() < deadline:
    time.sleep(0.01)
print(f"{name} {version} stopped", flush=True)
