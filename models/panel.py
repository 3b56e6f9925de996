r"""A panel of ``P`` series from a hierarchical state-space model (partial pooling).

Series ``i`` is a sum of ``N`` AR(1) components observed with noise:

.. math::
    u_{i,t} = \rho_i D\, u_{i,t-1} + \sigma_i w_{i,t},\quad w_{i,t} \sim N(0, I_N),\qquad
    y_{i,t} = \mathbf{1}^\top u_{i,t} + v_{i,t},\quad v_{i,t} \sim N(0, s^2),

with ``D = diag(d_1..d_N)``, ``d`` evenly spaced from 1 down to 0.5 (``N = 1``: an AR(1) plus
noise), the known start ``u_{i,0} = 0`` and, across series, partially pooled persistence and
volatility:

.. math::
    \operatorname{logit}\rho_i = \mu_\rho + \tau_\rho z_i,\quad z_i \sim N(0, 1),\qquad
    \log\sigma_i \sim N(\mu_\sigma, \tau_\sigma).

The persistence is non-centred (``z_i`` sampled), the volatility centred (``log sigma_i``
sampled): each series pins its volatility down far more tightly than the spread across series
(standard error of ``log sigma_i`` ~0.1 at ``T = 100`` against ``tau_sigma`` ~0.3), and there
a non-centred volatility mixes badly (measured, P = 50, T = 100: ESS 21 of 1,000 draws for
``mu_sigma``), while the persistence is less well determined per series. Where a series'
volatility is weakly determined (low signal-to-noise, or ``tau_sigma`` near 0) the centred
volatility forms a funnel with ``tau_sigma`` instead: ``model(..., centered=c)`` decentres it
partially, series by series, with :func:`centredness` choosing ``c`` from each series' own
information.

The measurement noise ``s`` is common to all series. Each series has its own missing data: it
starts at its own date (leading NaN) and misses a random share of its entries (NaN).

:func:`model` is the NumPyro model with either likelihood route: ``"kalman"``
(:class:`~numpyro_statespace.KalmanLGSS`, the states integrated out) or ``"whitened"`` (the
shocks a latent site whitened by each series' own posterior,
:class:`~numpyro_statespace.JointLGSS`); the two have the same posterior of the parameters.
:func:`loglik` is the panel's Kalman log-likelihood as a plain function of per-series
arrays, and :func:`shard_series` / :func:`pad_series` place a panel on several devices.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from numpyro.infer.reparam import LocScaleReparam

import numpyro_statespace as nss

__all__ = ["HYPER", "centredness", "loglik", "matrices", "model", "pad_series",
           "pooled_priors", "series_sharding", "shard_series", "simulate"]

#: pooled parameters of the simulations (logit 0.7 = 0.847, log 0.5 = -0.693)
HYPER = {"mu_rho": 0.847, "tau_rho": 0.4, "mu_sigma": -0.693, "tau_sigma": 0.3, "obs_sd": 0.3}


def pooled_priors():
    """The pooled parameters' priors (a dict of distributions; a function so that each call
    builds them in the current dtype)."""
    return {"mu_rho": dist.Normal(1.0, 0.5), "tau_rho": dist.HalfNormal(0.5),
            "mu_sigma": dist.Normal(-0.7, 0.5), "tau_sigma": dist.HalfNormal(0.5),
            "obs_sd": dist.LogNormal(np.log(0.3), 0.3)}


def _decay(n_states, dtype):
    return jnp.linspace(1.0, 0.5, n_states, dtype=dtype) if n_states > 1 else jnp.ones(1, dtype)


def matrices(rho, sigma, obs_sd, n_states=1):
    """``A (..., N, N)``, ``B (..., N, N)``, ``C (1, N)`` and ``R (1,)`` (variances) of the
    series with persistences ``rho (...)`` and volatilities ``sigma (...)``."""
    rho, sigma, obs_sd = (jnp.asarray(x, dtype=jnp.result_type(float)) for x in
                          (rho, sigma, obs_sd))
    if obs_sd.ndim != 0:
        raise ValueError(f"obs_sd must be a scalar (common to all series); got shape "
                         f"{tuple(obs_sd.shape)}")
    rho, sigma = jnp.broadcast_arrays(rho, sigma)
    eye = jnp.eye(n_states, dtype=rho.dtype)
    A = rho[..., None, None] * jnp.diag(_decay(n_states, rho.dtype))
    B = sigma[..., None, None] * eye
    C = jnp.ones((1, n_states), rho.dtype)
    return A, B, C, jnp.square(obs_sd)[None]


def simulate(seed, num_series, num_timesteps, n_states=1, hyper=None, missing=0.1,
             late_start=0.25):
    """A simulated panel (plain NumPy, independent of the package's kernels).

    :param hyper: the pooled parameters (default :data:`HYPER`); ``"prior"`` draws them from
        :func:`pooled_priors` (simulation-based calibration).
    :param missing: share of entries missing at random in each series.
    :param late_start: series ``i`` starts at a uniform date in ``[0, late_start T)``: its
        earlier entries are NaN.
    :returns: a dict with ``y (P, T, 1)`` (NaN = missing), the per-series ``rho``, ``sigma``
        ``(P,)`` and the pooled parameters.
    """
    rng = np.random.default_rng(seed)
    if hyper is None:
        hyper = dict(HYPER)
    elif hyper == "prior":
        keys = jax.random.split(jax.random.key(seed), len(pooled_priors()))
        hyper = {k: float(d.sample(kk)) for (k, d), kk in zip(pooled_priors().items(), keys)}
    P, T, N = num_series, num_timesteps, n_states
    rho = 1 / (1 + np.exp(-(hyper["mu_rho"] + hyper["tau_rho"] * rng.standard_normal(P))))
    sigma = np.exp(hyper["mu_sigma"] + hyper["tau_sigma"] * rng.standard_normal(P))
    decay = np.asarray(_decay(N, np.float64))
    u = np.zeros((P, N))
    y = np.empty((P, T, 1))
    for t in range(T):
        u = rho[:, None] * decay * u + sigma[:, None] * rng.standard_normal((P, N))
        y[:, t, 0] = u.sum(-1) + hyper["obs_sd"] * rng.standard_normal(P)
    y[rng.uniform(size=(P, T, 1)) < missing] = np.nan
    start = rng.integers(0, max(1, int(late_start * T)), size=P)
    y[np.arange(T)[None, :] < start[:, None]] = np.nan
    return {"y": y, "rho": rho, "sigma": sigma, **hyper}


def loglik(rho, sigma, obs_sd, y, n_states=1, chunk=None):
    """The panel's log-likelihood: the sum over series of each one's Kalman log-likelihood.

    :param rho, sigma: ``(P,)``; :param obs_sd: scalar; :param y: ``(P, T, 1)``, NaN missing.
    :param chunk: static; ``None`` vectorises over all series at once; an int ``c`` (dividing
        ``P``) runs ``P / c`` sequential rounds of ``c`` series each (``lax.map``). The cost of
        the likelihood's gradient vectorised over many series grows faster than the number of
        series on CPU (measured, N = 5, T = 200, 2 loaded cores: 100 series at once 114 ms,
        in rounds of 16 24 ms), so rounds of 16-32 series keep the cost per series about flat
        (``benchmarks/panel.py``). Series ``k``, ``k + P / c``, ... share a round, so a
        panel split into contiguous blocks over devices (:func:`shard_series`, ``c`` a
        multiple of the number of devices) keeps every round split over the devices too.

    A series with no observation contributes 0, so padding a panel with all-NaN series
    (:func:`pad_series`) leaves its value and gradient unchanged.
    """
    P = np.shape(y)[0]
    if chunk is not None and (chunk < 1 or P % chunk):
        raise ValueError(f"chunk must divide the number of series (y: {tuple(np.shape(y))}); "
                         f"got chunk={chunk}: pad the panel with pad_series({chunk}, ...)")

    def series(rho, sigma, y):
        A, B, C, R = matrices(rho, sigma, obs_sd, n_states)
        zeros = jnp.zeros(n_states, A.dtype)
        d = nss.KalmanLGSS(A, B, C, R, zeros, jnp.zeros((n_states, n_states), A.dtype),
                           num_timesteps=y.shape[-2], method="sequential")
        return d.log_prob(y)

    if chunk is None or chunk == P:
        return jnp.sum(series(rho, sigma, y))
    rounds = [jnp.swapaxes(jnp.reshape(x, (chunk, P // chunk) + jnp.shape(x)[1:]), 0, 1)
              for x in (rho, sigma, y)]
    return jnp.sum(lax.map(lambda args: series(*args), tuple(rounds)))


def model(y=None, *, num_series=None, num_timesteps=None, n_states=1, route="kalman",
          centered=1.0):
    """The hierarchical NumPyro model (module docstring); ``y (P, T, 1)`` or, for prior
    predictive draws, ``num_series`` and ``num_timesteps``. ``route`` is ``"kalman"`` or
    ``"whitened"``.

    :param centered: the centredness of each series' log-volatility: ``1`` samples
        ``log_sigma`` itself (centred), ``0`` its standardised deviation from ``mu_sigma``
        (non-centred), a value in between or an array ``(P,)`` of them a partial
        decentring (NumPyro's ``LocScaleReparam``: the site ``log_sigma_decentered`` is
        sampled, ``log_sigma`` is deterministic); :func:`centredness` chooses one per series
        from the data.
    """
    if route not in ("kalman", "whitened"):
        raise ValueError(f"route must be 'kalman' or 'whitened'; got {route!r}")
    if y is not None:
        if np.ndim(y) != 3 or np.shape(y)[-1] != 1:
            raise ValueError(f"y must have shape (P, T, 1); got {tuple(np.shape(y))}")
        num_series, num_timesteps = np.shape(y)[:2]
    elif num_series is None or num_timesteps is None:
        raise ValueError("pass the data y (P, T, 1) or num_series and num_timesteps")
    pooled = {k: numpyro.sample(k, d) for k, d in pooled_priors().items()}
    with numpyro.plate("series", num_series):
        z_rho = numpyro.sample("z_rho", dist.Normal(0.0, 1.0))
        rho = numpyro.deterministic(
            "rho", jax.nn.sigmoid(pooled["mu_rho"] + pooled["tau_rho"] * z_rho))
        log_sigma = _log_volatility(pooled, num_series, centered)
        sigma = numpyro.deterministic("sigma", jnp.exp(log_sigma))
        A, B, C, R = matrices(rho, sigma, pooled["obs_sd"], n_states)
        u0 = jnp.zeros(n_states, A.dtype)
        if route == "kalman":
            likelihood = nss.KalmanLGSS(A, B, C, R, u0, jnp.zeros((n_states, n_states), A.dtype),
                                        num_timesteps=num_timesteps)
        else:
            w = nss.sample_noise("w", num_timesteps, n_states,
                                 whiten=nss.Whitening(A, B, C, R, y, u0))
            likelihood = nss.JointLGSS(A, B, C, R, u0, w)
        numpyro.sample("y", likelihood, obs=y)


def _log_volatility(pooled, num_series, centered):
    if np.ndim(centered) not in (0, 1) or np.size(centered) not in (1, num_series):
        raise ValueError(f"centered must be a scalar or have shape ({num_series},) (one per "
                         f"series); got shape {tuple(np.shape(centered))}")
    # expanded to the plate's shape before the reparametrisation, so that a per-series
    # centredness meets a per-series prior
    prior = dist.Normal(pooled["mu_sigma"], pooled["tau_sigma"]).expand([num_series])
    with numpyro.handlers.reparam(config={"log_sigma": LocScaleReparam(centered)}):
        return numpyro.sample("log_sigma", prior)


def centredness(y, *, n_states=1, num_steps=2000, learning_rate=0.02, seed=0):
    r"""A centredness of each series' log-volatility (an array ``(P,)`` in ``[0, 1]``) for
    :func:`model`'s ``centered``: the share of the conditional posterior precision of
    ``log sigma_i`` that comes from series ``i``'s own data,

    .. math:: c_i = \frac{\tau_\sigma^2 I_i}{1 + \tau_\sigma^2 I_i},

    with ``I_i`` the observed information of ``log sigma_i`` (the series' own Kalman
    log-likelihood) and ``tau_sigma`` at a point estimate (the median of a mean-field SVI
    fit, ``num_steps`` Adam steps). In the Gaussian case this partial decentring makes the
    series' parameter and the pooled ones independent a posteriori (Papaspiliopoulos,
    Roberts and Skold 2007): a series whose data pin its volatility down is near centred,
    one with little information (low signal-to-noise, or ``tau_sigma`` near 0, where the
    centred parametrisation forms a funnel) near non-centred.
    """
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoNormal
    from numpyro.infer.initialization import init_to_median

    def centred(y):
        return model(y, n_states=n_states)

    guide = AutoNormal(centred, init_loc_fn=init_to_median)
    svi = SVI(centred, guide, numpyro.optim.Adam(learning_rate), Trace_ELBO())
    point = guide.median(svi.run(jax.random.key(seed), num_steps, y, progress_bar=False).params)
    rho = jax.nn.sigmoid(point["mu_rho"] + point["tau_rho"] * point["z_rho"])

    def loglik_of(log_sigma):
        return loglik(rho, jnp.exp(log_sigma), point["obs_sd"], y, n_states)

    # the series are independent given the pooled parameters: the Hessian in log_sigma is
    # diagonal, its diagonal one Hessian-vector product with a vector of ones
    ones = jnp.ones_like(point["log_sigma"])
    info = -jax.jvp(jax.grad(loglik_of), (point["log_sigma"],), (ones,))[1]
    prior_info = np.square(float(point["tau_sigma"])) * np.maximum(np.asarray(info), 0.0)
    return prior_info / (1.0 + prior_info)


# -- several devices ---------------------------------------------------------------------------
def series_sharding(devices=None):
    """The ``NamedSharding`` that splits the leading (series) axis over ``devices`` (default:
    all of ``jax.devices()``, every process's) and replicates the rest."""
    devices = jax.devices() if devices is None else devices
    return NamedSharding(Mesh(np.asarray(devices), ("series",)), PartitionSpec("series"))


def pad_series(multiple, rho, sigma, y):
    """Pad a panel to a multiple of ``multiple`` series (an even split over devices) with
    all-NaN series (they add exactly 0 to :func:`loglik` and its gradient) whose parameters
    repeat the last series'."""
    P = y.shape[0]
    extra = -P % multiple
    rho, sigma = (np.concatenate([x, np.repeat(x[-1:], extra)]) for x in (rho, sigma))
    y = np.concatenate([y, np.full((extra,) + y.shape[1:], np.nan)])
    return rho, sigma, y


def shard_series(*arrays, devices=None):
    """``arrays`` (all with the series axis first) placed with :func:`series_sharding`: each
    device holds its block of series. The number of series must divide evenly
    (:func:`pad_series`)."""
    sharding = series_sharding(devices)
    n = sharding.mesh.size
    for x in arrays:
        if np.shape(x)[0] % n:
            raise ValueError(f"the series axis ({np.shape(x)[0]}) must split evenly over {n} "
                             f"devices: pad the panel with pad_series({n}, ...)")
    return tuple(jax.device_put(x, sharding) for x in arrays)
