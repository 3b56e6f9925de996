r"""Time-series staples in state-space form, each with a NumPyro model (Kalman likelihood).

Every builder returns :class:`StateSpaceMatrices` ``(A, B, C, R)`` for the package's convention

.. math::
    u_t = A u_{t-1} + B w_t,\quad w_t \sim N(0, I_K),\qquad y_t = C u_t + v_t,\quad
    v_t \sim N(0, R),

with ``u_0 ~ N(m_0, P_0)`` the state *before* the first transition (so ``u_1 ~ N(A m_0,
A P_0 A' + B B')``; with ``u0_cov="stationary"`` ``u_1`` has the same stationary law as ``u_0``).

=============================  ===========================================================
builder                        model
=============================  ===========================================================
:func:`local_level`            random-walk level plus noise
:func:`local_linear_trend`     level with a random-walk slope, plus noise
:func:`arma`, :func:`ar`       zero-mean ARMA(p, q) in Harvey's form, stationary start
:func:`dynamic_factor`         ``y_t = Lambda f_t + e_t`` with AR(p) factors, stationary start
=============================  ===========================================================

The NumPyro models put weakly informative priors on the parameters (scales through
``prior_scale``); AR and MA coefficients are drawn through partial autocorrelations in
``(-1, 1)`` (:func:`pacf_to_coefficients`), so every draw is stationary / invertible.
Statsmodels equivalents (same likelihood, checked in ``tests/test_models.py``):
``UnobservedComponents(level="local level" / "local linear trend")`` with a known
initialisation, ``SARIMAX(order=(p, 0, q), trend="n")``, ``DynamicFactor(k_factors=1,
factor_order=p)``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

import numpyro_statespace as nss

__all__ = [
    "StateSpaceMatrices",
    "ar",
    "arma",
    "arma_model",
    "dynamic_factor",
    "dynamic_factor_model",
    "local_level",
    "local_level_model",
    "local_linear_trend",
    "local_linear_trend_model",
    "pacf_to_coefficients",
]


class StateSpaceMatrices(NamedTuple):
    """``A (N, N)``, ``B (N, K)``, ``C (M, N)``, ``R (M, M)`` (a covariance)."""

    A: jnp.ndarray
    B: jnp.ndarray
    C: jnp.ndarray
    R: jnp.ndarray


def _scalar(name, x):
    x = jnp.asarray(x)
    if x.ndim != 0:
        raise ValueError(f"{name} must be a scalar; got shape {tuple(x.shape)}")
    return x


def _float(x):
    return jnp.asarray(x, dtype=jnp.result_type(float))


# -- builders ---------------------------------------------------------------------------------
def local_level(sigma_level, sigma_obs):
    r"""Local level: :math:`\mu_t = \mu_{t-1} + \sigma_\mu w_t`, :math:`y_t = \mu_t + v_t`,
    :math:`v_t \sim N(0, \sigma_y^2)`. ``N = K = M = 1``."""
    s_l, s_y = _float(_scalar("sigma_level", sigma_level)), _float(_scalar("sigma_obs", sigma_obs))
    one = jnp.ones((1, 1), s_l.dtype)
    return StateSpaceMatrices(one, s_l * one, one, jnp.square(s_y) * one)


def local_linear_trend(sigma_level, sigma_slope, sigma_obs):
    r"""Local linear trend, state ``(mu, nu)``:

    .. math::
        \mu_t = \mu_{t-1} + \nu_{t-1} + \sigma_\mu w_{1t},\quad
        \nu_t = \nu_{t-1} + \sigma_\nu w_{2t},\quad y_t = \mu_t + v_t.

    ``N = K = 2``, ``M = 1``.
    """
    s_l = _float(_scalar("sigma_level", sigma_level))
    s_s = _float(_scalar("sigma_slope", sigma_slope))
    s_y = _float(_scalar("sigma_obs", sigma_obs))
    A = jnp.array([[1.0, 1.0], [0.0, 1.0]], s_l.dtype)
    B = jnp.diag(jnp.stack([s_l, s_s]))
    C = jnp.array([[1.0, 0.0]], s_l.dtype)
    return StateSpaceMatrices(A, B, C, jnp.square(s_y)[None, None])


def arma(phi, theta, sigma, sigma_obs=0.0):
    r"""Zero-mean ARMA(p, q), :math:`y_t = \sum_i \phi_i y_{t-i} + \varepsilon_t + \sum_j
    \theta_j \varepsilon_{t-j}`, :math:`\varepsilon_t \sim N(0, \sigma^2)`, in Harvey's form.

    With ``r = max(p, q + 1)`` and ``phi``, ``theta`` padded with zeros to ``r`` and ``r - 1``:

    .. math::
        A = \begin{bmatrix} \phi_{1:r-1} & I_{r-1} \\ \phi_r & 0 \end{bmatrix},\quad
        B = \sigma\,(1, \theta_1, \ldots, \theta_{r-1})^\top,\quad C = (1, 0, \ldots, 0),

    ``R = sigma_obs^2`` (0: no measurement error; the Kalman filter handles ``R = 0`` since
    every step carries fresh shock variance). Use it with ``u0_cov="stationary"``.

    :param phi: ``(p,)`` AR coefficients (``p = 0`` allowed); :param theta: ``(q,)`` MA
        coefficients; :param sigma: innovation standard deviation; :param sigma_obs: measurement
        error standard deviation.
    """
    phi, theta = _float(phi), _float(theta)
    if phi.ndim != 1 or theta.ndim != 1:
        raise ValueError(f"phi and theta must be 1-D, shapes (p,) and (q,); got "
                         f"{tuple(phi.shape)} and {tuple(theta.shape)}")
    sigma = _float(_scalar("sigma", sigma))
    sigma_obs = _float(_scalar("sigma_obs", sigma_obs))
    p, q = phi.shape[0], theta.shape[0]
    r = max(p, q + 1)
    dtype = jnp.result_type(phi, theta, sigma)
    phi_r = jnp.zeros(r, dtype).at[:p].set(phi)
    theta_r = jnp.zeros(r - 1, dtype).at[:q].set(theta)
    A = jnp.zeros((r, r), dtype).at[:, 0].set(phi_r).at[:-1, 1:].set(jnp.eye(r - 1, dtype=dtype))
    B = sigma * jnp.concatenate([jnp.ones(1, dtype), theta_r])[:, None]
    C = jnp.zeros((1, r), dtype).at[0, 0].set(1.0)
    return StateSpaceMatrices(A, B, C, jnp.square(sigma_obs)[None, None])


def ar(phi, sigma, sigma_obs=0.0):
    """Zero-mean AR(p): :func:`arma` with no MA part (companion form, ``N = p``)."""
    return arma(phi, jnp.zeros(0), sigma, sigma_obs)


def dynamic_factor(loadings, phi, sigma_obs):
    r"""Dynamic factor model with ``k`` factors following a VAR(p) with unit innovations:

    .. math::
        f_t = \sum_{i=1}^p \Phi_i f_{t-i} + w_t,\quad w_t \sim N(0, I_k),\qquad
        y_t = \Lambda f_t + v_t,\quad v_t \sim N(0, \mathrm{diag}(\sigma_{y}^2)).

    The state is ``(f_t, ..., f_{t-p+1})`` (``N = k p``), companion form.

    :param loadings: ``(M, k)`` :math:`\Lambda`; :param phi: ``(p, k, k)`` :math:`\Phi_i` (or
        ``(p,)`` for one factor); :param sigma_obs: ``(M,)`` idiosyncratic standard deviations.
    """
    L = _float(loadings)
    if L.ndim != 2:
        raise ValueError(f"loadings must have shape (M, k); got {tuple(L.shape)}")
    M, k = L.shape
    phi = _float(phi)
    if phi.ndim == 1 and k == 1:
        phi = phi[:, None, None]
    if phi.ndim != 3 or phi.shape[1:] != (k, k):
        raise ValueError(f"phi must have shape (p, k, k) = (p, {k}, {k}) (or (p,) for k = 1); "
                         f"got {tuple(phi.shape)}")
    sigma_obs = _float(sigma_obs)
    if sigma_obs.shape != (M,):
        raise ValueError(f"sigma_obs must have shape (M,) = ({M},); got {tuple(sigma_obs.shape)}")
    p = phi.shape[0]
    dtype = jnp.result_type(L, phi, sigma_obs)
    N = k * p
    top = jnp.concatenate(list(phi), axis=1)  # (k, k p): [Phi_1 ... Phi_p]
    A = jnp.zeros((N, N), dtype).at[:k].set(top).at[k:, :-k].set(jnp.eye(N - k, dtype=dtype))
    B = jnp.zeros((N, k), dtype).at[:k].set(jnp.eye(k, dtype=dtype))
    C = jnp.zeros((M, N), dtype).at[:, :k].set(L)
    return StateSpaceMatrices(A, B, C, jnp.diag(jnp.square(sigma_obs)))


def pacf_to_coefficients(r):
    r"""AR coefficients from partial autocorrelations ``r (p,)`` in ``(-1, 1)`` (Durbin–Levinson;
    Barndorff-Nielsen & Schou 1973, Monahan 1984): the resulting AR(p) is stationary.
    Negated, they are invertible MA coefficients (see :func:`arma_model`).
    """
    r = jnp.asarray(r)
    if r.ndim != 1:
        raise ValueError(f"r must have shape (p,); got {tuple(r.shape)}")
    phi = r[:0]
    for k in range(r.shape[0]):  # over the (static) order, not over time
        phi = jnp.concatenate([phi - r[k] * phi[::-1], r[k:k + 1]])
    return phi


# -- NumPyro models ---------------------------------------------------------------------------
def _T(y, num_timesteps):
    if y is None and num_timesteps is None:
        raise ValueError("pass the data y (T, M) or num_timesteps")
    return y.shape[0] if y is not None else num_timesteps


def local_level_model(y=None, num_timesteps=None, *, prior_scale=1.0, u0_mean=0.0,
                      u0_var=100.0):
    """Local level; ``sigma_level, sigma_obs ~ HalfNormal(prior_scale)``,
    ``u_0 ~ N(u0_mean, u0_var)`` (a proper, wide prior instead of a diffuse one).

    :param y: ``(T, 1)`` observations (NaN = missing).
    """
    T = _T(y, num_timesteps)
    s_l = numpyro.sample("sigma_level", dist.HalfNormal(prior_scale))
    s_y = numpyro.sample("sigma_obs", dist.HalfNormal(prior_scale))
    A, B, C, R = local_level(s_l, s_y)
    numpyro.sample("y", nss.KalmanLGSS(A, B, C, R, jnp.full(1, u0_mean), u0_var * jnp.eye(1), T),
                   obs=y)


def local_linear_trend_model(y=None, num_timesteps=None, *, prior_scale=1.0, u0_mean=(0.0, 0.0),
                             u0_var=100.0):
    """Local linear trend; the three scales ``~ HalfNormal(prior_scale)``,
    ``u_0 ~ N(u0_mean, u0_var I_2)``. :param y: ``(T, 1)``."""
    T = _T(y, num_timesteps)
    s_l = numpyro.sample("sigma_level", dist.HalfNormal(prior_scale))
    s_s = numpyro.sample("sigma_slope", dist.HalfNormal(prior_scale))
    s_y = numpyro.sample("sigma_obs", dist.HalfNormal(prior_scale))
    A, B, C, R = local_linear_trend(s_l, s_s, s_y)
    numpyro.sample("y", nss.KalmanLGSS(A, B, C, R, jnp.asarray(u0_mean, A.dtype),
                                       u0_var * jnp.eye(2), T), obs=y)


def arma_model(y=None, num_timesteps=None, *, p=1, q=0, prior_scale=1.0):
    """Zero-mean ARMA(p, q) with a stationary start (``u0_cov="stationary"``).

    Partial autocorrelations ``ar_pacf (p,)`` and ``ma_pacf (q,)`` ``~ U(-1, 1)`` map to
    stationary AR coefficients and invertible MA coefficients (recorded as deterministic sites
    ``phi`` and ``theta``); ``sigma ~ HalfNormal(prior_scale)``. :param y: ``(T, 1)``.
    """
    T = _T(y, num_timesteps)
    phi = jnp.zeros(0)
    theta = jnp.zeros(0)
    if p:
        r = numpyro.sample("ar_pacf", dist.Uniform(-1.0, 1.0).expand((p,)).to_event(1))
        phi = numpyro.deterministic("phi", pacf_to_coefficients(r))
    if q:
        s = numpyro.sample("ma_pacf", dist.Uniform(-1.0, 1.0).expand((q,)).to_event(1))
        # 1 + sum_j theta_j L^j is invertible iff 1 - sum_j (-theta_j) L^j is stationary.
        theta = numpyro.deterministic("theta", -pacf_to_coefficients(s))
    sigma = numpyro.sample("sigma", dist.HalfNormal(prior_scale))
    A, B, C, R = arma(phi, theta, sigma)
    N = A.shape[0]
    numpyro.sample("y", nss.KalmanLGSS(A, B, C, R, jnp.zeros(N), "stationary", T), obs=y)


def dynamic_factor_model(y=None, num_timesteps=None, *, num_series=None, factor_order=1,
                         prior_scale=1.0):
    """One AR(``factor_order``) factor driving ``M`` series, stationary start.

    ``loadings (M, 1)``: the first ``~ HalfNormal(1)`` (fixes the sign of the factor), the rest
    ``~ N(0, 1)``; ``factor_pacf (factor_order,) ~ U(-1, 1)`` mapped to stationary ``phi``;
    ``sigma_obs (M,) ~ HalfNormal(prior_scale)``.

    :param y: ``(T, M)``; :param num_series: ``M`` when ``y`` is None.
    """
    T = _T(y, num_timesteps)
    M = y.shape[1] if y is not None else num_series
    if M is None:
        raise ValueError("pass y (T, M) or num_series")
    first = numpyro.sample("loading_first", dist.HalfNormal(1.0))
    rest = numpyro.sample("loading_rest", dist.Normal(0.0, 1.0).expand((M - 1,)).to_event(1))
    L = numpyro.deterministic("loadings",
                              jnp.concatenate([jnp.reshape(first, (1,)), rest])[:, None])
    r = numpyro.sample("factor_pacf", dist.Uniform(-1.0, 1.0).expand((factor_order,)).to_event(1))
    phi = numpyro.deterministic("phi", pacf_to_coefficients(r))
    s_y = numpyro.sample("sigma_obs", dist.HalfNormal(prior_scale).expand((M,)).to_event(1))
    A, B, C, R = dynamic_factor(L, phi, s_y)
    numpyro.sample("y", nss.KalmanLGSS(A, B, C, R, jnp.zeros(A.shape[0]), "stationary", T),
                   obs=y)
