"""The output of `make bench`: a Markdown table (rows workloads, columns targets, cells
`median (ratio)`), a CSV of the same with every round's value, and a PNG chart drawn by
gnuplot. Pure formatting over the measured values; it never runs a workload."""

import json
import os
import platform
import statistics
import subprocess

# key, label, kind, baseline target. Kinds: tput (higher is better, ratio to baseline),
# mem (KiB per client), cpu (us per txn), csw (context switches per txn), ins (instructions
# per txn), lat (ms, + added over baseline), time (s), wall (s, ratio baseline/value),
# count (a plain number: server connections, failed transactions), na.
ROWS = [
    ("a", "(a) -S simple, -c 8: tps", "tput", "direct_standby"),
    ("b", "(b) -S prepared, -c 8: tps", "tput", "direct_standby"),
    ("c", "(c) TPC-B-like, -c 8: tps", "tput", "direct_master"),
    ("d", "(d) -S -C (connect per txn): tps", "tput", "direct_standby"),
    ("e", "(e) 50 MB result: MB/s", "tput", "direct_standby"),
    ("f1000", "(f) 1,000 idle clients: proxy KiB/client", "mem", None),
    ("f1000_srv", "(f) 1,000 idle clients: server connections, busiest node", "count", None),
    ("f10000", "(f) 10,000 idle clients: proxy KiB/client", "mem", None),
    ("f10000_srv", "(f) 10,000 idle clients: server connections, busiest node", "count", None),
    ("g_cpu_simple", "(g) @{rate}/s simple: proxy CPU µs/txn", "cpu", None),
    ("g_cpu_prepared", "(g) @{rate}/s prepared: proxy CPU µs/txn", "cpu", None),
    ("g_csw_simple", "(g) @{rate}/s simple: proxy context switches/txn", "csw", None),
    ("g_csw_prepared", "(g) @{rate}/s prepared: proxy context switches/txn", "csw", None),
    ("g_ins_simple", "(g) @{rate}/s simple: proxy instructions/txn", "ins", None),
    ("g_ins_prepared", "(g) @{rate}/s prepared: proxy instructions/txn", "ins", None),
    ("g_avg_simple", "(g) @{rate}/s simple: avg latency ms (added)", "lat", "direct_standby"),
    ("g_p99_simple", "(g) @{rate}/s simple: p99 latency ms (added)", "lat", "direct_standby"),
    ("g_avg_prepared", "(g) @{rate}/s prepared: avg latency ms (added)", "lat", "direct_standby"),
    ("g_p99_prepared", "(g) @{rate}/s prepared: p99 latency ms (added)", "lat", "direct_standby"),
    ("g2_cpu_simple", "(g) @{rate2}/s simple: proxy CPU µs/txn", "cpu", None),
    ("g2_cpu_prepared", "(g) @{rate2}/s prepared: proxy CPU µs/txn", "cpu", None),
    ("g2_csw_simple", "(g) @{rate2}/s simple: proxy context switches/txn", "csw", None),
    ("g2_csw_prepared", "(g) @{rate2}/s prepared: proxy context switches/txn", "csw", None),
    ("g2_ins_simple", "(g) @{rate2}/s simple: proxy instructions/txn", "ins", None),
    ("g2_ins_prepared", "(g) @{rate2}/s prepared: proxy instructions/txn", "ins", None),
    ("g2_avg_simple", "(g) @{rate2}/s simple: avg latency ms (added)", "lat", "direct_standby"),
    ("g2_p99_simple", "(g) @{rate2}/s simple: p99 latency ms (added)", "lat", "direct_standby"),
    ("g2_avg_prepared", "(g) @{rate2}/s prepared: avg latency ms (added)", "lat", "direct_standby"),
    ("g2_p99_prepared", "(g) @{rate2}/s prepared: p99 latency ms (added)", "lat", "direct_standby"),
    ("h", "(h) -S simple over TLS, -c 8: tps", "tput", "direct_standby"),
    ("j_ro", "(j) -S -c {j_clients} through size {j_size}: tps", "tput", "direct_standby"),
    ("j_ro_failed", "(j) -S -c {j_clients}: failed transactions", "count", None),
    ("j_rw", "(j) TPC-B-like -c {j_clients} through size {j_size}: tps", "tput", "direct_master"),
    ("j_rw_failed", "(j) TPC-B-like -c {j_clients}: failed transactions", "count", None),
    ("i", "(i) failover: promote → first write, s", "time", None),
    ("k", "(k) pgbench -i -s {scale}: s (direct/target)", "wall", "direct_master"),
]
WORKLOAD_OF_ROW = {r[0]: r[0][0] for r in ROWS}
# Rows whose baseline is another row's value: (h) against direct standby's plain (a), since
# the cluster's servers have no TLS.
BASE_ROW = {"h": "a"}
SHORT = {"a": "(a) -S simple", "b": "(b) -S prepared", "c": "(c) TPC-B", "d": "(d) -C churn",
         "e": "(e) 50 MB result", "h": "(h) -S over TLS", "j_ro": "(j) -S -c 200",
         "j_rw": "(j) TPC-B -c 200"}
