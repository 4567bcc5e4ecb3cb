"""clock: prints a tick every $CLOCK_INTERVAL seconds (a stand-in for a scheduler).

SIGTERM (or SIGINT) stops it at once, cleanly.
"""

import time

import common


def main():
    interval = common.env_number("CLOCK_INTERVAL", 5.0)
    stop = common.stop_event()
    print("clock started, a tick every %gs" % interval, flush=True)
    ticks = 0
    start = time.monotonic()
    while not stop.wait(max(0.0, start + (ticks + 1) * interval - time.monotonic())):
        ticks += 1
        print("tick %d at %s" % (ticks, time.strftime("%H:%M:%S")), flush=True)
    print("%s received, stopped after %d ticks" % (stop.signal, ticks), flush=True)


if __name__ == "__main__":
    main()
