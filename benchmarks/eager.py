"""Eager use: import time, first and second construction of a ``KalmanLGSS``, first and second
``.filter`` / ``.smooth`` / ``.forecast`` / ``.posterior_sample`` (T = 100, N = 2, M = 2,
``u0_cov="stationary"``), each in a fresh Python process (``--repeats`` of them; medians).

    python benchmarks/eager.py [--repeats 3]

"first" includes compilation; "second" is a call with the same shapes and new values. Import
time is measured on top of ``import jax, numpyro, numpyro.distributions``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import time, json
import jax, numpyro, numpyro.distributions
jax.config.update("jax_enable_x64", True)
t0 = time.perf_counter()
import numpyro_statespace as nss
out = {"import": time.perf_counter() - t0}
import numpy as np
rng = np.random.default_rng(0)
A = np.array([[0.9, 0.1], [0.0, 0.7]]); B = np.eye(2) * 0.5; C = np.eye(2); R = np.ones(2) * 0.1

def timed(name, f):
    t = time.perf_counter(); r = f(); jax.block_until_ready(r); out[name] = time.perf_counter() - t
    return r

d = timed("construct_first", lambda: nss.KalmanLGSS(A, B, C, R, np.zeros(2), "stationary", 100))
timed("construct_second", lambda: nss.KalmanLGSS(A * 0.99, B, C, R, np.zeros(2), "stationary", 100))
y = np.asarray(d.sample(jax.random.key(0)))
for name, f in [("filter", lambda y: d.filter(y)), ("smooth", lambda y: d.smooth(y)),
                ("forecast", lambda y: d.forecast(y, 8)),
                ("posterior_sample", lambda y: d.posterior_sample(jax.random.key(1), y, 10))]:
    timed(name + "_first", lambda: f(y))
    timed(name + "_second", lambda: f(y + 0.1))
print(json.dumps(out))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeats):
        res = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                             check=True)
        runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
    import numpy as np

    print(f"{'measurement':24s} {'median [s]':>10s}  (of {args.repeats} fresh processes)")
    for key in runs[0]:
        print(f"{key:24s} {np.median([r[key] for r in runs]):10.4f}")


if __name__ == "__main__":
    main()
