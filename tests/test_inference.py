"""End-to-end inference checks that fail when inference is subtly wrong, and SVI/Predictive shapes.

- Route agreement: one linear Gaussian model sampled through the Kalman marginal likelihood and
  through the joint likelihood with whitened latent shocks; the posterior means must agree
  within Monte Carlo error (z-scores from the effective sample sizes), r_hat <= 1.01.
- Simulation-based calibration (Talts et al. 2018): parameters from the prior, data simulated
  by plain NumPy (independent of the library), the rank of each true value among thinned
  posterior draws; the ranks must be uniform. The data sets are independent series of one
  ``numpyro.plate``, so one NUTS run samples all their posteriors.

``test_checks_fail_on_a_broken_likelihood`` (``slow``) shows both failing when the likelihood's
observation-noise standard deviation is off by 10%.
"""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.diagnostics import summary
from numpyro.infer import MCMC, NUTS, SVI, Predictive, Trace_ELBO
from numpyro.infer.autoguide import AutoNormal
from scipy import stats

import numpyro_statespace as nss
from models import rbc_reduced_form as rbc

pytestmark = pytest.mark.workflow

PARAMS = ("sigma_level", "sigma_obs")
#: (warm-up, draws per chain) of the agreement runs: r_hat <= 1.01 and ESS in the hundreds
AGREEMENT_DRAWS = {"kalman": (400, 600), "whitened": (400, 600), "joint": (2000, 4000)}
MAX_Z = 4.0
#: SBC: data sets, steps, warm-up, draws, thinning (99 draws kept: ranks 0..99)
SBC = {"series": 100, "T": 50, "warmup": 300, "draws": 495, "thin": 5}
MIN_P = 1e-3  # of each parameter's Kolmogorov-Smirnov test of uniform ranks


def local_level(y, route="kalman", num_timesteps=None):
    """Random walk plus noise, ``mu_0 = 0`` known, one series per row of ``y (S, T, 1)``:
    ``mu_t = mu_{t-1} + sigma_level w_t``, ``y_t = mu_t + sigma_obs v_t``, both scales
    ``~ LogNormal(0, 0.5)`` (away from zero, where a shared NUTS step size would shrink for
    every series of a plate). ``route``: ``"kalman"``, ``"whitened"`` or ``"joint"`` (plain latent
    shocks)."""
    S, T = y.shape[:2] if y is not None else (1, num_timesteps)
    with numpyro.plate("series", S):
        s_l = numpyro.sample("sigma_level", dist.LogNormal(0.0, 0.5))
        s_y = numpyro.sample("sigma_obs", dist.LogNormal(0.0, 0.5))
        A = C = jnp.ones((S, 1, 1))
        B, R = s_l[:, None, None], jnp.square(s_y)[:, None, None]
        u0 = jnp.zeros((S, 1))
        if route == "kalman":
            likelihood = nss.KalmanLGSS(A, B, C, R, u0, jnp.zeros((S, 1, 1)), T)
        else:
            whiten = nss.Whitening(A, B, C, R, y, u0) if route == "whitened" else None
            likelihood = nss.JointLGSS(A, B, C, R, u0, nss.sample_noise("w", T, 1, whiten=whiten))
        numpyro.sample("y", likelihood, obs=y)


def simulate(rng, num_series, T):
    """Scales from the prior and data ``(S, T, 1)`` from the model, by NumPy alone."""
    truth = {k: np.exp(0.5 * rng.normal(size=num_series)) for k in PARAMS}
    level = np.cumsum(truth["sigma_level"][:, None] * rng.normal(size=(num_series, T)), axis=1)
    y = level + truth["sigma_obs"][:, None] * rng.normal(size=(num_series, T))
    return truth, jnp.asarray(y[..., None])


def _nuts(y, route, num_warmup, num_samples, num_chains=2, seed=0):
    kernel = NUTS(local_level, init_strategy=numpyro.infer.init_to_median)
    # vectorized chains: one compilation of the sampler for all of them
    mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(seed), y, route, extra_fields=("diverging",))
    assert int(mcmc.get_extra_fields()["diverging"].sum()) == 0
    return mcmc


