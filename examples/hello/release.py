"""Release phase: bring the database up to the current schema, then exit.

paas runs this before starting web, worker and clock, and starts them only if
it exits 0. Running it again is harmless: it applies only what is missing.
"""

import os

import common


def main():
    path = common.database_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    created = not os.path.exists(path)
    db = common.connect()
    version = common.schema_version(db)
    if created:
        print("release: created database %s" % path)
    applied = 0
    for number, description, sql in common.MIGRATIONS:
        if number <= version:
            continue
        db.executescript("BEGIN;" + sql + "PRAGMA user_version = %d; COMMIT;" % number)
        print("release: applied migration %d (%s)" % (number, description))
        applied += 1
    if not applied:
        print("release: database %s is up to date (schema version %d)" % (path, version))
    else:
        print("release: done, schema version %d" % common.schema_version(db))
    db.close()


if __name__ == "__main__":
    main()
