"""Calibration of the hierarchical panel (simulation-based): are the pooled parameters covered
at the nominal rate?

For each of ``--datasets`` seeds: draw the pooled parameters from their priors
(``models.panel.pooled_priors``), simulate a panel of ``P`` series x ``T`` steps (per-series
start dates and 10 % missing entries), run NUTS (``examples/panel.py``'s ``fit``, Kalman
route: 2 chains of ``--draws`` warm-up + ``--draws`` kept) and record whether each pooled
parameter's central 90 % interval contains the value the data came from, the largest r_hat
over all latent sites and the divergences. With
the truth drawn from the prior, correct inference covers each parameter with probability 0.90
exactly, so the count over ``datasets x 5`` intervals is Binomial(n, 0.9).

    python benchmarks/panel_calibration.py                     # 10 data sets, P = 50, T = 100
    python benchmarks/panel_calibration.py --datasets 3 -P 20  # smaller

Prints one line per data set and a summary; writes ``benchmarks/results/panel_calibration.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT))

import _common  # noqa: E402,F401  (float64)
import panel as example  # noqa: E402  (examples/panel.py)
from scipy import stats  # noqa: E402

from models import panel  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=10)
    parser.add_argument("-P", type=int, default=50)
    parser.add_argument("-T", type=int, default=100)
    parser.add_argument("--draws", type=int, default=500, help="warm-up and kept, per chain")
    parser.add_argument("--prob", type=float, default=0.9)
    parser.add_argument("--centered", default="1",
                        help="the log-volatilities' centredness: a number in [0, 1], or 'data' "
                             "(models.panel.centredness, one per series)")
    parser.add_argument("--dense-pooled", action="store_true",
                        help="a dense mass matrix for the five pooled parameters")
    parser.add_argument("--seeds", default=None, help="comma-separated data sets (default: "
                                                      "0 .. datasets - 1)")
    parser.add_argument("--num-chains", type=int, default=2)
    parser.add_argument("--out", default="panel_calibration.json")
    args = parser.parse_args()
    rows = []
    seeds = (range(args.datasets) if args.seeds is None
             else [int(x) for x in args.seeds.split(",")])
    centered = args.centered if args.centered == "data" else float(args.centered)
    for seed in seeds:
        data = panel.simulate(seed, args.P, args.T, hyper="prior")
        start = time.perf_counter()
        mcmc = example.fit(data["y"], seed=seed, num_warmup=args.draws, num_samples=args.draws,
                           num_chains=args.num_chains, centered=centered,
                           dense_pooled=args.dense_pooled)
        table, r_hat, divergences = example.pooled_summary(mcmc, data, args.prob)
        seconds = time.perf_counter() - start
        row = {"seed": seed, "seconds": seconds, "r_hat": r_hat, "divergences": divergences,
               "truth": {k: data[k] for k in panel.HYPER},
               "covered": {k: v[-1] for k, v in table.items()},
               "interval": {k: v[1:3] for k, v in table.items()},
               "ess": {k: v[4] for k, v in table.items()}}
        rows.append(row)
        missed = [k for k, c in row["covered"].items() if not c]
        print(f"data set {seed}: {seconds:.0f} s, max r_hat {r_hat:.4f}, {divergences} "
              f"divergences, min ESS {min(row['ess'].values()):.0f}, not covered: "
              f"{', '.join(missed) or 'none'}", flush=True)
        _write(args, rows)  # after every data set: a long run stopped early keeps its rows
    n = sum(len(r["covered"]) for r in rows)
    covered = sum(sum(r["covered"].values()) for r in rows)
    lo, hi = stats.binom.ppf([0.025, 0.975], n, args.prob)
    per_param = {k: sum(r["covered"][k] for r in rows) for k in panel.HYPER}
    print(f"\ncovered {covered} of {n} {100 * args.prob:.0f}% intervals ({covered / n:.2f}); "
          f"95% range of Binomial({n}, {args.prob}): [{lo:.0f}, {hi:.0f}]")
    print("per parameter:", ", ".join(f"{k} {v}/{len(rows)}" for k, v in per_param.items()))
    print(f"max r_hat {max(r['r_hat'] for r in rows):.4f}, divergences "
          f"{sum(r['divergences'] for r in rows)}")


def _write(args, rows):
    RESULTS.mkdir(exist_ok=True)
    covered = sum(sum(r["covered"].values()) for r in rows)
    n = sum(len(r["covered"]) for r in rows)
    (RESULTS / args.out).write_text(json.dumps(
        {"args": vars(args), "covered": covered, "n": n, "rows": rows}, indent=1,
        default=float))


if __name__ == "__main__":
    main()
