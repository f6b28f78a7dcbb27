#!/usr/bin/python3
# asyncpg (extended protocol only, every query a named prepared statement from its cache)
# for drivers_test.cc: SET and read-back, an explicit prepared statement reused across many
# reads, read-your-writes in a transaction, an error in a transaction then ROLLBACK, and
# `SELECT TABLE_f()` (a function that writes) in a session that has not written yet, through
# fetchval and through a prepared statement. asyncpg sends Parse/Describe/Flush, waits for
# the answers, then Bind/Execute/Sync. DRV_SCENARIO picks what runs: "main" (the guards but
# SET), "set" (a SET, then reads that must see it wherever they run), "replay"
# (TABLE_f()), "shape" (a prepared SELECT *, ALTER TABLE ... ADD COLUMN from another
# connection, the statement again; DRV_SHAPE_PORTS=primary,standby,... are the nodes, which
# all have the column before the statement runs again). Prints one line per observation.
# usage: asyncpg_prepared.py URI TABLE   (TABLE exists: id int PRIMARY KEY, v text;
#   empty, or with the row (1, 'one') for the shape scenario; TABLE_f() inserts a row)
import asyncio
import os
import sys
import time
import urllib.parse

import asyncpg


def with_port(uri, port):
    u = urllib.parse.urlsplit(uri)
    netloc = u.netloc.rsplit(":", 1)[0] + ":" + str(port)
    return urllib.parse.urlunsplit(u._replace(netloc=netloc))


def err(e):
    return f"{type(e).__name__} {getattr(e, 'sqlstate', None)}"


async def set_reads(uri, table, log):
    conn = await asyncpg.connect(uri)
    await conn.execute("SET DateStyle = 'SQL, DMY'")
    log("DateStyle reads:",
        [await conn.fetchval("SELECT '2024-03-05'::date::text") for _ in range(12)])
    await conn.close()


async def guards(uri, table, log):
    conn = await asyncpg.connect(uri)
    await conn.executemany(f"INSERT INTO {table} (id, v) VALUES ($1, $2)",
                           [(i, f"v{i}") for i in range(1, 11)])
    stmt = await conn.prepare(f"SELECT v FROM {table} WHERE id = $1")
    log("prepared reads:", [await stmt.fetchval(1 + i % 10) for i in range(20)])
    log("cached reads:", [await conn.fetchval(f"SELECT v FROM {table} WHERE id = $1", 1 + i % 10)
                          for i in range(20)])
    async with conn.transaction():
        await conn.execute(f"INSERT INTO {table} (id, v) VALUES ($1, $2)", 100, "in tx")
        log("read your write:", await stmt.fetchval(100))
    tr = conn.transaction()
    await tr.start()
    await conn.execute(f"INSERT INTO {table} (id, v) VALUES (101, 'rolled back')")
    try:
        await conn.fetchval("SELECT 1/$1::int", 0)
    except asyncpg.PostgresError as e:
        log("error in transaction:", err(e))
    try:
        await stmt.fetchval(1)
    except asyncpg.PostgresError as e:
        log("after the error:", err(e))
    await tr.rollback()
    log("after rollback:", tuple(await conn.fetchrow(f"SELECT count(*), sum(id) FROM {table}")))
    await conn.close()


async def replay(uri, table, log):
    # A write hidden in a function, first thing in the session.
    conn = await asyncpg.connect(uri)
    log("fetchval f():", [await conn.fetchval(f"SELECT {table}_f()") for _ in range(3)])
    await conn.close()
    conn = await asyncpg.connect(uri)
    stmt = await conn.prepare(f"SELECT {table}_f()")
    log("prepared f():", [await stmt.fetchval() for _ in range(3)])
    log("rows f wrote:", await conn.fetchval(f"SELECT count(*) FROM {table} WHERE v = 'f'"))
    await conn.close()


async def wait_for_column(uri, ports, table, column, deadline=30.0):
    end = time.monotonic() + deadline
    for port in ports:
        conn = await asyncpg.connect(with_port(uri, port))
        while not await conn.fetchval(
                "SELECT count(*) = 1 FROM pg_attribute WHERE attrelid = $1::regclass "
                "AND attname = $2", table, column):
            if time.monotonic() > end:
                raise RuntimeError(f"column {column} did not reach the node on port {port}")
            await asyncio.sleep(0.05)
        await conn.close()


async def shape(uri, table, ports, log):
    conn = await asyncpg.connect(uri)
    stmt = await conn.prepare(f"SELECT * FROM {table} WHERE id = $1")
    log("before prepared:", [tuple(r) for r in await stmt.fetch(1)])
    log("before cached:", [tuple(r) for r in await conn.fetch(
        f"SELECT * FROM {table} WHERE id = $1", 1)])
    other = await asyncpg.connect(with_port(uri, ports[0]))
    await other.execute(f"ALTER TABLE {table} ADD COLUMN extra int")
    await other.close()
    await wait_for_column(uri, ports, table, "extra")
    for i in range(2):
        try:
            log("after prepared", i, [tuple(r) for r in await stmt.fetch(1)])
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            log("after prepared", i, err(e))
        try:
            log("after cached", i, [tuple(r) for r in await conn.fetch(
                f"SELECT * FROM {table} WHERE id = $1", 1)])
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            log("after cached", i, err(e))
    await conn.close()


async def main(uri, table):
    out = []

    def log(*parts):
        out.append(" ".join(str(p) for p in parts))

    scenario = os.environ.get("DRV_SCENARIO", "main")
    if scenario == "shape":
        await shape(uri, table, os.environ["DRV_SHAPE_PORTS"].split(","), log)
    elif scenario == "set":
        await set_reads(uri, table, log)
    elif scenario == "replay":
        await replay(uri, table, log)
    else:
        await guards(uri, table, log)
    print("\n".join(out))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
