#!/usr/bin/python3
# psycopg2 (simple protocol only: parameters interpolated by the client) for drivers_test.cc:
# SET and read-back, SQL PREPARE/EXECUTE reused across many reads, read-your-writes in a
# transaction, an error in a transaction then ROLLBACK, and `SELECT TABLE_f()` (a function
# that writes) in a session that has not written yet, plain and as an SQL prepared statement.
# With DRV_SCENARIO=shape, runs only the changed-shape scenario (DRV_SHAPE_PORTS=primary,
# standby,... are the nodes, which all have the new column before the statement runs again): a
# prepared SELECT *, ALTER TABLE ... ADD COLUMN from another connection, the statement again.
# Prints one line per observation; the test compares the output through pgrouter with a
# direct connection's.
# usage: psycopg2_simple.py CONNINFO TABLE   (TABLE exists: id int PRIMARY KEY, v text;
#   empty, or with the row (1, 'one') for the shape scenario; TABLE_f() inserts a row)
import os
import sys

import psycopg2
from psycopg2.extensions import make_dsn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from drv_common import wait_for_column  # noqa: E402


def guards(dsn, table, log):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SET DateStyle = 'SQL, DMY'")
    days = []
    for _ in range(12):
        cur.execute("SELECT '2024-03-05'::date::text")
        days.append(cur.fetchone()[0])
    log("DateStyle reads:", days)

    cur.execute(f"INSERT INTO {table} (id, v) SELECT g, 'v' || g FROM generate_series(1, 10) g")
    cur.execute(f"PREPARE drv_read (int) AS SELECT v FROM {table} WHERE id = $1")
    reads = []
    for i in range(1, 21):
        cur.execute("EXECUTE drv_read (%s)", (1 + i % 10,))
        reads.append(cur.fetchone()[0])
    log("prepared reads:", reads)

    conn.autocommit = False
    cur.execute(f"INSERT INTO {table} (id, v) VALUES (%s, %s)", (100, "in tx"))
    cur.execute(f"SELECT v FROM {table} WHERE id = %s", (100,))
    log("read your write:", cur.fetchone())
    conn.commit()
    cur.execute(f"INSERT INTO {table} (id, v) VALUES (101, 'rolled back')")
    try:
        cur.execute("SELECT 1/0")
    except psycopg2.Error as e:
        log("error in transaction:", e.pgcode)
    try:
        cur.execute("SELECT 1")
    except psycopg2.Error as e:
        log("after the error:", e.pgcode)
    conn.rollback()
    cur.execute(f"SELECT count(*), sum(id) FROM {table}")
    log("after rollback:", cur.fetchone())
    conn.rollback()
    conn.close()


def replay(dsn, table, log):
    # A write hidden in a function, first thing in the session: plain, then prepared.
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    cur = conn.cursor()
    got = []
    for _ in range(3):
        cur.execute(f"SELECT {table}_f()")
        got.append(cur.fetchone()[0])
    log("SELECT f():", got)
    conn.close()
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute(f"PREPARE drv_f AS SELECT {table}_f()")
    got = []
    for _ in range(3):
        cur.execute("EXECUTE drv_f")
        got.append(cur.fetchone()[0])
    log("EXECUTE f():", got)
    cur.execute(f"SELECT count(*) FROM {table} WHERE v = 'f'")
    log("rows f wrote:", cur.fetchone())
    conn.close()


def shape(dsn, table, ports, log):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute(f"PREPARE drv_shape (int) AS SELECT * FROM {table} WHERE id = $1")
    cur.execute("EXECUTE drv_shape (1)")
    log("before:", cur.fetchall())
    other = psycopg2.connect(make_dsn(dsn, port=ports[0]))
    other.autocommit = True
    other.cursor().execute(f"ALTER TABLE {table} ADD COLUMN extra int")
    other.close()
    wait_for_column(lambda p: psycopg2.connect(make_dsn(dsn, port=p)), ports, table, "extra")
    for i in range(3):
        try:
            cur.execute("EXECUTE drv_shape (1)")
            log("after", i, cur.fetchall())
        except psycopg2.Error as e:
            log("after", i, e.pgcode, e.pgerror.splitlines()[0])
    cur.execute(f"SELECT * FROM {table} WHERE id = 1")
    log("plain:", cur.fetchall())
    conn.close()


def main(dsn, table):
    out = []

    def log(*parts):
        out.append(" ".join(str(p) for p in parts))

    if os.environ.get("DRV_SCENARIO") == "shape":
        shape(dsn, table, os.environ["DRV_SHAPE_PORTS"].split(","), log)
    else:
        guards(dsn, table, log)
        replay(dsn, table, log)
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
