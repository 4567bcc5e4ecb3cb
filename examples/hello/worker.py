"""worker: does a "job" every $WORKER_INTERVAL seconds and records it.

Prints one line per job. SIGTERM (or SIGINT) lets the job in flight finish,
then it exits 0.
"""

import datetime
import random
import time

import common

TASKS = ["resize avatar", "send welcome email", "rebuild search index", "expire sessions"]


def main():
    interval = common.env_number("WORKER_INTERVAL", 1.0)
    db = common.open_migrated("worker")
    stop = common.stop_event()
    print("worker started, one job every %gs" % interval, flush=True)
    done = 0
    while not stop.is_set():
        task = random.choice(TASKS)
        started = time.monotonic()
        time.sleep(random.uniform(0.01, 0.1))  # the "work"
        db.execute("INSERT INTO jobs (name, done_at, process) VALUES (?, ?, ?)",
                   (task, datetime.datetime.now().isoformat(timespec="seconds"), common.name()))
        done += 1
        print("job %d: %s (%.0f ms)" % (done, task, (time.monotonic() - started) * 1000), flush=True)
        stop.wait(interval)
    db.close()
    print("%s received, stopped after %d jobs" % (stop.signal, done), flush=True)


if __name__ == "__main__":
    main()
