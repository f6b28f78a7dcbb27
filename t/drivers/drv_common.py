# Shared by the Python driver scripts of drivers_test.cc.
import time


def wait_for_column(connect, ports, table, column, deadline=30.0):
    """Polls every node (connect(port) gives a DB-API connection straight to it) until the
    column exists there: a statement run after this sees the new shape wherever it runs."""
    end = time.monotonic() + deadline
    for port in ports:
        conn = connect(port)
        conn.autocommit = True
        cur = conn.cursor()
        while True:
            cur.execute("SELECT count(*) FROM pg_attribute WHERE attrelid = %s::regclass "
                        "AND attname = %s", (table, column))
            if cur.fetchone()[0] == 1:
                break
            if time.monotonic() > end:
                raise RuntimeError(f"column {column} did not reach the node on port {port}")
            time.sleep(0.05)
        conn.close()
