"""The panel log-likelihood at scale: value+grad for P = 1..1,000 series, on 1 and 2 devices.

``models/panel.py``'s panel (``T`` steps, ``N`` states per series, per-series start dates and
10 % missing entries), the jitted value and gradient of the summed Kalman log-likelihood with
respect to every series' ``rho``, ``sigma`` and the common ``obs_sd``, called from Python
(dispatch included: it dominates at P = 1): all series vectorised at once, and in sequential
rounds of 20 (``chunk``), on one device (``jax.devices()[0]``) and with the series axis split
over two (``models.panel.shard_series``: a ``NamedSharding`` over a ``Mesh`` of both; a single
series is padded with an empty one). On a CPU the two devices are forced with
``--xla_force_host_platform_device_count=2`` (set here before JAX starts): two XLA CPU devices
sharing the machine's cores. Medians over repeats; prints a Markdown table and writes
``benchmarks/results/panel.json``.

    python benchmarks/panel.py                    # P = 1, 10, 100, 1000; N = 2, 5; T = 200
    python benchmarks/panel.py --quick            # fewer repeats, P up to 100
    python benchmarks/panel.py --complete         # no missing entries (steady-state switch)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_force_host_platform_device_count=2").strip()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from models import panel  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
#: series per sequential round (``models.panel.loglik``'s ``chunk``); divides 10, 100, 1,000
CHUNK = 20


def _median_time(f, args, repeats, number):
    """Median over ``repeats`` of the mean time of ``number`` calls, each waited for: with
    calls queued asynchronously, the forced CPU devices' all-reduces of consecutive calls can
    hold every thread of XLA's pool (as many as cores) waiting for a partner that has no thread
    left to run on: a deadlock, which XLA aborts after 40 s."""
    jax.block_until_ready(f(*args))  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            jax.block_until_ready(f(*args))
        times.append((time.perf_counter() - start) / number)
    return float(np.median(times))


def measure(P, N, T, devices, repeats, missing, chunk=None):
    data = panel.simulate(0, P, T, n_states=N, missing=missing,
                          late_start=0.25 if missing else 0.0)
    rho, sigma, y = data["rho"], data["sigma"], data["y"]
    if devices > 1:
        rho, sigma, y = panel.shard_series(*panel.pad_series(devices, rho, sigma, y),
                                           devices=jax.devices()[:devices])
    else:
        rho, sigma, y = (jax.device_put(x, jax.devices()[0]) for x in (rho, sigma, y))
    chunk = None if chunk is None else min(chunk, y.shape[0])
    f = jax.jit(jax.value_and_grad(panel.loglik, argnums=(0, 1, 2)), static_argnums=(4, 5))
    args = (rho, sigma, data["obs_sd"], y, N, chunk)
    start = time.perf_counter()
    jax.block_until_ready(f(*args))
    compile_s = time.perf_counter() - start
    number = max(1, int(0.2 / max(_median_time(f, args, 1, 1), 1e-6)))
    return {"P": P, "N": N, "T": T, "devices": devices, "chunk": chunk, "compile_s": compile_s,
            "seconds": _median_time(f, args, repeats, number)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--complete", action="store_true", help="no missing entries")
    parser.add_argument("-T", type=int, default=200)
    args = parser.parse_args()
    sizes = (1, 10, 100) if args.quick else (1, 10, 100, 1000)
    repeats = 3 if args.quick else 7
    device_counts = (1, 2) if len(jax.devices()) >= 2 else (1,)
    missing = 0.0 if args.complete else 0.1
    rows = []
    print(f"{jax.devices()[0].platform}, {len(jax.devices())} devices, T = {args.T}, "
          f"{'complete data' if args.complete else 'start dates and 10% missing'}\n")
    print(f"| N | P | all at once | per series | rounds of {CHUNK} | per series "
          f"| 2 devices, rounds of {CHUNK} | per series | speed-up 1 -> 2 devices |")
    print("|---|---|---|---|---|---|---|---|---|")
    for N in (2, 5):
        for P in sizes:
            got = [measure(P, N, args.T, 1, repeats, missing),
                   measure(P, N, args.T, 1, repeats, missing, CHUNK)]
            if 2 in device_counts:
                got.append(measure(P, N, args.T, 2, repeats, missing, CHUNK))
            rows.extend(got)
            cells = "".join(f"| {1e3 * g['seconds']:.2f} ms | {1e6 * g['seconds'] / P:.0f} µs "
                            for g in got)
            ratio = got[1]["seconds"] / got[2]["seconds"] if len(got) > 2 else float("nan")
            print(f"| {N} | {P:,} {cells}| {ratio:.2f} |", flush=True)
    RESULTS.mkdir(exist_ok=True)
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": platform.processor() or
            platform.machine(), "cpus": os.cpu_count(), "jax": jax.__version__,
            "backend": jax.default_backend(), "missing": missing}
    (RESULTS / "panel.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
