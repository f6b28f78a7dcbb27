#!/usr/bin/python3
# psycopg 3 in pipeline mode for drivers_test.cc: pipelines mixing writes and reads with
# prepare_threshold=0 (every statement a named prepared one), read-only pipelines that reuse
# those statements, executemany, and error recovery inside a pipeline (statements after the
# error are skipped until the sync; the connection works afterwards), and `SELECT TABLE_f()`
# (a function that writes) prepared in a session that has not written yet. With
# DRV_SCENARIO=shape, runs only the changed-shape scenario (DRV_SHAPE_PORTS=primary,
# standby,... are the nodes, which all have the new column before it runs again): a prepared
# SELECT *, ALTER TABLE ... ADD COLUMN from another connection, the statement again. Prints
# one line per
# observation; the test compares the output through pgrouter with a direct connection's.
# usage: psycopg_pipeline.py CONNINFO TABLE   (TABLE exists: id int PRIMARY KEY, v text;
#   empty, or with the row (1, 'one') for the shape scenario; TABLE_f() inserts a row)
import os
import sys

import psycopg
from psycopg import errors, sql
from psycopg.conninfo import make_conninfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from drv_common import wait_for_column  # noqa: E402


def replay(dsn, table, log):
    # A write hidden in a function, first thing in the session, as a prepared statement.
    with psycopg.connect(dsn, prepare_threshold=0, autocommit=True) as conn:
        f = sql.SQL("SELECT {f}()").format(f=sql.Identifier(table + "_f"))
        log("prepared f():", [conn.execute(f).fetchone()[0] for _ in range(5)])
        log("rows f wrote:", conn.execute(
            sql.SQL("SELECT count(*) FROM {t} WHERE v = 'f'").format(t=sql.Identifier(table)),
            prepare=False).fetchone())


def shape(dsn, table, ports, log):
    star = sql.SQL("SELECT * FROM {t} WHERE id = %s").format(t=sql.Identifier(table))
    with psycopg.connect(dsn, prepare_threshold=0, autocommit=True) as conn:
        for _ in range(2):
            log("before:", conn.execute(star, (1,)).fetchall())
        with psycopg.connect(make_conninfo(dsn, port=ports[0]), autocommit=True) as other:
            other.execute(sql.SQL("ALTER TABLE {t} ADD COLUMN extra int")
                          .format(t=sql.Identifier(table)))
        wait_for_column(lambda p: psycopg.connect(make_conninfo(dsn, port=p)), ports, table,
                        "extra")
        for i in range(3):
            try:
                log("after", i, conn.execute(star, (1,)).fetchall())
            except psycopg.Error as e:
                log("after", i, type(e).__name__, e.sqlstate, str(e).splitlines()[0])


