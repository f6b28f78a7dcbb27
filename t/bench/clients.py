"""The PostgreSQL clients `make bench` drives: psql for setup queries and pgbench for the
workloads, always over TCP to 127.0.0.1 with the password in the environment (never on a
command line) and no PG* variables of the caller leaking in. An endpoint's sslmode, when set,
goes into the conninfo: "require" for (h), "disable" for plain work against a proxy that
offers TLS."""

import os
import re
import subprocess


def pg_env(password):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGPASSWORD=password, PGCONNECT_TIMEOUT="10", PGAPPNAME="pgrouter-bench")
    return env


def conninfo(port, db, user, sslmode=None):
    """sslmode None leaves libpq's default (prefer): TLS if the server offers it."""
    return f"host=127.0.0.1 port={port} dbname={db} user={user}" + (f" sslmode={sslmode}" if sslmode else "")


def psql(port, db, user, password, sql, check=True, timeout=60, sslmode=None):
    r = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql,
                        conninfo(port, db, user, sslmode)],
                       capture_output=True, text=True, env=pg_env(password), timeout=timeout)
    if r.returncode != 0:
        if check:
            raise RuntimeError(f"psql on port {port}: {r.stderr.strip()}")
        return None
    return r.stdout.strip()


def pgbench(c, ep, args, seconds, user=None, password=None):
    argv = ["pgbench", "-n", *args, "-T", str(max(1, round(seconds))),
            conninfo(ep.port, ep.db, user or c.user, ep.sslmode)]
    r = subprocess.run(argv, capture_output=True, text=True, env=pg_env(password or c.password),
                       timeout=seconds * 4 + 120)
    out = r.stdout + r.stderr
    tps = re.search(r"^tps = ([0-9.]+)", out, re.M)
    txns = re.search(r"number of transactions actually processed: (\d+)", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    if r.returncode != 0 or not tps or not txns:
        tail = " | ".join(out.strip().splitlines()[-3:])
        raise RuntimeError(f"pgbench {' '.join(args)} on port {ep.port} failed: {tail}")
    if failed and int(failed.group(1)) > 0:
        raise RuntimeError(f"pgbench on port {ep.port}: {failed.group(1)} failed transactions")
    return float(tps.group(1)), int(txns.group(1))


def pgbench_counts(c, ep, args, seconds):
    """pgbench that never raises for failures: (tps, transactions, failed, exit status, last
    lines of its output). failed counts pgbench's failed transactions plus, when clients
    aborted (exit status 2), the clients that did; tps is 0 when pgbench printed none."""
    argv = ["pgbench", "-n", *args, "-T", str(max(1, round(seconds))),
            conninfo(ep.port, ep.db, c.user, ep.sslmode)]
    r = subprocess.run(argv, capture_output=True, text=True, env=pg_env(c.password),
                       timeout=seconds * 4 + 180)
    out = r.stdout + r.stderr
    tps = re.search(r"^tps = ([0-9.]+)", out, re.M)
    txns = re.search(r"number of transactions actually processed: (\d+)", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    aborted = len(re.findall(r"^pgbench: error: client \d+ (?:script \d+ )?aborted", out, re.M))
    tail = " | ".join(out.strip().splitlines()[-3:])
    return (float(tps.group(1)) if tps else 0.0, int(txns.group(1)) if txns else 0,
            (int(failed.group(1)) if failed else 0) + aborted, r.returncode, tail)
