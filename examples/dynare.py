"""Bring your Dynare model: a ``.mod`` file to an ArviZ posterior summary.

Run from the repository root: ``python examples/dynare.py [file.mod]`` (default: the bundled
three-equation New Keynesian model ``models/mod/nk.mod``; ``NSS_SHORT=1`` for a quick run).
The file's ``estimated_params`` are the priors, its ``varobs`` the observables; the data here
are simulated from the file's own calibration.
"""

import sys

import _common
import arviz as az
import jax
import numpy as np
from numpyro.infer import MCMC, NUTS

import numpyro_statespace as nss

T = 60 if _common.SHORT else 200
WARMUP, SAMPLES = (30, 30) if _common.SHORT else (500, 500)


def simulate(dfile, T, seed=0):
    """``(T, M)`` observations (levels) from the file's calibration, first-order solution."""
    sol = dfile.solve(order=1)
    rng = np.random.default_rng(seed)
    A, B, C = (np.asarray(x) for x in (sol.A, sol.B, sol.C))
    L = np.linalg.cholesky(np.asarray(dfile.measurement_cov()) + 1e-300 * np.eye(C.shape[0]))
    u, y = np.zeros(A.shape[0]), np.empty((T, C.shape[0]))
    for t in range(T):
        u = A @ u + B @ rng.standard_normal(B.shape[1])
        y[t] = C @ u + L @ rng.standard_normal(C.shape[0])
    return y + np.asarray(dfile.observable_steady_state())


def main(path=_common.ROOT / "models" / "mod" / "nk.mod"):
    dfile = nss.dynare.load(path)                       # parse, check, compile to JAX
    print(dfile)
    data = simulate(dfile, T)
    mcmc = MCMC(NUTS(dfile.numpyro_model(data)), num_warmup=WARMUP, num_samples=SAMPLES,
                progress_bar=False)
    mcmc.run(jax.random.key(1))
    summary = az.summary(az.from_numpyro(mcmc), var_names=list(dfile.priors))
    print(summary)
    return dfile, summary


if __name__ == "__main__":
    main(*sys.argv[1:2])
