#!/usr/bin/env python3
"""Helper of scripts/bench/cluster.sh: talks to the replicas' HTTP APIs and does the sums.

  cluster_stats.py checks N                  the `checks.http` YAML block of N checks
  cluster_stats.py leader PORT...            "ID PORT" of the leader all answering replicas name
  cluster_stats.py scrape PORT               JSON: feed lag summaries, leader gauge, evaluations
  cluster_stats.py failover PID ID PORT...   SIGKILLs PID (replica ID), polls the other ports
                                             every 100 ms until one names another leader;
                                             prints the seconds it took (or "timeout")
  cluster_stats.py member ID TIMEOUT PORT... waits until a replica lists ID in `replicas`
  cluster_stats.py report FILE               the figures, from the key=value file the script wrote
"""

import json
import os
import re
import signal
import statistics
import sys
import time
import urllib.request

HTTP_TIMEOUT = 2.0


def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=HTTP_TIMEOUT) as r:
            return r.read().decode()
    except Exception:
        return None


def get_json(port, path):
    text = get(port, path)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            continue
        labels = dict(LABEL.findall(m.group(2) or ""))
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        out.append((m.group(1), labels, value))
    return out


def cmd_checks(n):
    """Cheap endpoints of the sandbox: liveness, the four service health checks (one SQLite
    read each) and the in-memory taxonomy search (rate limit lifted by the script)."""
    words = ["tools", "garden", "pet", "shoes", "lamp", "paint", "hose", "drill"]
    urls = ["/healthz"] + [f"/svc/{s}/healthz" for s in
                           ("auth", "inventory", "business_profile", "integrations")]
    urls += [f"/api/taxonomy?q={w}" for w in words]
    lines = ["  http:"]
    for i in range(n):
        url = urls[i % len(urls)]
        expect = "{ status: 200, json: { /status: ok } }" if "healthz" in url and url != "/healthz" \
            else "{ status: 200 }"
        lines.append(f"    - {{ name: c{i:04d}, url: \"{url}\", expect: {expect} }}")
    print("\n".join(lines))


def cmd_leader(ports):
    views = {p: get_json(p, "/api/v1/cluster") for p in ports}
    leaders = {p: v for p, v in views.items() if v and v.get("role") == "leader"}
    named = {v.get("leader") for v in views.values() if v}
    if len(leaders) == 1 and len(named) == 1:
        p, v = next(iter(leaders.items()))
        if v["replica"] in named:
            print(v["replica"], p)
            return 0
    return 1


def cmd_scrape(port):
    text = get(port, "/metrics")
    if text is None:
        print("{}")
        return 1
    lag = {}
    leader = None
    for name, labels, value in parse_metrics(text):
        if name.startswith("synmon_cluster_feed_lag_seconds"):
            loc = labels.get("location", "")
            d = lag.setdefault(loc, {})
            if name == "synmon_cluster_feed_lag_seconds" and "quantile" in labels:
                d["q" + labels["quantile"]] = value
            elif name.endswith("_sum"):
                d["sum"] = value
            elif name.endswith("_count"):
                d["count"] = value
        elif name == "synmon_cluster_leader" and value == 1:
            leader = labels.get("replica")
    alerts = get_json(port, "/api/v1/alerts") or {}
    print(json.dumps({"t": time.time(), "leader": leader, "lag": lag,
                      "evaluations": alerts.get("evaluations")}))
    return 0


def cmd_failover(pid, killed, ports):
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    deadline = t0 + 120
    while time.monotonic() < deadline:
        for p in ports:
            v = get_json(p, "/api/v1/cluster")
            if v and v.get("leader") and v["leader"] != killed:
                print(f"{time.monotonic() - t0:.2f} {v['leader']} {v.get('epoch')}")
                return 0
        time.sleep(0.1)
    print("timeout - -")
    return 1


def cmd_member(rid, timeout, ports):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in ports:
            v = get_json(p, "/api/v1/cluster")
            if v and any(r.get("id") == rid for r in v.get("replicas", [])):
                return 0
        time.sleep(0.2)
    return 1


