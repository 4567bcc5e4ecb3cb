"""web: an HTTP server on $PORT.

  /        a greeting ($GREETING), this page's visit count and the worker's job count
  /health  200 "ok"

One log line per request on stdout. SIGTERM (or SIGINT) stops it cleanly:
it finishes the request in flight, closes the socket and says so.
"""

import html
import http.server
import os
import threading

import common

GREETING = os.environ.get("GREETING", "Hello")
HOST = os.environ.get("HOST", "127.0.0.1")


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "hello/1"

    def do_GET(self):
        if self.path == "/health":
            self.reply(200, "text/plain", "ok\n")
        elif self.path == "/":
            db = common.connect()
            try:
                db.execute("UPDATE visits SET count = count + 1 WHERE id = 1")
                visits = db.execute("SELECT count FROM visits WHERE id = 1").fetchone()[0]
                jobs = db.execute("SELECT count(*) FROM jobs").fetchone()[0]
            finally:
                db.close()
            body = ("<!doctype html><title>hello</title>"
                    "<h1>%s</h1><p>Visit number %d, served by %s.</p>"
                    "<p>The worker has done %d jobs.</p>\n"
                    % (html.escape(GREETING), visits, html.escape(common.name()), jobs))
            self.reply(200, "text/html; charset=utf-8", body)
        else:
            self.reply(404, "text/plain", "not found\n")

    def do_HEAD(self):
        self.do_GET()

    def reply(self, status, ctype, body):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, fmt, *args):
        # one line per request, on stdout (the default goes to stderr with a date)
        print("%s %s" % (self.address_string(), fmt % args), flush=True)


def main():
    common.open_migrated("web").close()
    port = int(os.environ.get("PORT", "5000"))
    stop = common.stop_event()
    server = http.server.ThreadingHTTPServer((HOST, port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print("listening on http://%s:%d/ (greeting %r)" % (HOST, port, GREETING), flush=True)
    stop.wait()
    print("%s received, shutting down" % stop.signal, flush=True)
    server.shutdown()  # waits for serve_forever to return
    server.server_close()
    print("stopped cleanly", flush=True)


if __name__ == "__main__":
    main()
