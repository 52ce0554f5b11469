#!/usr/bin/env python3
"""bench/run.sh's report: checks every cell, prints the tables, writes the JSON.

With several rounds, each cell of the tables is the median over the rounds (req/s, latency,
CPU, each on its own) and each ratio is the ratio of those medians; the ratio in each round is
listed beside it, so that the spread the machine's noise causes is in plain sight.

Checks (never timings): every cell of every round produced numbers (requests, req/s, p50, p99); the status
codes are the expected ones — a valid token through an auth setup, or any request through a
setup without auth, gets 200 (the first request exactly, then at least 99.9 % 2xx by wrk's
count and by the Envoy's own counters); a request without a token through an auth setup gets
401 (first request exactly, then at least 99.9 % non-2xx/4xx). Exits 1 if any check fails.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import statistics
import sys

SETUPS = {
    "nofilter": "no auth filter (the router only)",
    "trivial": "trivial wasm filter (reads one header, adds one): the floor of any wasm filter",
    "trivial_noop": "trivial wasm filter with its header calls switched off",
    "jwt_authn": "Envoy's native jwt_authn, no cache",
    "jwt_authn_cache": "Envoy's native jwt_authn with jwt_cache_config",
    "plugin": "this plugin, the same configuration as jwt_authn",
    "plugin_cache": "this plugin, the same configuration plus jwt_cache_config",
}
WORKLOADS = {
    "rs256_one": "one RS256 token, repeated",
    "rs256_distinct": "distinct RS256 tokens, cycled in order",
    "es256_distinct": "distinct ES256 tokens, cycled in order",
    "none": "no token (auth setups reject: 401)",
}
SETUP_ORDER = ["nofilter", "trivial", "jwt_authn", "jwt_authn_cache", "plugin", "plugin_cache"]
MIN_SHARE = 0.999


def load(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def check_cell(c, failures):
    name = f"{c['setup']}/{c['workload']} (concurrency {c['envoy_concurrency']}, -c{c['connections']})"
    n = c["requests"]
    if not (n > 0 and c["rps"] > 0 and c["p50_ms"] > 0 and c["p99_ms"] > 0):
        failures.append(f"{name}: no numbers (requests {n}, rps {c['rps']}, p50 {c['p50_ms']}, p99 {c['p99_ms']})")
        return
    if c["preflight_status"] != c["expected_status"]:
        failures.append(f"{name}: first request got {c['preflight_status']}, expected {c['expected_status']}")
    rq = c["envoy_rq"]
    total = rq["downstream_rq_2xx"] + rq["downstream_rq_4xx"] + rq["downstream_rq_5xx"]
    if total <= 0:
        failures.append(f"{name}: the Envoy counted no responses")
        return
    if c["expected_status"] == 200:
        ok_wrk = (n - c["wrk_non2xx3xx"]) / n
        ok_envoy = rq["downstream_rq_2xx"] / total
    else:
        ok_wrk = c["wrk_non2xx3xx"] / n
        ok_envoy = rq["downstream_rq_4xx"] / total
    if ok_wrk < MIN_SHARE or ok_envoy < MIN_SHARE:
        failures.append(
            f"{name}: expected {c['expected_status']}: share by wrk {ok_wrk:.4%}, by the Envoy's counters "
            f"{ok_envoy:.4%} (2xx {rq['downstream_rq_2xx']}, 4xx {rq['downstream_rq_4xx']}, "
            f"5xx {rq['downstream_rq_5xx']})"
        )


# The per-cell numbers a median is taken of; the rest (status counts, stats) is per round.
TIMINGS = ("rps", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "max_ms", "envoy_cpu_us_per_req",
           "envoy_worker_cpu_us_per_req", "envoy_user_us_per_req", "envoy_sys_us_per_req")


def median_cells(rounds):
    """One cell per (setup, workload): each timing the median over the rounds."""
    groups = {}
    for c in rounds:
        groups.setdefault((c["setup"], c["workload"]), []).append(c)
    out = {}
    for key, cs in groups.items():
        cs = sorted(cs, key=lambda c: c["round"])
        m = {k: v for k, v in cs[0].items() if k not in TIMINGS and k != "round"}
        for k in TIMINGS:
            values = [c[k] for c in cs if c.get(k) is not None]
            m[k] = round(statistics.median(values), 3) if values else None
        m["rounds"] = len(cs)
        m["requests"] = sum(c["requests"] for c in cs)
        m["rps_by_round"] = [c["rps"] for c in cs]
        m["envoy_cpu_us_per_req_by_round"] = [c["envoy_cpu_us_per_req"] for c in cs]
        out[key] = m
    return out


def ratio(a, b):
    return round(a / b, 3) if a and b else None


def fmt_ratio(r):
    return "—" if r is None else f"{r:.2f}×"


def main():
    ap = argparse.ArgumentParser()
    for flag in ("out", "work", "mode", "envoy-version", "plugin-wasm", "trivial-wasm", "git-head",
                 "plugin-source-dirty"):
        ap.add_argument(f"--{flag}", required=True)
    for flag in ("rounds", "duration", "warmup", "distinct", "cache-size", "connections", "rss-load", "elapsed"):
        ap.add_argument(f"--{flag}", type=int, required=True)
    a = ap.parse_args()

    matrix = load(os.path.join(a.work, "matrix.jsonl"))
    floor = load(os.path.join(a.work, "floor.jsonl"))
    collapse = load(os.path.join(a.work, "collapse.jsonl"))
    rss = load(os.path.join(a.work, "rss.jsonl"))

    # Checks: one per cell of every round, plus one per missing cell and one each for memory
    # and no-collapse.
    failures, passed, failed = [], 0, 0
    expected_cells = {(s, w, r) for s in SETUP_ORDER for w in WORKLOADS for r in range(1, a.rounds + 1)}
    missing = expected_cells - {(c["setup"], c["workload"], c["round"]) for c in matrix}
    for s, w, r in sorted(missing):
        failures.append(f"{s}/{w} round {r}: no cell")
        failed += 1
    for c in matrix + floor + collapse:
        before = len(failures)
        check_cell(c, failures)
        if len(failures) > before:
            failed += 1
        else:
            passed += 1
    if len(collapse) != 3:
        failures.append(f"no-collapse check: {len(collapse)} of 3 cells")
        failed += 1
    if len(rss) != 4 or any(r["vmrss_after_load_kib"] <= 0 for r in rss):
        failures.append("memory: missing VmRSS numbers")
        failed += 1
    else:
        passed += 1

    cell = median_cells(matrix)
    by_round = {(c["setup"], c["workload"], c["round"]): c["rps"] for c in matrix}

    def round_ratios(s, base, w):
        return [ratio(by_round.get((s, w, r)), by_round.get((base, w, r))) for r in range(1, a.rounds + 1)]

    ratios = {}
    for w in WORKLOADS:
        base = cell.get(("jwt_authn", w), {}).get("rps")
        base_cache = cell.get(("jwt_authn_cache", w), {}).get("rps")
        ratios[w] = {
            s: {"vs_jwt_authn": ratio(cell[(s, w)]["rps"], base),
                "vs_jwt_authn_cache": ratio(cell[(s, w)]["rps"], base_cache),
                "vs_jwt_authn_by_round": round_ratios(s, "jwt_authn", w),
                "vs_jwt_authn_cache_by_round": round_ratios(s, "jwt_authn_cache", w),
                "vs_trivial_by_round": round_ratios(s, "trivial", w)}
            for s in SETUP_ORDER if (s, w) in cell
        }

    # Where the wasm floor goes: Envoy CPU per request, no token, one worker.
    floor_summary = {}
    noop = next((c for c in floor if c["setup"] == "trivial_noop"), None)
    rows = [cell.get(("nofilter", "none")), noop, cell.get(("trivial", "none"))]
    if all(rows):
        nf, nop, tr = rows
        floor_summary = {
            "workload": "none",
            "envoy_cpu_us_per_req": {"nofilter": nf["envoy_cpu_us_per_req"],
                                     "trivial_noop": nop["envoy_cpu_us_per_req"],
                                     "trivial": tr["envoy_cpu_us_per_req"]},
            "rps": {"nofilter": nf["rps"], "trivial_noop": nop["rps"], "trivial": tr["rps"]},
            "envoy_user_sys_us_per_req": {k: [c["envoy_user_us_per_req"], c["envoy_sys_us_per_req"]]
                                          for k, c in (("nofilter", nf), ("trivial_noop", nop), ("trivial", tr))},
            "wasm_filter_present_us": round(nop["envoy_cpu_us_per_req"] - nf["envoy_cpu_us_per_req"], 1),
            "two_header_calls_us": round(tr["envoy_cpu_us_per_req"] - nop["envoy_cpu_us_per_req"], 1),
        }

    collapse_summary = {}
    cc = {c["setup"]: c for c in collapse}
    if {"nofilter", "plugin", "jwt_authn"} <= cc.keys():
        single = cell.get(("plugin", "rs256_distinct"))
        collapse_summary = {
            "envoy_concurrency": cc["plugin"]["envoy_concurrency"],
            "connections": cc["plugin"]["connections"],
            "workload": "rs256_distinct",
            "rps": {s: cc[s]["rps"] for s in ("nofilter", "jwt_authn", "plugin")},
            "p99_ms": {s: cc[s]["p99_ms"] for s in ("nofilter", "jwt_authn", "plugin")},
            "plugin_vs_nofilter": ratio(cc["plugin"]["rps"], cc["nofilter"]["rps"]),
            "jwt_authn_vs_nofilter": ratio(cc["jwt_authn"]["rps"], cc["nofilter"]["rps"]),
            "plugin_vs_jwt_authn": ratio(cc["plugin"]["rps"], cc["jwt_authn"]["rps"]),
            "plugin_concurrency4_vs_concurrency1": ratio(cc["plugin"]["rps"], single["rps"] if single else None),
        }

    with open(a.plugin_wasm, "rb") as f:
        wasm = f.read()
    cores = os.cpu_count()
    cpu_model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu_model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass

    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        "mode": a.mode,
        "envoy_version": a.envoy_version,
        "machine": {"cores": cores, "cpu_model": cpu_model, "kernel": platform.release(),
                    "note": "one run on a shared, noisy machine"},
        "plugin": {"wasm_bytes": len(wasm), "wasm_sha256": hashlib.sha256(wasm).hexdigest(),
                   "git_head": a.git_head, "source_dirty": a.plugin_source_dirty == "true"},
        "trivial_filter_wasm_bytes": os.path.getsize(a.trivial_wasm),
        "params": {"duration_s": a.duration, "warmup_s": a.warmup, "distinct_tokens": a.distinct,
                   "jwt_cache_size": a.cache_size, "wrk": f"-t1 -c{a.connections} -d{a.duration}s --latency",
                   "rounds": a.rounds,
                   "envoy_concurrency": 1, "rss_load_s": a.rss_load,
                   "upstream": "a second Envoy (--concurrency 1) answering 200 with direct_response",
                   "keys": "local_jwks inline: RSA-2048 (RS256) and P-256 (ES256), demo-idp's fixed test keys"},
        "setups": {s: SETUPS[s] for s in SETUP_ORDER + ["trivial_noop"]},
        "workloads": WORKLOADS,
        "cells": [cell[(s, w)] for w in WORKLOADS for s in SETUP_ORDER if (s, w) in cell],
        "cells_by_round": matrix,
        "ratios": ratios,
        "floor": {"cells": floor, "summary": floor_summary},
        "memory": rss,
        "no_collapse": {"cells": collapse, "summary": collapse_summary},
        "checks": {"passed": not failures, "failures": failures},
        "elapsed_s": a.elapsed,
    }
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
        f.write("\n")

    # The tables (markdown, pasted into the README as they are).
    out = []
    out.append(f"{a.mode} run, {result['date']}, Envoy {a.envoy_version}, {cores} cores ({cpu_model}); "
               f"Envoy --concurrency 1, wrk -t1 -c{a.connections}, {a.warmup} s warm-up + {a.duration} s per cell, "
               f"{a.rounds} round(s), medians; "
               f"{a.distinct} distinct tokens; jwt_cache_size {a.cache_size}; plugin {len(wasm)} bytes")
    out.append("")
    out.append("| workload | setup | req/s | p50 ms | p99 ms | Envoy CPU µs/req | vs jwt_authn | vs jwt_authn+cache |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for w in WORKLOADS:
        for s in SETUP_ORDER:
            c = cell.get((s, w))
            if not c:
                continue
            r = ratios[w][s]
            out.append(f"| {w} | {s} | {c['rps']:.0f} | {c['p50_ms']:.2f} | {c['p99_ms']:.2f} | "
                       f"{c['envoy_cpu_us_per_req']} | {fmt_ratio(r['vs_jwt_authn'])} | "
                       f"{fmt_ratio(r['vs_jwt_authn_cache'])} |")
    if floor_summary:
        f_ = floor_summary
        out.append("")
        out.append("Wasm floor (no token, Envoy CPU µs per request): "
                   f"no filter {f_['envoy_cpu_us_per_req']['nofilter']}, "
                   f"trivial filter without header calls {f_['envoy_cpu_us_per_req']['trivial_noop']}, "
                   f"trivial filter {f_['envoy_cpu_us_per_req']['trivial']} "
                   f"(the filter's presence +{f_['wasm_filter_present_us']}, "
                   f"one header read + one header add +{f_['two_header_calls_us']}); user/system split: "
                   + ", ".join(f"{k} {u}/{sy}" for k, (u, sy) in f_["envoy_user_sys_us_per_req"].items()))
    if a.rounds > 1:
        def spread(rs):
            return ", ".join(fmt_ratio(r) for r in rs)
        out.append("")
        out.append("The ratios the targets name, round by round: "
                   f"rs256_distinct plugin/jwt_authn {spread(ratios['rs256_distinct']['plugin']['vs_jwt_authn_by_round'])}; "
                   f"rs256_one plugin/jwt_authn+cache {spread(ratios['rs256_one']['plugin']['vs_jwt_authn_cache_by_round'])}; "
                   f"rs256_one plugin/trivial {spread(ratios['rs256_one']['plugin']['vs_trivial_by_round'])}; "
                   f"es256_distinct plugin/jwt_authn {spread(ratios['es256_distinct']['plugin']['vs_jwt_authn_by_round'])}")
    hits = [c for c in matrix if c.get("plugin_token_cache")]
    if hits:
        out.append("")
        out.append("Plugin stats per cell (token_cache hit/miss, crypto.host): " + "; ".join(
            f"{c['setup']}/{c['workload']}/r{c['round']} {c['plugin_token_cache']['hit']}/{c['plugin_token_cache']['miss']}, "
            f"{c['plugin_crypto_host']}" for c in hits))
    if rss:
        out.append("")
        out.append(f"| memory (--concurrency {rss[0]['envoy_concurrency']}) | VmRSS idle MiB | VmRSS after load MiB | "
                   "tcmalloc allocated MiB |")
        out.append("|---|---:|---:|---:|")
        for r in rss:
            out.append(f"| {r['setup']} | {r['vmrss_idle_kib'] / 1024:.1f} | {r['vmrss_after_load_kib'] / 1024:.1f} | "
                       f"{r['tcmalloc_allocated_bytes'] / 1048576:.1f} |")
    if collapse_summary:
        cs = collapse_summary
        out.append("")
        out.append(f"No collapse (--concurrency {cs['envoy_concurrency']}, wrk -t1 -c{cs['connections']}, "
                   f"distinct RS256): req/s no filter {cs['rps']['nofilter']:.0f}, jwt_authn "
                   f"{cs['rps']['jwt_authn']:.0f}, plugin {cs['rps']['plugin']:.0f}; plugin/no filter "
                   f"{fmt_ratio(cs['plugin_vs_nofilter'])}, jwt_authn/no filter "
                   f"{fmt_ratio(cs['jwt_authn_vs_nofilter'])}, plugin at concurrency "
                   f"{cs['envoy_concurrency']} vs 1: {fmt_ratio(cs['plugin_concurrency4_vs_concurrency1'])}")
    out.append("")
    out.append(f"Written to {a.out} ({a.elapsed} s).")
    print("\n".join(out))
    if failures:
        print("\nCHECKS FAILED:", file=sys.stderr)
        for f_ in failures:
            print(f"  - {f_}", file=sys.stderr)
    # The closing line, in the plain form CI reads.
    print(f"bench: {passed} passed, {failed} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
