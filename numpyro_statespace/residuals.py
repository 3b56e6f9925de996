r"""Per-step log-likelihood terms and standardised one-step-ahead residuals.

For the marginal likelihood (:class:`~numpyro_statespace.KalmanLGSS`) the terms are the
prediction-error decomposition :math:`\log p(y_t \mid y_{1:t-1})`, whose sum is ``log_prob``;
for the likelihoods given the noise (``Joint*``) they are :math:`\log N(y_t; z_t, R)`. Missing
entries (NaN) are left out of each term; a step with nothing observed contributes 0, and so
does a step left out by ``loglikelihood_burn``.

The standardised residuals are :math:`e_t = L_t^{-1} v_t` with :math:`v_t` the innovation
:math:`y_t - E[y_t \mid y_{1:t-1}]` and :math:`L_t L_t^\top` its covariance (over the observed
entries, in their order: statsmodels' ``standardized_forecasts_error``); under the model they
are independent :math:`N(0, I)`, which :func:`numpyro_statespace.plots.plot_diagnostics`
inspects.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from ._validation import as_values
from .distributions import ConditionalSS, KalmanLGSS
from .distributions.joint import JointLikelihood

__all__ = ["pointwise_log_likelihood", "standardized_residuals"]


def _masked_cov(S, observed):
    """``S`` on the observed rows and columns, the identity elsewhere: its Cholesky factor
    holds the observed block's factor (entries in their order) and ones."""
    both = observed[..., :, None] & observed[..., None, :]
    eye = jnp.eye(S.shape[-1], dtype=S.dtype)
    return jnp.where(both, S, eye)


def _gaussian_terms(residual, S, observed):
    """``log N(r_t; 0, S_t)`` over the observed entries of each step, ``(T,)``."""
    r = jnp.where(observed, residual, 0.0)
    L = jnp.linalg.cholesky(_masked_cov(S, observed))
    e = solve_triangular(L, r[..., None], lower=True)[..., 0]
    logdet = 2 * jnp.sum(jnp.log(jnp.diagonal(L, axis1=-2, axis2=-1)), axis=-1)
    n = jnp.sum(observed, axis=-1)
    return -0.5 * (jnp.sum(e ** 2, axis=-1) + logdet + n * jnp.log(2 * jnp.pi))


def _unwrap(d):
    while not isinstance(d, (KalmanLGSS, JointLikelihood, ConditionalSS)) \
            and hasattr(d, "base_dist"):
        d = d.base_dist
    return d


def pointwise_log_likelihood(d, y):
    """``(T,)`` per-step terms of ``d.log_prob(y)`` for an unbatched distribution ``d``.

    :param d: :class:`KalmanLGSS` (one-step-ahead predictive densities) or a ``Joint*``
        likelihood given its noise. :param y: ``(T, M)``, NaN = missing.
    """
    d = _unwrap(d)
    y = jnp.asarray(as_values(y))
    if isinstance(d, KalmanLGSS):
        return _kalman_terms(d, y)
    if isinstance(d, JointLikelihood):
        if d.batch_shape:
            raise ValueError(f"pointwise_log_likelihood works on an unbatched distribution; "
                             f"batch_shape is {d.batch_shape}")
        observed = jnp.isfinite(y)
        z = d.mean_path()
        R = jnp.broadcast_to(d.R, y.shape[:-1] + d.R.shape[-2:])
        return _gaussian_terms(y - z, R, observed)
    raise ValueError(f"per-step log-likelihoods are defined for KalmanLGSS and the Joint* "
                     f"distributions; got {type(d).__name__}")


def _diffuse(d):
    spec = getattr(d, "_spec", None)
    return spec is not None and spec.diffuse is not None


def _one_step(d, f, y):
    """``(innovations, covariances, proper)`` of the one-step-ahead predictions from the
    filter ``f`` of ``d``. With diffuse states, from the exact diffuse predicted moments:
    ``proper`` is False (and the covariance the identity) until the data identify the
    diffuse part."""
    if not _diffuse(d):
        return f.innovations, f.innovation_covs, jnp.ones(y.shape[0], bool)
    C = d.C if d.C.ndim == 3 else jnp.broadcast_to(d.C, (y.shape[0],) + d.C.shape)
    offset = 0.0 if d.obs_offset is None else d.obs_offset
    mean = jnp.einsum("tmn,tn->tm", C, f.predicted_means[1:]) + offset
    cov = jnp.einsum("tmn,tnk,tjk->tmj", C, f.predicted_covs[1:], C) + d.R
    proper = jnp.all(jnp.isfinite(cov), axis=(-2, -1))
    cov = jnp.where(proper[:, None, None], cov, jnp.eye(cov.shape[-1], dtype=cov.dtype))
    return jnp.where(f.observed, y - mean, 0.0), cov, proper


def _kalman_terms(d, y):
    """One-step-ahead predictive densities of a :class:`KalmanLGSS` (the filter's per-step
    terms; with diffuse states, those of the exact diffuse filter, statsmodels' ``llf_obs``);
    burned-in steps (``loglikelihood_burn``) contribute 0, so the terms sum to ``log_prob``."""
    terms = d.filter(y).log_likelihoods
    burn = getattr(getattr(d, "_spec", None), "burn", 0)
    if burn:
        terms = terms.at[:burn].set(0.0)
    return terms


def standardized_residuals(d, y):
    """``(T, M)`` standardised one-step-ahead prediction errors of a :class:`KalmanLGSS`
    (NaN where ``y`` is missing, and with diffuse states while the data have not identified
    them: statsmodels' ``plot_diagnostics`` leaves those steps out too)."""
    d = _unwrap(d)
    if not isinstance(d, KalmanLGSS):
        raise ValueError(f"standardized_residuals needs a KalmanLGSS (one-step-ahead "
                         f"predictions); got {type(d).__name__}")
    y = jnp.asarray(as_values(y))
    f = d.filter(y)
    innovations, cov, proper = _one_step(d, f, y)
    L = jnp.linalg.cholesky(_masked_cov(cov, f.observed))
    r = jnp.where(f.observed, innovations, 0.0)
    e = solve_triangular(L, r[..., None], lower=True)[..., 0]
    return jnp.where(f.observed & proper[:, None], e, jnp.nan)