def quantile(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def cmd_report(path):
    kv = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            kv.setdefault(k, []).append(v)
    one = lambda k: kv[k][-1]
    a = json.loads(one("scrape_a"))
    b = json.loads(one("scrape_b"))
    window = float(one("t_b")) - float(one("t_a"))
    eval_s = float(one("eval_interval"))
    goal = eval_s + 2
    print(f"steady window: {window:.0f} s, evaluation_interval {eval_s:.0f} s, "
          f"leader {b['leader']} (unchanged: {a['leader'] == b['leader']})")

    print("\n1. Feed lag (run end on another replica -> read by the leader for evaluation)")
    print("   synmon_cluster_feed_lag_seconds is a summary, not a bucketed histogram: quantiles")
    print("   0.5/0.95/0.99 over the minute slices of the last 5 minutes, _sum/_count since start.")
    print("   Quantiles below: the leader's scrape at the end of the window, which reads the minute")
    if window >= 360:
        print("   slices overlapping the last 5 minutes: inside the steady window, warm-up excluded.")
    else:
        print(f"   slices overlapping the last 5 minutes: the window is only {window:.0f} s, so they")
        print("   include warm-up too.")
    print("   The mean is exact over the window: (sum_end - sum_start) / (count_end - count_start).")
    print("   Per location (the leader's own location: its siblings' runs).")
    worst_p99 = 0.0
    worst_p50 = 0.0
    for loc in sorted(b["lag"]):
        lb, la = b["lag"][loc], a["lag"].get(loc, {})
        n = lb.get("count", 0) - la.get("count", 0)
        s = lb.get("sum", 0) - la.get("sum", 0)
        mean = s / n if n else float("nan")
        p50, p95, p99 = lb.get("q0.5", float("nan")), lb.get("q0.95", float("nan")), lb.get("q0.99", float("nan"))
        worst_p99 = max(worst_p99, p99)
        worst_p50 = max(worst_p50, p50)
        print(f"   {loc}: runs read {n:.0f}, mean {mean:.2f} s, p50 {p50:.2f} s, "
              f"p95 {p95:.2f} s, p99 {p99:.2f} s")
    samples = [json.loads(x) for x in kv.get("scrape_mid", [])]
    mids = [max((l.get("q0.99", 0) for l in s["lag"].values()), default=0) for s in samples]
    if mids:
        print(f"   p99 sampled every 30 s during the window (worst location): max {max(mids):.2f} s")
    verdict = "PASS" if worst_p99 <= goal and b["lag"] else "MISS"
    print(f"   p50 {worst_p50:.2f} s, p99 {worst_p99:.2f} s (worst location; the pooled p99 is at most this)")
    print(f"   goal p99 <= evaluation_interval + 2 s = {goal:.0f} s: {verdict}")

    print("\n2. Leader CPU for evaluation")
    hz = float(one("clk_tck"))
    cpu = {}
    for line in kv["cpu"]:
        rid, loc, ta, tb = line.split()
        cpu[rid] = (loc, (int(tb) - int(ta)) / hz)
    leader = b["leader"]
    lloc, lcpu = cpu[leader]
    followers = [c for r, (l, c) in cpu.items() if l == lloc and r != leader]
    fmean = statistics.mean(followers) if followers else 0.0
    extra = lcpu - fmean
    evals = (b.get("evaluations") or 0) - (a.get("evaluations") or 0)
    print(f"   leader {leader}: {lcpu:.1f} CPU s; followers of {lloc}: "
          + ", ".join(f"{c:.1f}" for c in followers) + f" CPU s (mean {fmean:.1f})")
    per_eval = extra / evals if evals else float("nan")
    print(f"   leader - follower mean: {extra:.1f} CPU s over {window:.0f} s = "
          f"{100 * extra / window:.1f}% of one core; {evals} evaluations, {per_eval:.2f} CPU s each")

    print("\n3. Store growth (PostgreSQL), extrapolated to 24 h")
    day = 86400 / window
    for line in kv["table"]:
        name, ra, rb, ba, bb = line.split()
        dr, db = int(rb) - int(ra), int(bb) - int(ba)
        print(f"   {name:18} +{dr:>9} rows, +{db / 2**20:8.1f} MiB -> "
              f"{dr * day / 1e6:8.2f} M rows/day, {db * day / 2**30:7.2f} GiB/day")
    total_cpu = sum(c for _, c in cpu.values())
    ncpu = int(one("nproc"))
    busy = float(one("machine_busy"))
    print(f"   all {len(cpu)} replicas: {total_cpu:.1f} CPU s = {100 * total_cpu / (window * ncpu):.1f}% "
          f"of the machine ({ncpu} cores); whole machine busy {100 * busy:.1f}%; "
          f"load average at the start {one('loadavg_a')}, at the end {one('loadavg')}")

    if "failover" in kv:
        print("\n4. Failover (SIGKILL the leader -> another replica names a new leader)")
        times = []
        unasked = 0
        prev_new, prev_epoch = None, None
        for i, line in enumerate(kv["failover"], 1):
            secs, killed, new, epoch = line.split()
            note = ""
            if prev_new is not None and (killed != prev_new or
                                         (epoch.isdigit() and prev_epoch.isdigit()
                                          and int(epoch) != int(prev_epoch) + 1)):
                unasked += 1
                note = " (the leader changed since the previous kill without one)"
            print(f"   kill {i}: {killed} -> {new} (epoch {epoch}): {secs} s{note}")
            prev_new, prev_epoch = new, epoch
            if secs != "timeout":
                times.append(float(secs))
        if unasked:
            print(f"   WARNING: {unasked} kill(s) found a leader that had not been the previous new")
            print("   leader or an epoch that skipped: leadership moved without a kill, so those")
            print("   figures time a lease that was lapsing anyway, not only the kill")
        if times:
            ok = len(times) == len(kv["failover"]) and max(times) <= 15
            print(f"   median {statistics.median(times):.2f} s, max {max(times):.2f} s "
                  f"over {len(times)}/{len(kv['failover'])}; goal <= 15 s: {'PASS' if ok else 'MISS'}")
        else:
            print("   no failover completed: MISS")
    return 0


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "checks":
        return cmd_checks(int(args[0])) or 0
    if cmd == "leader":
        return cmd_leader(args)
    if cmd == "scrape":
        return cmd_scrape(args[0])
    if cmd == "failover":
        return cmd_failover(int(args[0]), args[1], args[2:])
    if cmd == "member":
        return cmd_member(args[0], float(args[1]), args[2:])
    if cmd == "report":
        return cmd_report(args[0])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