# Rows that belong to another row's measurement: when they have no value, the other row's
# reason for having none is theirs too.
SKIP_OF = {"f1000_srv": "f1000", "f10000_srv": "f10000", "j_ro_failed": "j_ro", "j_rw_failed": "j_rw"}


def _median(values):
    return statistics.median(values) if values else None


class Table:
    def __init__(self, bench, targets, meta):
        self.bench, self.targets, self.meta = bench, targets, meta
        self.footnotes = []  # reasons, numbered in order of first use

    def med(self, row, target_key):
        return _median(self.bench.values.get((row, target_key), []))

    def base(self, row, base):
        """The baseline value row's ratios are taken to (None: no ratio)."""
        return self.med(BASE_ROW.get(row, row), base) if base else None

    def note(self, reason):
        if reason not in self.footnotes:
            self.footnotes.append(reason)
        return f"n/a [{self.footnotes.index(reason) + 1}]"

    def cell(self, row, kind, base, t):
        m = self.med(row, t.key)
        if m is None:
            why = self.bench.skips.get((row, t.key))
            if why is None and row in SKIP_OF:
                why = self.bench.skips.get((SKIP_OF[row], t.key))
            if why is None or why == "—":
                return "—"
            return self.note(why)
        b = self.base(row, base)
        if kind == "tput":
            digits = 0 if m >= 100 else 1
            return f"{m:.{digits}f} ({m / b:.2f})" if b else f"{m:.{digits}f}"
        if kind == "mem":
            return f"{m:.1f} KiB"
        if kind == "cpu":
            return f"{m:.0f} µs"
        if kind == "csw":
            return f"{m:.2f}"
        if kind == "ins":
            return f"{m / 1000:.0f} k"
        if kind == "wall":
            return f"{m:.1f} s ({b / m:.2f})" if b and m else f"{m:.1f} s"
        if kind == "lat":
            if b is None or t.key == base:
                return f"{m:.3f}"
            return f"{m:.3f} ({m - b:+.3f})"
        if kind == "time":
            return f"{0.0 if abs(m) < 0.005 else m:.2f} s"
        if kind == "count":
            return f"{m:.0f}"
        return f"{m}"

    def rows(self):
        for key, label, kind, base in ROWS:
            if WORKLOAD_OF_ROW[key] not in self.meta["workloads"]:
                continue
            if key.startswith("f") and int(key[1:].split("_")[0]) not in self.meta["idle"]:
                continue
            if key.startswith("g2") and not self.meta.get("rate2"):
                continue
            yield key, label.format(rate=self.meta["rate"], rate2=self.meta.get("rate2"),
                                    scale=self.meta["scale"], j_clients=self.meta.get("j_clients", 200),
                                    j_size=self.meta.get("j_size", 10)), kind, base

    def markdown(self):
        m = self.meta
        head = "| workload | " + " | ".join(t.label for t in self.targets) + " |"
        sep = "|---|" + "---:|" * len(self.targets)
        lines = [head, sep]
        for key, label, kind, base in self.rows():
            lines.append(f"| {label} | " + " | ".join(self.cell(key, kind, base, t) for t in self.targets) + " |")
        out = [
            "# pgrouter `make bench`",
            "",
            f"{m['date']} on {machine()}; {m['elapsed'] / 60:.1f} min. "
            f"**Noisy**: a shared 2-core machine, other work running; read ratios, not absolute numbers.",
            "",
            f"{m['rounds']} interleaved round{'s' if m['rounds'] != 1 else ''} "
            f"(every target in turn, workload by workload), "
            f"{m['seconds']:g} s per run, median of rounds; pgbench scale {m['scale']}; "
            f"primary + 2 streaming standbys built by build/testcluster, all on loopback.",
            "",
            "\n".join(lines),
            "",
            "Cells are `median (ratio)`: the ratio is to **direct standby** for read-only workloads and "
            "to **direct master** for (c). (f): the proxy's own memory (PSS summed over its process "
            "tree) added per idle client; each client runs a query afterwards. (g): fixed rate "
            f"`pgbench -S -c 4 -j 2 -R {m['rate']}`"
            + (f" and again at `-R {m['rate2']}`" if m.get("rate2") else "")
            + ", the proxy's utime+stime over its whole process "
            "tree per transaction, its context switches (voluntary + nonvoluntary, every thread "
            "of every process of the tree, from /proc/PID/task/TID/status) per transaction, its "
            "instructions per transaction from `perf stat -e instructions` where the machine "
            "has the counter (in thousands), latencies from pgbench's per-transaction log with "
            "the difference to direct standby in brackets. (k): wall time of `pgbench -i -s "
            f"{m['scale']}` (client-side COPY, one CopyData message per row, then vacuum and "
            "primary keys) through the target's write endpoint; the ratio is direct master's "
            "time over the target's (1.00 = as fast as direct). (i): seconds from `pg_ctl promote -w` returning to the "
            "first successful INSERT through the target, one failover (old primary stopped "
            f"immediately {m['failover_gap']:g} s before); below 0 when the write passed before "
            "`pg_ctl promote -w`, which polls every 100 ms, returned.",
        ]
        if "j" in m["workloads"]:
            out += ["", f"(j): many clients, few servers, {m.get('j_seconds', m['seconds']):g} s per run: "
                    f"`pgbench -S -M simple -c {m.get('j_clients', 200)} -j 4` "
                    f"and TPC-B-like `-c {m.get('j_clients', 200)} -j 4`, the transaction-mode pools reloaded "
                    f"with size {m.get('j_size', 10)} for it (server connections per node, database and user; "
                    "pgrouter's reads spread over both standbys' pools, PgBouncer's bench_ro is one pool on "
                    "standby1); direct connections, one backend per client, are the baseline. Failed "
                    "transactions are pgbench's count plus clients it aborted."]
        if any(r.startswith("f") for r, _, _, _ in self.rows()):
            out += ["", "(f) server connections: client backends of the bench user per node after "
                    "the idle clients logged in, minus those before; the busiest node's."]
        if m.get("tls"):
            out += ["", "(h): (a)'s `pgbench -S -M simple -c 8 -j 2` with `sslmode=require` to the proxies "
                    "that offer client TLS (self-signed RSA 2048 certificate; TLS ends at the proxy, "
                    "which talks plain to the servers); its ratio is to **direct standby's plain (a)**. "
                    "In this run every plain workload connects with `sslmode=disable`, to every target "
                    "alike."]
        pg = self.master_readers()
        if pg:
            out += ["", pg]
        notes = []
        for t in self.targets:
            for n in t.notes:
                notes.append(f"- {t.label}: {n}")
        for name, why in m["missing"].items():
            if name.startswith("pgrouter"):
                notes.append(f"- {name}: not measured: {why}")
            else:
                notes.append(f"- {name}: not measured ({why}; `make bench-deps` installs it)")
        if notes:
            out += ["", "Setup:", *notes]
        if self.footnotes:
            out += ["", "Not measured:"] + [f"{i + 1}. {r}" for i, r in enumerate(self.footnotes)]
        v = m["versions"]
        out += ["", f"Versions: {v['postgres']}; {v['haproxy']}; {v['pgbouncer']}; {v['pgpool']}.", ""]
        return "\n".join(out)

    def master_readers(self):
        """Targets whose reads land on the master: their read-only ratios against direct
        master, the connection they really compete with."""
        parts = []
        for t in self.targets:
            if not t.is_proxy or t.reads_from != "master":
                continue
            ratios = []
            for key in ("a", "b", "d", "e"):
                m, b = self.med(key, t.key), self.med(key, "direct_master")
                if m is not None and b:
                    ratios.append(f"({key}) {m / b:.2f}")
            for key, name in (("g_avg_simple", "avg"), ("g_p99_simple", "p99")):
                m, b = self.med(key, t.key), self.med(key, "direct_master")
                if m is not None and b is not None:
                    ratios.append(f"(g) {name} latency {m - b:+.3f} ms")
            if ratios:
                parts.append(f"**{t.label} sends reads to the master today** (statement routing not yet): "
                             f"against direct master its read-only figures are " + ", ".join(ratios) + ".")
        return "\n".join(parts)

    def csv(self):
        lines = ["workload,label,target,median,relative,unit,rounds,values,note"]
        units = {"tput": "per s", "mem": "KiB/client", "cpu": "us/txn", "csw": "switches/txn",
                 "ins": "instructions/txn", "lat": "ms", "time": "s", "wall": "s", "count": "",
                 "na": ""}
        for key, label, kind, base in self.rows():
            for t in self.targets:
                vals = self.bench.values.get((key, t.key), [])
                m = _median(vals)
                b = self.base(key, base)
                rel = ""
                if m is not None and b:
                    rel = (f"{m / b:.4f}" if kind == "tput" else f"{m - b:.4f}" if kind == "lat"
                           else f"{b / m:.4f}" if kind == "wall" and m else "")
                unit = "MB/s" if key == "e" else ("tps" if kind == "tput" else units[kind])
                note = self.bench.skips.get((key, t.key), "") if m is None else ""
                lines.append(",".join([
                    key, _q(label), t.key, "" if m is None else f"{m:.4f}", rel, unit, str(len(vals)),
                    _q(";".join(f"{v:.4f}" for v in vals)), _q(note if note != "—" else "")]))
        return "\n".join(lines) + "\n"


