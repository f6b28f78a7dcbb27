"""The targets `make bench` measures: the two direct connections, pgrouter (unpooled, and
pooled in session and in transaction mode), and the peers a user would put in its place
(HAProxy checking bgw_replstatus, PgBouncer in session and in transaction mode, pgpool-II
with load balancing), each configured for the same cluster and credentials.

Each start_* writes its config into its own directory, starts the daemon through the
Registry (so teardown finds it by pid) and waits until a real query passes through it. It
never changes the cluster."""

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import procs
from clients import psql


@dataclass
class Endpoint:
    port: int
    db: str
    sslmode: Optional[str] = None  # None: libpq's default (prefer)


@dataclass
class Certs:
    """A self-signed server certificate and key for the proxies' client TLS."""
    cert: str
    key: str


@dataclass
class Target:
    key: str
    label: str
    ro: Optional[Endpoint]  # where read-only workloads connect (None: not measured)
    rw: Optional[Endpoint]  # where read/write workloads connect
    proc: Optional[subprocess.Popen] = None  # the proxy's root process (None: direct)
    reads_from: str = "standby"  # the node read-only work really lands on
    idle_holds_backend: bool = True  # does an idle client hold a server connection?
    failover: str = ""  # "" = can follow a promotion; else why it cannot
    idle_exclude: Optional[Callable[[int], bool]] = None  # pre-forked idle slots (pgpool)
    tls: Optional[Endpoint] = None  # where (h) connects with sslmode=require (None: not measured)
    no_tls: str = "not set up for client TLS in this bench"  # why tls is None
    notes: list = field(default_factory=list)
    pool_mode: str = ""  # "", "session" or "transaction": how the target pools server connections
    pool_size: int = 0  # server connections per (node, database, user) it pools; 0: no pool
    resize_pool: Optional[Callable[[int], None]] = None  # reloads the target with another size
    no_prepared: str = ""  # "" = protocol-level prepared statements work; else why they do not

    @property
    def is_proxy(self):
        return self.proc is not None


def have(binary):
    return shutil.which(binary) is not None or os.path.exists(f"/usr/sbin/{binary}")


def which(binary):
    return shutil.which(binary) or f"/usr/sbin/{binary}"


def workdir(base, name):
    d = os.path.join(base, name)
    os.makedirs(d, exist_ok=True)
    procs.chown_service(d)
    return d


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    procs.chown_service(path)


DIRECT_NO_TLS = ("the cluster's servers have no TLS (built by build/testcluster); (h)'s ratios "
                 "are to direct standby's plain (a)")


def direct_targets(c):
    return [
        Target("direct_standby", "direct standby", Endpoint(c.standby1, c.db), None,
               failover="", no_tls=DIRECT_NO_TLS, notes=["standby1; in (i) the promoted node itself"]),
        Target("direct_master", "direct master", Endpoint(c.primary, c.db),
               Endpoint(c.primary, c.db), reads_from="master",
               failover="the old master is down", no_tls=DIRECT_NO_TLS),
    ]


def make_certs(base):
    """A self-signed certificate for 127.0.0.1 and its key (mode 600), owned by the user the
    daemons run as; clients use sslmode=require, which does not verify it."""
    d = workdir(base, "tls")
    cert, key = os.path.join(d, "server.crt"), os.path.join(d, "server.key")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                        "-days", "2", "-keyout", key, "-out", cert], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"openssl req failed: {r.stderr.strip()[-300:]}")
    os.chmod(key, 0o600)
    os.chmod(cert, 0o644)
    procs.chown_service(key)
    procs.chown_service(cert)
    return Certs(cert, key)


def pool_settings(body):
    """(mode, size) of a pool block's body ("mode transaction\nsize 20"; ";" also separates)."""
    mode, size = "session", 0
    for st in body.replace(";", "\n").splitlines():
        words = st.split()
        if len(words) == 2 and words[0] == "mode":
            mode = words[1]
        elif len(words) == 2 and words[0] == "size":
            size = int(words[1])
    return mode, size


def start_pgrouter(reg, c, base, binary, ready, certs=None, key="pgrouter", pool=None, workers=2):
    """With certs, pgrouter also offers TLS (a tls block): (h) connects with sslmode=require,
    every other workload with sslmode=disable (SSLRequest is optional, plain clients stay
    plain). `key` names a second pgrouter (an A/B baseline binary, a pooled one) in the same
    run. `pool`: the body of a pool block, e.g. "size 20" (session mode) or "mode
    transaction\nsize 20"; the target can then be reloaded with another size (SIGHUP).
    `workers`: how many worker processes (the bench's default is the cores' count, 2)."""
    d = workdir(base, key)
    port, mon = procs.free_port(), procs.free_port()
    conf = f"""# written by make bench: pgrouter's defaults but for these lines
listen 127.0.0.1:{port}
monitor 127.0.0.1:{mon}
workers {workers}
hba {d}/hba.conf
authdb {d}/authdb.txt
health {{
    username {c.superuser}
    password "{c.superpassword}"
}}
backend 127.0.0.1:{c.primary}
backend 127.0.0.1:{c.standby1}
backend 127.0.0.1:{c.standby2}
"""
    if pool:
        conf += "pool {\n" + "".join(f"    {st.strip()}\n" for st in pool.replace(";", "\n").splitlines()
                                     if st.strip()) + "}\n"
    if certs:
        conf += f"""tls {{
    cert {certs.cert}
    key {certs.key}
}}
"""
    # pgrouter authenticates clients itself: verifiers exported from pg_authid, as for PgBouncer.
    write(os.path.join(d, "authdb.txt"),
          "".join(f'"{u}" "{secret}"\n' for u, secret in c.verifiers.items()), 0o600)
    write(os.path.join(d, "hba.conf"), "host all all 127.0.0.1/32 scram-sha-256\n")
    write(os.path.join(d, "pgrouter.conf"), conf)
    p = reg.start(key, [os.path.abspath(binary), "-F", "-c", os.path.join(d, "pgrouter.conf")],
                  os.path.join(d, f"{key}.log"))
    plain = "disable" if certs else None
    t = Target(key, key, Endpoint(port, c.db, plain), Endpoint(port, c.db, plain), p,
               reads_from="any", idle_holds_backend=True,
               tls=Endpoint(port, c.db, "require") if certs else None,
               no_tls="" if certs else "started without TLS")
    if pool:
        t.pool_mode, t.pool_size = pool_settings(pool)
        # In transaction mode an idle client holds no server connection (learned again in (f)).
        t.idle_holds_backend = t.pool_mode != "transaction"
        conf_path, log_path = os.path.join(d, "pgrouter.conf"), os.path.join(d, f"{key}.log")

        def resize(size):
            with open(conf_path) as f:
                text = f.read()
            text = re.sub(r"(?m)^(\s*size )\d+$", lambda m: m.group(1) + str(size), text, count=1)
            mark = os.path.getsize(log_path)
            write(conf_path, text)
            p.send_signal(signal.SIGHUP)

            def reloaded():
                with open(log_path, errors="replace") as f:
                    f.seek(mark)
                    return "configuration reloaded" in f.read()
            procs.wait_until(reloaded, 15, f"{key} to reload with pool size {size}")
            t.pool_size = size
        t.resize_pool = resize
    ready(t, 30)
    t.reads_from = reads_land_on(c, t.ro)
    if t.reads_from == "master":
        t.notes.append("read-only work lands on the master (no statement routing yet): "
                       "compare its read rows with direct master too")
    else:
        t.notes.append("statement routing: reads reach the standbys, writes the master")
    if pool:
        t.notes.append(f"pool {{ {'; '.join(x.strip() for x in pool.replace(';', chr(10)).splitlines() if x.strip())} }}: "
                       + ("a client holds server connections only while a transaction runs"
                          if t.pool_mode == "transaction" else
                          "a client holds its server connections for its life, then they go back to the pool"))
    t.notes.append(f"workers {workers}, authdb + hba (SCRAM) with pg_authid's verifiers, health checks "
                   "with their defaults" + ("; a tls block (self-signed RSA 2048 certificate): (h) "
                                            "connects with sslmode=require, the other workloads with "
                                            "sslmode=disable" if certs else ""))
    return t


def reads_land_on(c, ep, tries=8):
    """Which kind of node plain catalog reads through ep reach: "standby" if any of a few
    does, else "master"."""
    standbys = {str(c.standby1), str(c.standby2)}
    for _ in range(tries):
        port = psql(ep.port, ep.db, c.user, c.password,
                    "SELECT setting FROM pg_settings WHERE name = 'port'", check=False, sslmode=ep.sslmode)
        if port in standbys:
            return "standby"
    return "master"


def start_haproxy(reg, c, base, ready, fd_limit):
    if not c.replstatus:
        return None
    d = workdir(base, "haproxy")
    pm, ps = procs.free_port(), procs.free_port()
    maxconn = max(100, (fd_limit - 200) // 2)  # each client costs two descriptors
    # The bgw_replstatus readme's setup, plus a second frontend for the standbys. Checks
    # every second and one failure or success to change state, so (i) is not dominated
    # by HAProxy's 2 s x 3 defaults.
    conf = f"""# written by make bench
global
    maxconn {maxconn}
    pidfile {d}/haproxy.pid

defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    timeout check 1s
    default-server inter 1s rise 1 fall 1

frontend pg_master
    bind 127.0.0.1:{pm}
    maxconn {maxconn}
    default_backend pg_master

backend pg_master
    option tcp-check
    tcp-check expect string MASTER
    server primary 127.0.0.1:{c.primary} check port {c.rs_primary} on-marked-down shutdown-sessions
    server standby1 127.0.0.1:{c.standby1} check port {c.rs_standby1} backup
    server standby2 127.0.0.1:{c.standby2} check port {c.rs_standby2} backup

frontend pg_standby
    bind 127.0.0.1:{ps}
    maxconn {maxconn}
    default_backend pg_standby

backend pg_standby
    balance roundrobin
    option tcp-check
    tcp-check expect string STANDBY
    server standby1 127.0.0.1:{c.standby1} check port {c.rs_standby1}
    server standby2 127.0.0.1:{c.standby2} check port {c.rs_standby2}
"""
    write(os.path.join(d, "haproxy.cfg"), conf)
    p = reg.start("haproxy", [which("haproxy"), "-db", "-f", os.path.join(d, "haproxy.cfg")],
                  os.path.join(d, "haproxy.log"))
    t = Target("haproxy", "HAProxy+bgw_replstatus", Endpoint(ps, c.db), Endpoint(pm, c.db), p,
               no_tls="TCP mode passes the SSLRequest through to the servers, which have no TLS here")
    t.notes.append("TCP mode; reads via the STANDBY frontend (2 standbys, round robin), "
                   "writes via the MASTER frontend; checks every 1 s, rise 1 fall 1")
    ready(t, 30)
    return t


def pgbouncer_version():
    """(major, minor) of the installed PgBouncer, (0, 0) when unknown."""
    try:
        r = subprocess.run([which("pgbouncer"), "--version"], capture_output=True, text=True, timeout=10)
        m = re.search(r"PgBouncer (\d+)\.(\d+)", r.stdout + r.stderr)
        return (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    except (OSError, subprocess.TimeoutExpired):
        return (0, 0)


def start_pgbouncer(reg, c, base, ready, max_clients, certs=None, mode="session", pool_size=40,
                    key="pgbouncer"):
    """With certs, client TLS as for pgrouter: client_tls_sslmode=allow (TLS for clients that
    ask, plain for the others), (h) with sslmode=require, the rest with sslmode=disable.
    mode "transaction" with pool_size: the pgbouncer-tx target, which can be reloaded with
    another default_pool_size (SIGHUP). Protocol-level prepared statements in transaction
    mode need PgBouncer 1.21's max_prepared_statements; older ones are marked no_prepared."""
    d = workdir(base, key)
    port = procs.free_port()
    users = "".join(f'"{u}" "{secret}"\n' for u, secret in c.verifiers.items())
    write(os.path.join(d, "userlist.txt"), users, 0o600)
    conf = f"""; written by make bench
[databases]
bench_rw = host=127.0.0.1 port={c.primary} dbname={c.db}
bench_ro = host=127.0.0.1 port={c.standby1} dbname={c.db}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {d}/userlist.txt
pool_mode = {mode}
max_client_conn = {max_clients + 100}
default_pool_size = {pool_size}
logfile =
pidfile =
ignore_startup_parameters = extra_float_digits
"""
    no_prepared = ""
    if mode == "transaction":
        if pgbouncer_version() >= (1, 21):
            conf += "max_prepared_statements = 200\n"
        else:
            no_prepared = ("PgBouncer before 1.21 does not keep protocol-level prepared statements "
                           "in transaction mode (max_prepared_statements came in 1.21)")
    if certs:
        conf += f"""client_tls_sslmode = allow
client_tls_cert_file = {certs.cert}
client_tls_key_file = {certs.key}
"""
    ini = os.path.join(d, "pgbouncer.ini")
    write(ini, conf)
    p = reg.start(key, [which("pgbouncer"), ini], os.path.join(d, "pgbouncer.log"))
    plain = "disable" if certs else None
    t = Target(key, f"PgBouncer ({mode})", Endpoint(port, "bench_ro", plain),
               Endpoint(port, "bench_rw", plain), p, idle_holds_backend=False,
               failover="PgBouncer has a static host per database: it cannot follow a promotion",
               tls=Endpoint(port, "bench_ro", "require") if certs else None,
               no_tls="" if certs else "started without TLS")
    t.pool_mode, t.pool_size, t.no_prepared = mode, pool_size, no_prepared
    if mode == "transaction":
        def resize(size):
            with open(ini) as f:
                text = f.read()
            write(ini, re.sub(r"(?m)^default_pool_size = \d+$", f"default_pool_size = {size}", text))
            p.send_signal(signal.SIGHUP)  # PgBouncer re-reads its ini; pools shrink as servers go idle
            time.sleep(1)
            t.pool_size = size
        t.resize_pool = resize
    t.notes.append(f"{mode} pooling, default_pool_size {pool_size}, SCRAM verifiers from pg_authid in auth_file; "
                   "bench_ro -> standby1, bench_rw -> primary"
                   + ("; client_tls_sslmode=allow with the same certificate as pgrouter's: (h) with "
                      "sslmode=require, the rest with sslmode=disable" if certs else ""))
    ready(t, 30)
    return t


def _pgpool_idle_child(pid):
    return "wait for connection request" in procs.cmdline(pid)


def start_pgpool(reg, c, base, ready, children):
    d = workdir(base, "pgpool")
    port, pcp = procs.free_port(), procs.free_port()
    backends = ""
    for i, (pt, w) in enumerate(((c.primary, 0), (c.standby1, 1), (c.standby2, 1))):
        backends += f"""backend_hostname{i} = '127.0.0.1'
backend_port{i} = {pt}
backend_weight{i} = {w}
backend_flag{i} = 'ALLOW_TO_FAILOVER'
"""
    conf = f"""# written by make bench
backend_clustering_mode = 'streaming_replication'
listen_addresses = '127.0.0.1'
port = {port}
socket_dir = '{d}'
pcp_listen_addresses = ''
pcp_port = {pcp}
pcp_socket_dir = '{d}'
wd_ipc_socket_dir = '{d}'
pid_file_name = '{d}/pgpool.pid'
logdir = '{d}'
log_destination = 'stderr'
enable_pool_hba = on
pool_passwd = 'pool_passwd'
num_init_children = {children}
max_pool = 1
load_balance_mode = on
sr_check_period = 1
sr_check_user = '{c.superuser}'
sr_check_password = '{c.superpassword}'
sr_check_database = 'postgres'
health_check_period = 1
health_check_timeout = 10
health_check_user = '{c.superuser}'
health_check_password = '{c.superpassword}'
health_check_database = 'postgres'
health_check_max_retries = 2
health_check_retry_delay = 1
failover_on_backend_error = on
search_primary_node_timeout = 0
use_watchdog = off
memory_cache_enabled = off
ssl = off
{backends}"""
    write(os.path.join(d, "pgpool.conf"), conf)
    write(os.path.join(d, "pcp.conf"), "")
    write(os.path.join(d, "pool_hba.conf"),
          "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
    # pgpool needs the clear passwords to answer each backend's SCRAM challenge.
    write(os.path.join(d, "pool_passwd"),
          "".join(f"{u}:TEXT{pw}\n" for u, pw in c.passwords.items()), 0o600)
    p = reg.start("pgpool", [which("pgpool"), "-n", "-f", os.path.join(d, "pgpool.conf"),
                             "-F", os.path.join(d, "pcp.conf"),
                             "-a", os.path.join(d, "pool_hba.conf")],
                  os.path.join(d, "pgpool.log"))
    t = Target("pgpool", "pgpool-II (LB)", Endpoint(port, c.db), Endpoint(port, c.db), p,
               idle_exclude=_pgpool_idle_child)
    t.notes.append(f"streaming replication mode, load balancing (weights 0/1/1), "
                   f"num_init_children {children}, max_pool 1, health checks every 1 s "
                   f"(timeout 10 s, 2 retries 1 s apart), sr checks every 1 s")
    ready(t, 60)
    return t
