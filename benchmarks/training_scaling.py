"""Scaling curve of the training pipeline: ``training_pipeline.py`` once per size, each in a fresh process.

Each size gets its own throwaway PostgreSQL cluster and data (``training_pipeline.py`` does both), so
the peak RSS of one size is not inflated by the one before. Prints one row per size: seconds per
stage, load rows/s, peak RSS, peak RSS / feature-matrix bytes and (with fitting) the ratio
(load + labels + features + checks) / model fitting. Sizes above ``--fit-up-to`` rows stop after the
feature stage (5-fold CV fitting grows about linearly: some 10x the 1 M fit at 10 M rows).

    .venv/bin/python benchmarks/training_scaling.py --sizes 1000000,2000000,5000000,10000000
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def run_size(rows: int, fit: bool, extra: list[str], compare_loads: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "summary.json")
        argv = [sys.executable, os.path.join(HERE, "training_pipeline.py"), "--rows", str(rows), "--json-out", out,
                *extra]
        if not fit:
            argv += ["--stages", "load,labels,features"]
        if not compare_loads:
            argv.append("--no-read-sql")
        print(f"## {rows:,} rows: {' '.join(argv[1:])}", flush=True)
        subprocess.run(argv, check=True)
        with open(out) as fh:
            return json.load(fh)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000000,2000000,5000000,10000000", help="comma list of row counts")
    parser.add_argument("--fit-up-to", type=int, default=2_000_000,
                        help="sizes above this many rows run load,labels,features only")
    parser.add_argument("--compare-loads-up-to", type=int, default=1_000_000,
                        help="sizes up to this also load the window with the old loader and read_sql")
    args, extra = parser.parse_known_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    results = [run_size(n, n <= args.fit_up_to, extra, n <= args.compare_loads_up_to) for n in sizes]

    print("\n## scaling (times are wall-clock on a shared machine: noisy; compare ratios)")
    print(f"{'rows loaded':>12s} {'load s':>7s} {'labels s':>8s} {'feat s':>7s} {'fit s':>8s} {'load rows/s':>12s} "
          f"{'peak RSS':>10s} {'matrix':>9s} {'peak/matrix':>11s} {'non-fit/fit':>11s}")
    for r in results:
        st = r["stages"]
        ratio = (f"{r['non_fitting_seconds'] / r['fitting_seconds']:.3f}" if r["fitting_seconds"] else "-")
        fit = f"{st['fit_request']:8.1f}" if "fit_request" in st else f"{'-':>8s}"
        print(f"{r['rows_loaded']:>12,} {st.get('load', 0):7.1f} {st.get('labels', 0):8.1f} {st.get('features', 0):7.1f} "
              f"{fit} {r['load_rows_per_s']:>12,.0f} "
              f"{r['peak_rss_kb'] / 2**20:>8.2f}Gi {r['matrix_bytes'] / 2**30:>7.2f}Gi "
              f"{r['peak_rss_kb'] * 1024 / r['matrix_bytes']:>11.2f} {ratio:>11s}")
    for r in results:
        t = r.get("timings")
        if t:  # the operating point and the rule-baseline comparison, against model fitting
            evaluation = t["threshold_seconds"] + t["rule_baseline_seconds"]
            print(f"  {r['rows_loaded']:,} rows, evaluation: threshold {t['threshold_seconds']:.1f}s + rule baseline "
                  f"{t['rule_baseline_seconds']:.1f}s = {evaluation / r['fitting_seconds']:.1%} of model fitting")
        for p in r["probes"]:
            print(f"  {r['rows_loaded']:,} rows, {p['kind']:13s}: {p['seconds']:6.1f}s = "
                  f"{p['rows'] / p['seconds']:>9,.0f} rows/s, +{(p['peak_rss_kb'] - p['rss_before_kb']) / 1024:,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
