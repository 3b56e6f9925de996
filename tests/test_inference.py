"""End-to-end inference: NUTS recovers known parameters, SVI and Predictive give documented shapes.

The short versions run in the default (CI) run; the long ones, with the strict r_hat < 1.01
for the Kalman and whitened routes, are marked ``slow`` (``pytest -m slow``).
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
from numpyro.diagnostics import summary
from numpyro.infer import MCMC, NUTS, SVI, Predictive, Trace_ELBO
from numpyro.infer.autoguide import AutoNormal

from models import rbc_reduced_form as rbc

pytestmark = pytest.mark.workflow

ROUTES = {
    # model, T, target_accept_prob, r_hat bound of the short run
    "kalman": (rbc.kalman_model, 200, 0.8, 1.05),
    # With 50 latent shocks the plain joint routes mix slowly (see issue 8): 2 x 200 draws hold
    # a few dozen effective ones, and their r_hat scatters around 1.1 with the round-off of
    # the build (1.11 for rho with LLVM at -O0, below 1.1 with the default build, same seed);
    # hence the short run's loose bound. The long run's bounds: LONG_BOUNDS.
    "joint": (rbc.joint_model, 50, 0.95, 1.2),
    "pruned_joint": (rbc.pruned_joint_model, 50, 0.95, 1.1),
    # whitened shocks: ~11 leapfrog steps per draw instead of the plain route's hundreds
    "pruned_joint_whitened": (partial(rbc.pruned_joint_model, whiten=True), 50, 0.8, 1.05),
}
#: r_hat bound and largest number of divergent transitions (of 2 x 1000) of the long run. The
#: plain latent-shock routes are the ones issue 8 replaces: rho keeps an ESS of ~160-300 in 2000
#: draws, so its r_hat scatters by about 0.01 with the round-off of the build (same seed, plain
#: joint: 1.002 at -O0, 1.015 with XLA's default build; plain pruned: 1.003 and 2 divergences at
#: -O0, 1.018 and none with the default build). They are held to what that ESS supports; the
#: Kalman and whitened routes (ESS 1600-3400 for the whitened) to the strict bounds.
LONG_BOUNDS = {"kalman": (1.01, 0), "joint": (1.03, 5), "pruned_joint": (1.03, 5),
               "pruned_joint_whitened": (1.01, 0)}
#: (warm-up, draws) of the default (CI) run; the plain pruned route hits NUTS's tree-depth cap
#: on most draws (~60 s for any short run), so CI samples the pruned model whitened and leaves
#: the plain pruned route to the long run.
SHORT = {"kalman": (100, 100), "joint": (200, 200), "pruned_joint_whitened": (100, 100)}

# Data simulated by one compiled program per model (run eagerly, the model's operations would
# each be compiled on their own: seconds per call).
simulate = jax.jit(rbc.simulate, static_argnums=(1, 2))


def _nuts(route, num_warmup, num_samples, seed=0, missing=False):
    model, T, target, _ = ROUTES[route]
    data_model = rbc.pruned_joint_model if route.startswith("pruned") else model
    y = simulate(jax.random.key(seed), T, data_model)
    if missing:  # NaN entries are missing observations inside the sampled model, not a crash
        y = y.at[10:20, 0].set(jnp.nan).at[40, :].set(jnp.nan)
    # Starting at the prior median keeps chains out of the sigma -> large, w -> 0 funnel that
    # a random start in the latent-shock routes can get stuck in during warm-up.
    kernel = NUTS(model, target_accept_prob=target, init_strategy=numpyro.infer.init_to_median)
    # vectorized chains: one compilation of the sampler for both (sequential chains compile
    # it once per chain)
    mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=2,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(seed + 1), y, extra_fields=("diverging",))
    return mcmc


def _check_recovery(mcmc, max_r_hat, max_divergences=0):
    grouped = mcmc.get_samples(group_by_chain=True)
    stats = summary({k: grouped[k] for k in rbc.TRUTH})
    flat = mcmc.get_samples()
    for name, truth in rbc.TRUTH.items():
        assert np.all(np.isfinite(flat[name])), name
        lo, hi = np.quantile(flat[name], [0.005, 0.995])
        assert lo < truth < hi, f"{name}: truth {truth} outside the 99% interval ({lo}, {hi})"
        assert stats[name]["r_hat"] < max_r_hat, f"{name}: r_hat {stats[name]['r_hat']}"
    assert int(mcmc.get_extra_fields()["diverging"].sum()) <= max_divergences


@pytest.mark.parametrize("route", list(SHORT))
def test_nuts_recovers_parameters_short(route):
    # the Kalman route's data have missing entries (eleven of 400; a run of its own would cost
    # a compilation of the sampler)
    _check_recovery(_nuts(route, *SHORT[route], missing=route == "kalman"),
                    max_r_hat=ROUTES[route][3])


@pytest.mark.slow
@pytest.mark.parametrize("route", list(ROUTES))
def test_nuts_recovers_parameters_long(route):
    _check_recovery(_nuts(route, 1000, 1000), *LONG_BOUNDS[route])


@pytest.mark.parametrize("route", ["kalman", "joint", "pruned_joint"])
def test_svi_and_predictive_shapes(route):
    model, T, _, _ = ROUTES[route]
    y = simulate(jax.random.key(3), T, model)
    guide = AutoNormal(model)
    svi = SVI(model, guide, numpyro.optim.Adam(0.01), Trace_ELBO())
    result = svi.run(jax.random.key(4), 200, y, progress_bar=False)
    assert np.all(np.isfinite(result.losses))
    assert result.losses[-50:].mean() < result.losses[:50].mean()  # it learns

    n = 7
    posterior = guide.sample_posterior(jax.random.key(5), result.params, sample_shape=(n,))
    for name in rbc.TRUTH:
        assert posterior[name].shape == (n,)
    if route != "kalman":
        assert posterior["w"].shape == (n, T, 1)

    # under jit, as one program each (NumPyro runs parallel=True op by op otherwise)
    prior_pred = jax.jit(lambda key: Predictive(model, num_samples=n)(key, num_timesteps=T))(
        jax.random.key(6))
    assert prior_pred["y"].shape == (n, T, 2)
    for parallel in (False, True):
        predictive = Predictive(model, posterior_samples=posterior, parallel=parallel,
                                return_sites=["y"])
        post_pred = jax.jit(lambda key: predictive(key, num_timesteps=T))(jax.random.key(7))
        assert post_pred["y"].shape == (n, T, 2)
        assert np.all(np.isfinite(post_pred["y"]))

