"""Eager use: import time, first and second construction of a ``KalmanLGSS``, first and second
``.filter`` / ``.smooth`` / ``.forecast`` / ``.posterior_sample`` (T = 100, N = 2, M = 2,
``u0_cov="stationary"``), each in a fresh Python process (``--repeats`` of them; medians).

    python benchmarks/eager.py [--repeats 3]

"first" includes compilation; "second" is a call with the same shapes and new values. Import
time is measured on top of ``import jax, numpyro, numpyro.distributions``. Last, the in-graph
(jitted) value+grad of the Nile local level's log-likelihood with the exact diffuse
initialisation against a wide proper prior (``1e7``, the fast route), medians of 20 calls.
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

import jax.numpy as jnp
import statsmodels.api as sm
nile = sm.datasets.nile.load_pandas().data["volume"].to_numpy(float)[:, None]
def level(u0_cov, **kw):
    return lambda z: nss.KalmanLGSS(jnp.eye(1), jnp.exp(z[1] / 2) * jnp.eye(1), jnp.eye(1),
                                    jnp.exp(z[:1]), jnp.zeros(1), u0_cov, 100, **kw).log_prob(nile)
for name, f in [("nile_exact_diffuse_value_grad", level("diffuse", prior_of="u1")),
                ("nile_wide_prior_value_grad", level(1e7 * jnp.eye(1)))]:
    g = jax.jit(jax.value_and_grad(f))
    z = jnp.log(jnp.array([15099.0, 1469.1]))
    jax.block_until_ready(g(z))
    times = []
    for i in range(20):
        t = time.perf_counter()
        jax.block_until_ready(g(z + 1e-3 * i))
        times.append(time.perf_counter() - t)
    out[name] = float(np.median(times))
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

    print(f"{'measurement':30s} {'median [s]':>10s}  (of {args.repeats} fresh processes)")
    for key in runs[0]:
        print(f"{key:30s} {np.median([r[key] for r in runs]):10.6f}")


if __name__ == "__main__":
    main()