def _q(s):
    return '"' + s.replace('"', '""') + '"' if ("," in s or '"' in s or ";" in s) else s


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} × {cpu}"


def chart(out_dir, table):
    """ratios.png: throughput ratios (a)-(e) and (g)'s CPU per transaction, per proxy."""
    proxies = [t for t in table.targets if t.is_proxy]
    if not proxies:
        return None
    header = "workload " + " ".join(f'"{t.label}"' for t in proxies)
    ratio_lines, cpu_lines = [header], [header]
    for key, label, kind, base in table.rows():
        if kind == "tput":
            vals = []
            for t in proxies:
                m, b = table.med(key, t.key), table.base(key, base)
                vals.append(f"{m / b:.3f}" if m is not None and b else "?")
            ratio_lines.append(f'"{SHORT.get(key, key)}" ' + " ".join(vals))
        elif kind == "cpu":
            vals = [f"{table.med(key, t.key):.1f}" if table.med(key, t.key) is not None else "?" for t in proxies]
            rate = table.meta["rate2"] if key.startswith("g2") else table.meta["rate"]
            cpu_lines.append(f'"@{rate} {"simple" if "simple" in key else "prepared"}" ' + " ".join(vals))
    with open(os.path.join(out_dir, "ratios.dat"), "w") as f:
        f.write("\n".join(ratio_lines) + "\n")
    with open(os.path.join(out_dir, "cpu.dat"), "w") as f:
        f.write("\n".join(cpu_lines) + "\n")
    n = len(proxies) + 1
    have_ratio, have_cpu = len(ratio_lines) > 1, len(cpu_lines) > 1
    if not (have_ratio or have_cpu):
        return None
    m = table.meta
    script = f"""
set terminal pngcairo noenhanced size {1500 if have_ratio and have_cpu else 900},600 font "Sans,10"
set output "{out_dir}/ratios.png"
set datafile missing "?"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key outside bottom center horizontal
set yrange [0:*]
{"set multiplot layout 1,2" if have_ratio and have_cpu else ""}
"""
    if have_ratio:
        script += f"""
set title "Saturated throughput relative to a direct connection (1.0 = direct)\\n{m['date']}, {m['rounds']} round(s) x {m['seconds']:g} s, shared 2-core machine (noisy)"
set ylabel "ratio to direct (standby for reads, master for TPC-B)"
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 2 lc rgb "black"
set yrange [0:1.15<*]
plot for [i=2:{n}] "{out_dir}/ratios.dat" using i:xtic(1) title columnheader(i)
unset arrow 1
set yrange [0:40<*]
"""
    if have_cpu:
        script += f"""
set title "(g) the proxy's CPU per transaction at fixed rates (lower is better)\\npgrouter's target: 35 µs"
set ylabel "CPU µs per transaction (utime+stime of the proxy's processes)"
set arrow 2 from graph 0, first 35 to graph 1, first 35 nohead dt 3 lw 2 lc rgb "red"
plot for [i=2:{n}] "{out_dir}/cpu.dat" using i:xtic(1) title columnheader(i)
"""
    if have_ratio and have_cpu:
        script += "unset multiplot\n"
    r = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True)
    if r.returncode != 0:
        return f"gnuplot failed: {r.stderr.strip()}"
    return None