def _posterior_summary(y, route):
    grouped = _nuts(y, route, *AGREEMENT_DRAWS[route]).get_samples(group_by_chain=True)
    table = summary({k: grouped[k][..., 0] for k in PARAMS})
    for name, row in table.items():
        assert row["r_hat"] <= 1.01, f"{route}, {name}: r_hat {row['r_hat']}"
    return table


def agreement_z(y, route):
    """``{parameter: z}``: the difference of the posterior means of the Kalman route and
    ``route``, over the combined Monte Carlo standard error."""
    kalman, other = _posterior_summary(y, "kalman"), _posterior_summary(y, route)
    mcse = lambda row: row["std"] / np.sqrt(row["n_eff"])
    return {k: (kalman[k]["mean"] - other[k]["mean"]) / np.hypot(mcse(kalman[k]), mcse(other[k]))
            for k in PARAMS}


def agreement_data(seed=1, T=60):
    """One series at fixed scales, with missing entries (NaN: missing inside the sampled
    model)."""
    rng = np.random.default_rng(seed)
    level = np.cumsum(0.5 * rng.normal(size=T))
    y = (level + 0.8 * rng.normal(size=T))[None, :, None]
    y[0, 10:15] = np.nan
    return jnp.asarray(y)


def sbc_p_values(seed=0):
    """``{parameter: p}`` of the Kolmogorov-Smirnov test of uniform SBC ranks."""
    truth, y = simulate(np.random.default_rng(seed), SBC["series"], SBC["T"])
    draws = _nuts(y, "kalman", SBC["warmup"], SBC["draws"], num_chains=1, seed=seed)
    p = {}
    for k in PARAMS:
        thinned = np.asarray(draws.get_samples()[k][::SBC["thin"]])  # (L, S), L + 1 = 100
        ranks = (thinned < truth[k]).sum(axis=0)  # 0..99
        p[k] = stats.kstest((ranks + 0.5) / 100, "uniform").pvalue
    return p


def test_kalman_and_whitened_routes_agree():
    z = agreement_z(agreement_data(), "whitened")
    assert all(abs(v) < MAX_Z for v in z.values()), z


def test_simulation_based_calibration_of_the_kalman_route():
    p = sbc_p_values()
    assert all(v > MIN_P for v in p.values()), p


@pytest.mark.slow  # latent shocks without whitening mix slowly: long chains
def test_kalman_and_plain_joint_routes_agree():
    z = agreement_z(agreement_data(), "joint")
    assert all(abs(v) < MAX_Z for v in z.values()), z


def _break(monkeypatch, name):
    """Replace ``nss.<name>`` by a likelihood whose observation noise is 10% too large (s.d.)."""
    cls = getattr(nss, name)

    def __init__(self, A, B, C, R, *args, **kwargs):
        cls.__init__(self, A, B, C, 1.21 * R, *args, **kwargs)

    monkeypatch.setattr(nss, name, type(name, (cls,), {"__init__": __init__}))


@pytest.mark.slow
def test_checks_fail_on_a_broken_likelihood(monkeypatch):
    with monkeypatch.context() as patch:  # the joint route broken, the Kalman route intact
        _break(patch, "JointLGSS")
        z = agreement_z(agreement_data(), "whitened")
    _break(monkeypatch, "KalmanLGSS")
    p = sbc_p_values()
    print(f"broken likelihood: agreement z {z}, SBC p {p}")
    assert any(abs(v) >= MAX_Z for v in z.values()), z
    assert any(v <= MIN_P for v in p.values()), p


# -- SVI and Predictive on the RBC routes ------------------------------------------------------
SVI_ROUTES = {"kalman": (rbc.kalman_model, 200), "joint": (rbc.joint_model, 50),
              "pruned_joint": (rbc.pruned_joint_model, 50)}
simulate_rbc = jax.jit(rbc.simulate, static_argnums=(1, 2))


@pytest.mark.parametrize("route", list(SVI_ROUTES))
def test_svi_and_predictive_shapes(route):
    model, T = SVI_ROUTES[route]
    y = simulate_rbc(jax.random.key(3), T, model)
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