def main(dsn, table):
    t = sql.Identifier(table)
    out = []

    def log(*parts):
        out.append(" ".join(str(p) for p in parts))

    if os.environ.get("DRV_SCENARIO") == "shape":
        shape(dsn, table, os.environ["DRV_SHAPE_PORTS"].split(","), log)
        print("\n".join(out))
        return

    def q(text):
        return sql.SQL(text).format(t=t)

    with psycopg.connect(dsn, prepare_threshold=0, autocommit=True) as conn:
        # Settings as prepared statements (prepare_threshold=0), alone and inside a pipeline,
        # before any write: the reads after them run on standbys and must see them.
        conn.execute("SET DateStyle = 'SQL, DMY'")
        log("DateStyle reads:",
            [conn.execute("SELECT '2024-03-05'::date::text").fetchone()[0] for _ in range(12)])
        with conn.pipeline():
            conn.execute("SET TimeZone = 'Asia/Tokyo'")
            cs = [conn.execute("SELECT '2024-01-01 00:00+00'::timestamptz::text")
                  for _ in range(3)]
        log("TimeZone in the pipeline:", [c.fetchone()[0] for c in cs])
        log("TimeZone reads:",
            [conn.execute("SELECT current_setting('TimeZone')").fetchone()[0] for _ in range(12)])
        log("ParameterStatus:", conn.info.parameter_status("DateStyle"),
            conn.info.parameter_status("TimeZone"))
        conn.execute("RESET ALL")
        log("after RESET ALL:", [conn.execute(
            "SELECT current_setting('DateStyle') || ' ' || current_setting('TimeZone')")
            .fetchone()[0] for _ in range(4)])

        # Writes and reads in one pipeline: reads see the writes before them.
        with conn.pipeline():
            for i in range(1, 21):
                conn.execute(q("INSERT INTO {t} (id, v) VALUES (%s, %s)"), (i, f"v{i}"))
            c1 = conn.execute(q("SELECT count(*), sum(id) FROM {t}"))
            conn.execute(q("UPDATE {t} SET v = v || '!' WHERE mod(id, 2) = 0"))
            c2 = conn.execute(q("SELECT string_agg(v, ',' ORDER BY id) FROM {t} WHERE id <= 6"))
            c3 = conn.execute("SELECT %s::int + 1", (41,))
        log("mixed pipeline:", c1.fetchone(), c2.fetchone(), c3.fetchone())

        # Read-only pipelines, twice: the second reuses the prepared statements.
        for round_ in (1, 2):
            with conn.pipeline():
                curs = [conn.execute(q("SELECT v FROM {t} WHERE id = %s"), (i,))
                        for i in range(1, 11)]
                total = conn.execute(q("SELECT count(*) FROM {t}"))
            log(f"read pipeline {round_}:", [c.fetchone()[0] for c in curs], total.fetchone())

        # executemany runs in a pipeline of its own.
        with conn.cursor() as cur:
            cur.executemany(q("INSERT INTO {t} (id, v) VALUES (%s, %s)"),
                            [(i, f"many{i}") for i in range(100, 150)])
            log("executemany rowcount:", cur.rowcount)
        log("after executemany:", conn.execute(q("SELECT count(*), max(id) FROM {t}")).fetchone())

        # An error in the middle of a pipeline.
        try:
            with conn.pipeline() as p:
                conn.execute(q("INSERT INTO {t} (id, v) VALUES (200, 'before error')"))
                conn.execute("SELECT 1/0")
                conn.execute(q("INSERT INTO {t} (id, v) VALUES (201, 'after error')"))
                p.sync()
                conn.execute(q("INSERT INTO {t} (id, v) VALUES (202, 'after sync')"))
        except errors.DivisionByZero as e:
            log("pipeline error:", type(e).__name__, e.sqlstate)
        log("pipeline status:", psycopg.pq.PipelineStatus(conn.pgconn.pipeline_status).name,
            "transaction:", conn.info.transaction_status.name)
        log("rows 200-202:", conn.execute(
            q("SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '-') FROM {t} "
              "WHERE id >= 200")).fetchall())

        # Results fetched one by one inside a pipeline with an error: later ones are aborted.
        got = []
        try:
            with conn.pipeline():
                a = conn.execute(q("SELECT count(*) FROM {t}"))
                b = conn.execute(q("INSERT INTO {t} (id, v) VALUES (1, 'duplicate')"))
                c = conn.execute("SELECT 'never'")
                got.append(("a", a.fetchone()))
                try:
                    b.fetchone()
                except errors.UniqueViolation as e:
                    got.append(("b", e.sqlstate))
                try:
                    c.fetchone()
                except psycopg.errors.PipelineAborted:
                    got.append(("c", "PipelineAborted"))
        except psycopg.Error as e:
            got.append(("exit", type(e).__name__))
        log("fetch in pipeline:", got)

        # A transaction inside a pipeline, rolled back by an error.
        try:
            with conn.pipeline():
                with conn.transaction():
                    conn.execute(q("INSERT INTO {t} (id, v) VALUES (300, 'in tx')"))
                    conn.execute("SELECT * FROM drv_no_such_table")
        except errors.UndefinedTable as e:
            log("transaction error:", type(e).__name__, e.sqlstate)
        log("row 300:", conn.execute(q("SELECT count(*) FROM {t} WHERE id = 300")).fetchone())

        # The connection works afterwards, in and out of pipelines.
        with conn.pipeline():
            w = conn.execute(q("INSERT INTO {t} (id, v) VALUES (400, 'recovered') RETURNING id"))
            r = conn.execute(q("SELECT v FROM {t} WHERE id = 400"))
        log("recovered:", w.fetchone(), r.fetchone())
        log("final:", conn.execute(
            q("SELECT count(*), sum(id), md5(string_agg(id || v, ',' ORDER BY id)) FROM {t}"))
            .fetchone())

    # A non-autocommit connection: pipeline inside the implicit transaction, then commit.
    with psycopg.connect(dsn, prepare_threshold=0) as conn:
        with conn.pipeline():
            conn.execute(q("INSERT INTO {t} (id, v) VALUES (500, 'tx')"))
            n = conn.execute(q("SELECT count(*) FROM {t} WHERE id >= 500"))
        log("in transaction:", n.fetchone(), conn.info.transaction_status.name)
        conn.commit()
        log("committed:", conn.execute(q("SELECT count(*) FROM {t} WHERE id = 500")).fetchone())
        conn.rollback()

    replay(dsn, table, log)
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