class _Saved:
    """What a finished run left in raw.json, shaped like the live objects."""

    def __init__(self, raw):
        self.values = {tuple(k.split("|")): v for k, v in raw["values"].items()}
        self.skips = {tuple(k.split("|")): v for k, v in raw["skips"].items()}
        self.targets = [_SavedTarget(t) for t in raw["targets"]]
        self.meta = raw["meta"]


class _SavedTarget:
    def __init__(self, d):
        self.__dict__.update(d)


def save_raw(out_dir, bench, targets, meta):
    raw = {
        "values": {f"{r}|{t}": v for (r, t), v in bench.values.items()},
        "skips": {f"{r}|{t}": v for (r, t), v in bench.skips.items()},
        "targets": [{"key": t.key, "label": t.label, "is_proxy": t.is_proxy, "reads_from": t.reads_from,
                     "notes": t.notes} for t in targets],
        "meta": meta,
    }
    with open(os.path.join(out_dir, "raw.json"), "w") as f:
        json.dump(raw, f, indent=1)


def rewrite_from_raw(out_dir):
    """Re-renders results.md, results.csv and ratios.png from raw.json (no measuring)."""
    with open(os.path.join(out_dir, "raw.json")) as f:
        saved = _Saved(json.load(f))
    write_all(out_dir, saved, saved.targets, saved.meta, save=False)


def write_all(out_dir, bench, targets, meta, save=True):
    if save:
        save_raw(out_dir, bench, targets, meta)
    table = Table(bench, targets, meta)
    md = table.markdown()
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(md)
    with open(os.path.join(out_dir, "results.csv"), "w") as f:
        f.write(table.csv())
    print(md, flush=True)
    have_gnuplot = subprocess.run(["sh", "-c", "command -v gnuplot"], capture_output=True).returncode == 0
    if have_gnuplot:
        err = chart(out_dir, table)
        if err:
            print(f"bench: {err}", flush=True)
    else:
        print("bench: gnuplot not installed (make bench-deps); no ratios.png", flush=True)
