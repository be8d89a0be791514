#!/usr/bin/env python3
"""Turns bench/run.sh's results.tsv (one `key<TAB>value` a line) into the
markdown tables (results.md) and every figure as JSON (results.json).

    python3 bench/report.py results.tsv results.md results.json

Exits 3 when a figure is missing (the cell then says "missing"), so a
broken row is never silent. Standard library only.
"""

import json
import sys

PATHS = ["direct", "warren", "rathole_tcp", "rathole_noise", "ssh", "stunnel"]
LABEL = {
    "direct": "direct",
    "warren": "Warren",
    "rathole_tcp": "rathole TCP",
    "rathole_noise": "rathole Noise",
    "ssh": "ssh -L",
    "stunnel": "stunnel",
}
PEERS = PATHS[2:]


def load(path):
    raw = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            k, _, v = line.partition("\t")
            raw[k] = v
    return raw


class Report:
    def __init__(self, raw):
        self.raw = raw
        self.missing = []

    def num(self, key):
        v = self.raw.get(key, "")
        try:
            x = float(v)
        except ValueError:
            self.missing.append(key)
            return None
        return x

    def text(self, key, default="unknown"):
        return self.raw.get(key) or default


def fmt(x, digits=2):
    return "missing" if x is None else f"{x:.{digits}f}"


