"""Shared by the hello app's processes: settings from the environment and the database."""

import os
import signal
import sqlite3
import threading

APP_DIR = os.path.dirname(os.path.abspath(__file__))

# (version, description, SQL): release.py applies the ones a database lacks.
MIGRATIONS = [
    (1, "create table visits",
     "CREATE TABLE visits (id INTEGER PRIMARY KEY CHECK (id = 1), count INTEGER NOT NULL);"
     "INSERT INTO visits (id, count) VALUES (1, 0);"),
    (2, "create table jobs",
     "CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,"
     " done_at TEXT NOT NULL, process TEXT NOT NULL);"),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]


def name():
    """This process's name as the supervisor gave it (PS=web.1), or "local"."""
    return (os.environ.get("PS") or os.environ.get("DYNO")
            or os.environ.get("HONCHO_PROCESS_NAME") or "local")


def database_path():
    path = os.environ.get("DATABASE", "data/hello.sqlite3")
    return path if os.path.isabs(path) else os.path.join(APP_DIR, path)


def connect():
    db = sqlite3.connect(database_path(), timeout=10, isolation_level=None)
    db.execute("PRAGMA busy_timeout = 10000")
    return db


def schema_version(db):
    return db.execute("PRAGMA user_version").fetchone()[0]


def open_migrated(who):
    """The database, or exit 1 with a clear message if release.py has not run."""
    path = database_path()
    if os.path.exists(path):
        db = connect()
        if schema_version(db) >= SCHEMA_VERSION:
            return db
    print("%s: database %s is not migrated: run the release phase first "
          "(`paas up` does; or `python3 release.py`)" % (who, path), flush=True)
    raise SystemExit(1)


def env_number(key, default):
    value = os.environ.get(key, "")
    try:
        return float(value) if value else default
    except ValueError:
        print("warning: %s=%r is not a number, using %s" % (key, value, default), flush=True)
        return default


def stop_event():
    """An Event set by SIGTERM or SIGINT; the handler only records which one."""
    stop = threading.Event()
    stop.signal = None

    def handler(signum, _frame):
        stop.signal = signal.Signals(signum).name
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop
