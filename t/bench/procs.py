"""Process plumbing for `make bench`: starting daemons as the postgres user in their own
process groups, tearing every one of them down by pid, free ports, readiness polls, and
/proc accounting (PSS memory, CPU ticks and context switches summed over a process tree),
plus `perf stat` counts for the same tree where the machine has the counters.

It knows nothing about PostgreSQL or the proxies; it must never signal a process it did not
start itself."""

import os
import pwd
import signal
import socket
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def is_root():
    return os.geteuid() == 0


def service_user():
    """The account daemons run as: postgres when we are root (PgBouncer and PostgreSQL
    refuse root), else ourselves."""
    if not is_root():
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError("running as root but there is no postgres user to run daemons as")
    return "postgres"


def chown_service(path):
    user = service_user()
    if user is None:
        return
    pw = pwd.getpwnam(user)
    os.chown(path, pw.pw_uid, pw.pw_gid)


def raise_fd_limit(want=65536):
    """Raises RLIMIT_NOFILE (soft and, as root, hard) so children inherit room for
    thousands of idle clients. Returns the soft limit in force."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if is_root() and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
        except (ValueError, OSError):
            pass
    new_soft = hard if hard != resource.RLIM_INFINITY else want
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
    except (ValueError, OSError):
        new_soft = soft
    return new_soft


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, deadline_s, what, interval=0.05):
    end = time.monotonic() + deadline_s
    while True:
        if pred():
            return
        if time.monotonic() > end:
            raise RuntimeError(f"timed out after {deadline_s} s waiting for {what}")
        time.sleep(interval)


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Registry:
    """Every process we start, stopped in reverse order by stop_all()."""

    def __init__(self):
        self.procs = []  # (name, Popen)

    def start(self, name, argv, log_path, as_service=True, env=None, cwd=None, stdin=None):
        user = service_user() if as_service else None
        logf = open(log_path, "ab")
        kwargs = {}
        if user is not None:
            kwargs["user"] = user
            kwargs["group"] = pwd.getpwnam(user).pw_gid
            kwargs["extra_groups"] = []
        p = subprocess.Popen(
            argv,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # our own group: Ctrl-C reaches us, we stop it
            env=env,
            cwd=cwd,
            **kwargs,
        )
        logf.close()
        self.procs.append((name, p))
        return p

    def track(self, name, popen):
        self.procs.append((name, popen))

    def stop(self, popen, deadline_s=10):
        if popen.poll() is not None:
            return
        for sig, wait_s in ((signal.SIGTERM, deadline_s), (signal.SIGKILL, 5)):
            try:
                os.killpg(popen.pid, sig)  # the group we made for it, by its id
            except ProcessLookupError:
                pass
            try:
                popen.wait(timeout=wait_s)
                break
            except subprocess.TimeoutExpired:
                continue
        # Stragglers of its group (children that outlived it).
        try:
            os.killpg(popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def stop_all(self):
        for name, p in reversed(self.procs):
            try:
                self.stop(p)
            except Exception as e:  # keep tearing the rest down
                log(f"stopping {name} (pid {p.pid}) failed: {e}")
        self.procs = []


# --- /proc accounting ---------------------------------------------------------------

def _stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    # comm may contain spaces and parentheses: split after the last ')'.
    return s[s.rfind(")") + 2:].split()


def process_tree(root):
    """root and all its live descendants."""
    parents = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            f = _stat_fields(int(d))
        except OSError:
            continue
        if f[0] == "Z":
            continue
        parents.setdefault(int(f[1]), []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pss_kib(root, exclude=None):
    """PSS summed over root's tree (forked children share pages: PSS splits them, RSS
    would count them once per process). exclude(pid) -> True leaves a process out."""
    return sum(pss_kib(p) for p in process_tree(root) if not (exclude and exclude(p)))


def tree_cpu_seconds(root):
    """utime+stime of every live process in root's tree, plus cutime+cstime of each (the
    children it already reaped), in seconds."""
    ticks = 0
    for p in process_tree(root):
        try:
            f = _stat_fields(p)
        except OSError:
            continue
        # fields after comm: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
        ticks += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return ticks / CLK_TCK


def tree_ctx_switches(root):
    """voluntary + nonvoluntary context switches of every thread of every live process in
    root's tree (/proc/PID/status counts only the main thread; the threads are in
    /proc/PID/task). Switches of children already reaped are lost (no cumulative field)."""
    total = 0
    for p in process_tree(root):
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{p}/task/{tid}/status") as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                            total += int(line.split()[1])
            except (OSError, ValueError):
                continue
    return total


_perf_problem = [None, False]  # why perf stat cannot count instructions here; probed?


def perf_problem():
    """None when `perf stat -e instructions` counts on this machine, else why not (probed
    once: on most VMs the hardware counters are not passed through)."""
    if not _perf_problem[1]:
        _perf_problem[1] = True
        try:
            r = subprocess.run(["perf", "stat", "-x,", "-e", "instructions", "--", "true"],
                               capture_output=True, text=True, timeout=30)
            first = (r.stderr.strip().splitlines() or [""])[-1]
            if r.returncode != 0 or not first.split(",")[0].isdigit():
                _perf_problem[0] = ("perf stat -e instructions: " + (first or f"exit {r.returncode}")
                                    + " (no hardware counters on this machine, e.g. a VM without "
                                    "PMU pass-through)")
        except (OSError, subprocess.TimeoutExpired) as e:
            _perf_problem[0] = f"perf is not usable: {e} (make profile installs it)"
    return _perf_problem[0]


def perf_stat_start(root):
    """`perf stat -e instructions` on root's tree, counting until perf_stat_stop()."""
    pids = ",".join(str(p) for p in process_tree(root))
    return subprocess.Popen(["perf", "stat", "-x,", "-e", "instructions", "-p", pids],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def perf_stat_stop(p):
    """The instructions perf counted, or None."""
    p.send_signal(signal.SIGINT)
    try:
        err = p.communicate(timeout=30)[1]
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return None
    for line in err.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2].startswith("instructions") and fields[0].isdigit():
            return int(fields[0])
    return None