def main():
    tsv, md_path, json_path = sys.argv[1:4]
    r = Report(load(tsv))
    meta = {k[5:]: v for k, v in r.raw.items() if k.startswith("meta.")}
    n_conn, t_pg = meta.get("n_conn", "?"), meta.get("t_pg", "?")

    # id, label, unit, better, digits, kind (rate | latency | memory)
    rows = [
        ("iperf_1", "TCP throughput, 1 stream (iperf3)", "Gbit/s", "higher", 2, "rate"),
        ("iperf_8", "TCP throughput, 8 streams (iperf3 -P 8)", "Gbit/s", "higher", 2, "rate"),
        ("rtt_p50", "64 B round trip p50", "µs", "lower", 1, "latency"),
        ("rtt_p99", "64 B round trip p99", "µs", "lower", 1, "latency"),
        ("connect", f"new connection (connect + 1-byte echo), mean of {n_conn} sequential", "ms", "lower", 3, "latency"),
        ("pg_s", f"pgbench -S -c 8 -j 2 -T {t_pg}", "TPS", "higher", 0, "rate"),
        ("pg_c", "pgbench -S -C (new connection per transaction)", "TPS", "higher", 0, "rate"),
        ("rss", "peak RSS of the path's processes (sum of VmHWM)", "MB", "lower", 1, "memory"),
    ]
    comparison = []
    check = {}
    md = []
    md.append("| measurement | " + " | ".join(LABEL[p] for p in PATHS) + " | Warren / best peer |")
    md.append("|---|" + "---|" * len(PATHS) + "---|")
    for rid, label, unit, better, digits, kind in rows:
        values = {}
        for p in PATHS:
            if rid == "rss" and p == "direct":
                values[p] = None
                continue
            v = r.num(f"{rid}.{p}")
            if v is not None and rid == "rss":
                v /= 1024  # KB -> MB
            values[p] = v
        peers = {p: values[p] for p in PEERS if values[p] is not None}
        pick = max if better == "higher" else min
        best = pick(peers, key=peers.get) if peers else None
        w, d = values["warren"], values["direct"]
        b = peers.get(best) if best else None
        entry = {
            "id": rid, "label": label, "unit": unit, "better": better,
            "values": values, "best_peer": best, "best_peer_value": b,
        }
        cells = []
        for p in PATHS:
            if rid == "rss" and p == "direct":
                cells.append("n/a")
            else:
                c = fmt(values[p], digits)
                if rid == "connect" and values[p] is not None:
                    failed = r.raw.get(f"connect_failed.{p}", "0")
                    if failed not in ("", "0"):
                        c += f" ({failed} failed)"
                if rid == "rss" and values[p] is not None:
                    c += f" ({r.raw.get(f'rss_procs.{p}', '?')} proc)"
                cells.append(c)
        if w is None or b is None:
            last = "missing"
            ratio = None
        else:
            ratio = w / b if b else None
            if kind == "rate":
                last = f"{ratio:.2f}x (best: {LABEL[best]})"
            elif kind == "latency":
                wa, ba = w - d, b - d
                entry["warren_added"], entry["best_peer_added"] = wa, ba
                last = f"{wa:+.{digits}f} vs {ba:+.{digits}f} {unit} ({LABEL[best]}); {ratio:.2f}x"
            else:
                last = f"{ratio:.2f}x {LABEL[best]}'s"
        entry["ratio"] = ratio
        comparison.append(entry)
        check[rid] = {"value": ratio, "better": better, "what": "Warren / best peer"}
        md.append(f"| {label} ({unit}) | " + " | ".join(cells) + f" | {last} |")

    md.append("")
    md.append(
        "Throughput and TPS: Warren / best peer, > 1 means Warren is better. "
        "Latency: added over direct, Warren vs the best peer, then Warren / best peer "
        "(< 1 means Warren is better). RSS: Warren / the peer with the least (< 1 is better)."
    )
    md.append("")

    # --- Warren-only rows ---
    wo = []

    def ratio_row(rid, label, d_key, w_key, digits=0, better="higher"):
        d, w = r.num(d_key), r.num(w_key)
        ratio = w / d if (w is not None and d) else None
        if better == "lower" and w is not None and d is not None:
            last = f"{w - d:+.{digits}f} µs"
        else:
            last = "missing" if ratio is None else f"{ratio:.2f}x"
        wo.append((label, fmt(d, digits), fmt(w, digits), last))
        check[rid] = {"value": ratio, "better": better, "what": "Warren / direct"}
        return {"id": rid, "label": label, "direct": d, "warren": w, "ratio": ratio}

    warren_only = [
        ratio_row("pg_rule_s", "pgbench -S, access tcp to a postgres:// rule (TPS)", "pg_s.direct", "pg_rule_s"),
        ratio_row("pg_rule_c", "pgbench -S -C, postgres:// rule (TPS)", "pg_c.direct", "pg_rule_c"),
        ratio_row("native_s", "pgbench -S, native listener (TLS + client certificate at the edge) (TPS)", "pg_s.direct", "native_s"),
        ratio_row("native_c", "pgbench -S -C, native listener (TPS)", "pg_c.direct", "native_c"),
        ratio_row("http_rps", "HTTP req/s, wrk -t2 -c32 (direct: plain HTTP; Warren: HTTPS at the edge)", "http_rps.direct", "http_rps.warren"),
        ratio_row("http_p50", "HTTP latency p50, wrk (µs)", "http_p50.direct", "http_p50.warren", 0, "lower"),
    ]

    def mb(key):
        v = r.num(key)
        return None if v is None else v / 1024

    e, c, a = mb("rss_edge"), mb("rss_connector"), mb("rss_access")
    wo.append(("peak RSS edge / connector / 3 access tcp (MB, VmHWM after the comparison rows)", "n/a",
               f"{fmt(e, 1)} / {fmt(c, 1)} / {fmt(a, 1)}", "n/a"))
    idle = mb("idle_connector")
    wo.append(("idle connector RSS, 4 connections (MB)", "n/a", fmt(idle, 1), "n/a"))
    check["idle_connector_mb"] = {"value": idle, "better": "lower", "what": "MB"}
    cpu = {k: r.num(f"cpu.{k}") for k in ("access", "edge", "connector")}
    wo.append(("CPU during the 1-stream run through Warren: access / edge / connector (% of one core)", "n/a",
               " / ".join("missing" if v is None else f"{v:.0f}%" for v in cpu.values()), "n/a"))

    n_t = r.num("tunnels")
    tb, ta = r.num("tunnel_rss_before"), r.num("tunnel_rss_after")
    per_tunnel = (ta - tb) / n_t if None not in (n_t, tb, ta) and n_t else None
    wo.append((f"edge RSS per idle connected tunnel ({fmt(n_t, 0)} connectors × 4 connections, a fresh edge) (KB)", "n/a",
               f"{fmt(per_tunnel, 0)} (edge {fmt(tb and tb / 1024, 1)} → {fmt(ta and ta / 1024, 1)} MB)", "n/a"))
    check["edge_kb_per_tunnel"] = {"value": per_tunnel, "better": "lower", "what": "KB"}

    n_s = meta.get("n_streams", "?")
    hold_secs = meta.get("hold_secs", "?")
    hold = {}
    for name in ("one", "split"):
        res = r.raw.get(f"hold_{name}.result")
        if name == "split" and res is None:
            continue
        try:
            opened = json.loads(res)
            closed = json.loads(r.raw.get(f"hold_{name}.closed", ""))
        except (TypeError, ValueError):
            r.missing.append(f"hold_{name}")
            opened, closed = {}, {}
        before, during, after = (r.num(f"hold_{name}.edge_rss_{k}") for k in ("before", "during", "after"))
        ok = opened.get("ok")
        per_stream = (during - before) / ok if ok and None not in (before, during) else None
        h = {
            "opened": opened, "closed": closed, "edge_rss_before_kb": before,
            "edge_rss_during_kb": during, "edge_rss_after_kb": after,
            "connector_rss_during_kb": r.num(f"hold_{name}.connector_rss_during"),
            "edge_fds_during": r.num(f"hold_{name}.edge_fds_during"),
            "edge_kb_per_stream": per_stream,
        }
        if name == "one":
            procs = "one access tcp"
            h["access_nofile"] = r.raw.get("hold_access_nofile")
            h["access_nofile_wanted"] = r.raw.get("hold_want_nofile")
            h["access_error_lines"] = r.raw.get("hold_one.access_errors")
            h["access_emfile_lines"] = r.raw.get("hold_one.access_emfile")
        else:
            procs = f"{r.raw.get('hold_split_processes', '?')} access tcp processes"
        hold[name] = h
        why = ", ".join(f"{k}: {v}" for k, v in (opened.get("why") or {}).items())
        limited = ""
        if (name == "one" and ok is not None and opened.get("count") and ok < opened["count"]
                and h.get("access_emfile_lines")):
            limited = (f"; limited by access tcp's descriptor limit: RLIMIT_NOFILE {h['access_nofile']} "
                       f"(wanted {h['access_nofile_wanted']}: up to 2 per connection over the WebSocket carrier, the "
                       f"local socket and its TLS connection to the edge; the hard limit could not be raised), "
                       f"{h['access_emfile_lines']} 'Too many open files' lines in its log")
        alive = closed.get("alive_after_hold")
        wo.append((f"{n_s} concurrent streams on one edge through {procs}: opened and echoed / alive after {hold_secs} s", "n/a",
                   f"{ok} / {alive} of {opened.get('count')}" + (f" (failed: {why})" if why else "") + limited, "n/a"))
        wo.append((f"edge RSS with them: before / during the hold / after they close (MB), KB per stream", "n/a",
                   f"{fmt(before and before / 1024, 1)} / {fmt(during and during / 1024, 1)} / "
                   f"{fmt(after and after / 1024, 1)}, {fmt(per_stream, 1)} KB"
                   + (" (the edge reuses what the first hold left allocated)" if name == "split" else ""), "n/a"))
        h["procs"] = procs
    # The edge's memory per stream from the first hold (the edge keeps what
    # it allocated, so a second hold reuses it and shows little growth);
    # whether all N could be held from the last one.
    first = hold.get("one")
    if first:
        check["edge_kb_per_stream"] = {"value": first["edge_kb_per_stream"], "better": "lower",
                                       "what": f"KB, {first['procs']}, the first hold"}
    last_hold = hold.get("split") or first
    if last_hold:
        cnt, ok = last_hold["opened"].get("count"), last_hold["opened"].get("ok")
        check["hold_ok_fraction"] = {"value": (ok / cnt) if ok is not None and cnt else None,
                                     "better": "higher", "what": f"streams opened / asked, {last_hold['procs']}"}

    md.append("| Warren only | direct | Warren | Warren / direct |")
    md.append("|---|---|---|---|")
    for label, d, w, last in wo:
        md.append(f"| {label} | {d} | {w} | {last} |")
    md.append("")
    logs = {k: r.raw.get(f"log_lines.{k}", "?") for k in ("edge", "connector", "mem-edge", "hold-connector", "access")}
    md.append(
        f"Paths: rathole {meta.get('rathole_version', '?')}; "
        f"{meta.get('ssh_version', '?')}, cipher {meta.get('ssh_cipher', '?')}, kex {meta.get('ssh_kex', '?')}; "
        f"{meta.get('stunnel_version', '?')}, {meta.get('stunnel_tls', '?')}. "
        f"Warren WARN/ERROR log lines: edge {logs['edge']}, connector {logs['connector']}, access tcp {logs['access']}, "
        f"memory-row edge {logs['mem-edge']} and its hold connector {logs['hold-connector']} "
        f"(first 200 in bench/out/warren-warnings.log). "
        f"BENCH_QUICK={meta.get('quick', '?')}, commit {meta.get('commit', '?')}, {meta.get('date', '?')}, "
        f"{meta.get('seconds', '?')} s."
    )
    if r.missing:
        md.append("")
        md.append("MISSING figures (their cells say so): " + ", ".join(sorted(set(r.missing))))
    out = "\n".join(md) + "\n"
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(out)
    doc = {
        "meta": meta,
        "paths": {p: LABEL[p] for p in PATHS},
        "comparison": comparison,
        "warren_only": warren_only,
        "memory": {
            "peak_rss_kb": {"edge": r.num("rss_edge"), "connector": r.num("rss_connector"), "access": r.num("rss_access")},
            "idle_connector_kb": r.num("idle_connector"),
            "tunnels": {"count": n_t, "edge_rss_before_kb": tb, "edge_rss_after_kb": ta, "edge_kb_per_tunnel": per_tunnel},
            "hold": hold,
        },
        "cpu_percent_of_one_core": cpu,
        "logs_warn_error_lines": logs,
        "check": check,
        "missing": sorted(set(r.missing)),
        "raw": r.raw,
    }
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
        f.write("\n")
    return 3 if r.missing else 0


if __name__ == "__main__":
    sys.exit(main())
