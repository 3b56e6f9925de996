r"""Smoothing, posterior state paths, forecasts and impulse responses of the linear Gaussian model.

Model and conventions as in :mod:`.kalman` (``N`` states, ``K`` shocks, ``M`` observables,
``T`` steps)::

    u_0 ~ N(m0, P0),  u_t = A u_{t-1} + B w_t,  y_t = C u_t + v_t,  w_t ~ N(0, I_K), v_t ~ N(0, R)

``y`` is ``(T, M)``, time-major; a NaN entry (or ``False`` in ``mask``) is a missing observation,
element by element. State paths have ``T + 1`` rows, ``u_0`` first; ``u_0`` itself is never
observed, so its filtered and predicted moments are the prior ``(m0, P0)``.

Smoothing never inverts a predicted covariance ``P_{t|t-1}``, which is singular in DSGE-style
models (fewer shocks than states, a known initial state). It uses the Bryson--Frazier / de Jong
backward recursion (Durbin & Koopman 2012, sec. 4.4), which needs only the innovation
covariances ``F_t`` that the filter factorises anyway. With ``K_t = P_{t|t-1} C_t' F_t^{-1}``,
``L_t = A (I - K_t C_t)``, ``r_T = 0`` and ``N_T = 0``, for ``t = T..1``::

    r_{t-1} = C_t' F_t^{-1} v_t + L_t' r_t,     N_{t-1} = C_t' F_t^{-1} C_t + L_t' N_t L_t

    E[u_t | y]       = m_{t|t} + P_{t|t} A' r_t
    Cov(u_t | y)     = P_{t|t} - P_{t|t} A' N_t A P_{t|t}                (t = 0..T)
    Cov(u_t, u_{t-1} | y) = (I - P_{t|t-1} N_{t-1}) A P_{t-1|t-1}          (t = 1..T)

These equal the Rauch--Tung--Striebel formulas (with ``J_t = P_{t|t} A' P_{t+1|t}^{-1}``) whenever
the inverse exists, and stay exact when it does not. Missing entries get a zero row of ``C_t``
(and a unit, uncorrelated variance in ``F_t``), so they contribute nothing.

Posterior draws use the Durbin--Koopman (2002) simulation smoother, which needs only the
smoothed-mean recursion and is therefore just as robust to singular covariances.
"""

from __future__ import annotations

from functools import partial
from numbers import Integral
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array, lax
from jax.scipy.linalg import solve_triangular

from .direct import linear_states, quadratic_observations, quadratic_states
from .guards import finite_or
from .kalman import kalman_filter, observed_mask, observed_system, predict
from .linalg import psd_factor, safe_cholesky, symmetrize


# -- results ----------------------------------------------------------------------------------
class FilterDetails(NamedTuple):
    """Output of :func:`filter_details`. Time index ``t`` of ``(T + 1, ...)`` arrays is ``u_t``
    (index 0 is the prior of ``u_0``); ``(T, ...)`` arrays are for ``y_1..y_T``.

    :ivar filtered_means: ``(T + 1, N)`` ``E[u_t | y_1..y_t]`` (``m0`` first).
    :ivar filtered_covs: ``(T + 1, N, N)`` ``Cov(u_t | y_1..y_t)`` (``P0`` first).
    :ivar predicted_means: ``(T + 1, N)`` ``E[u_t | y_1..y_{t-1}] = A m_{t-1|t-1}`` (``m0`` first).
    :ivar predicted_covs: ``(T + 1, N, N)`` ``A P_{t-1|t-1} A' + B B'`` (``P0`` first).
    :ivar predicted_obs: ``(T + 1, M)`` ``C E[u_t | y_1..y_{t-1}]`` (``C m0`` first), as in
        :class:`~.kalman.KalmanFilterResult`.
    :ivar innovations: ``(T, M)`` ``y_t - C m_{t|t-1}`` on observed entries, **0** on missing
        ones (so that sums and gradients stay finite; use ``observed`` to drop them).
    :ivar innovation_covs: ``(T, M, M)`` ``C P_{t|t-1} C' + R``, the covariance of ``y_t`` given
        ``y_1..y_{t-1}``, for every entry (missing ones included); the likelihood uses its
        observed sub-block.
    :ivar observed: ``(T, M)`` bool, the entries that were observed.
    :ivar log_likelihoods: ``(T,)`` ``log p(y_t | y_1..y_{t-1})`` over observed entries.
    :ivar log_likelihood: scalar, their sum; ``-inf`` on numerical failure.
    :ivar ok: scalar bool, False on numerical failure (non-finite parameters, an innovation
        covariance that is not positive definite); the other fields are then finite but
        meaningless.
    """

    filtered_means: Array
    filtered_covs: Array
    predicted_means: Array
    predicted_covs: Array
    predicted_obs: Array
    innovations: Array
    innovation_covs: Array
    observed: Array
    log_likelihoods: Array
    log_likelihood: Array
    ok: Array


class SmootherResult(NamedTuple):
    """Output of :func:`rts_smoother`.

    :ivar smoothed_means: ``(T + 1, N)`` ``E[u_t | y_1..y_T]``, ``t = 0..T``.
    :ivar smoothed_covs: ``(T + 1, N, N)`` ``Cov(u_t | y_1..y_T)``, ``t = 0..T``.
    :ivar cross_covs: ``(T, N, N)``; row ``t - 1`` is ``Cov(u_t, u_{t-1} | y_1..y_T)``
        ``= E[(u_t - E u_t)(u_{t-1} - E u_{t-1})']`` for ``t = 1..T``. (statsmodels'
        ``smoothed_state_autocov[..., t]`` is ``Cov(alpha_{t+1}, alpha_t)``: the same matrix.)
    :ivar log_likelihood: scalar ``log p(y_1..y_T)``; ``-inf`` on numerical failure.
    :ivar ok: scalar bool, False on numerical failure.
    """

    smoothed_means: Array
    smoothed_covs: Array
    cross_covs: Array
    log_likelihood: Array
    ok: Array


class ForecastResult(NamedTuple):
    """Output of :func:`forecast`; row ``h - 1`` is ``h`` steps ahead, ``h = 1..steps``.

    :ivar state_means: ``(steps, N)``. :ivar state_covs: ``(steps, N, N)``.
    :ivar obs_means: ``(steps, M)``. :ivar obs_covs: ``(steps, M, M)`` (includes ``R``).
    """

    state_means: Array
    state_covs: Array
    obs_means: Array
    obs_covs: Array


class ImpulseResponse(NamedTuple):
    """Output of :func:`impulse_response` / :func:`impulse_response_pruned`.

    Row ``t - 1`` is the response at ``t = 1..steps`` (the shock hits at ``t = 1``). With
    ``shock=None`` a leading ``(K,)`` axis holds the response to each shock in turn.

    :ivar states: ``([K,] steps, N)``. :ivar observables: ``([K,] steps, M)``.
    """

    states: Array
    observables: Array


class FilterGains(NamedTuple):
    """Per-step quantities of the filter that do not depend on ``y`` (``t = 1..T``)."""

    P_pred: Array   # (T, N, N) P_{t|t-1}
    F: Array        # (T, M, M) C P_{t|t-1} C' + R (unmasked)
    K: Array        # (T, N, M) filter gain P_{t|t-1} C_t' F_t^{-1} (zero columns when missing)
    H: Array        # (T, N, M) C_t' F_t^{-1}
    S: Array        # (T, N, N) C_t' F_t^{-1} C_t
    L: Array        # (T, N, N) A (I - K_t C_t)
    ok: Array       # scalar bool, every F_t (masked) positive definite


# -- small private pieces ---------------------------------------------------------------------
def _clean_params(A, B, C, R, m0, P0):
    """Finite stand-ins for non-finite parameters (as :func:`.kalman.kalman_filter` does)."""
    A, ok_A = finite_or(A, 0.0)
    B, ok_B = finite_or(B, 0.0)
    C, ok_C = finite_or(C, 0.0)
    R, ok_R = finite_or(R, jnp.eye(R.shape[0], dtype=R.dtype))
    m0, ok_m = finite_or(m0, 0.0)
    P0, ok_P = finite_or(P0, jnp.eye(P0.shape[0], dtype=P0.dtype))
    return (A, B, C, R, m0, P0), ok_A & ok_B & ok_C & ok_R & ok_m & ok_P


def _predicted_covs(A, Q, filtered_covs):
    """``(T, N, N)`` ``A P_{t-1|t-1} A' + Q`` for ``t = 1..T``, all at once."""
    return symmetrize(jnp.einsum("ij,tjk,lk->til", A, filtered_covs[:-1], A) + Q)


def _gains(A, C, R, P_pred, observed):
    """:class:`FilterGains` from the predicted covariances, vectorised over time (no
    recursion)."""
    N = A.shape[0]
    C_t, R_t = observed_system(C, R, observed)
    CP = jnp.einsum("tmn,tnk->tmk", C_t, P_pred)
    F_t = jnp.einsum("tmk,tjk->tmj", CP, C_t) + R_t
    Lc, ok = safe_cholesky(F_t)
    tri = jax.vmap(lambda Lt, b, trans: solve_triangular(Lt, b, lower=True, trans=trans),
                   in_axes=(0, 0, None))
    G = tri(Lc, C_t, 0)                         # Lc^{-1} C_t          (T, M, N)
    Ht = tri(Lc, G, 1)                          # F^{-1} C_t = H'      (T, M, N)
    H = jnp.swapaxes(Ht, -1, -2)
    S = jnp.einsum("tmi,tmj->tij", G, G)
    K = jnp.einsum("tij,tjm->tim", P_pred, H)
    L = A @ (jnp.eye(N, dtype=A.dtype) - jnp.einsum("tim,tmj->tij", K, C_t))
    C_all = jnp.broadcast_to(C, P_pred.shape[:1] + C.shape[-2:])  # time-varying or not
    F = jnp.einsum("tmn,tnk,tjk->tmj", C_all, P_pred, C_all) + R
    return FilterGains(P_pred, symmetrize(F), K, H, S, L, jnp.all(ok))


def _backward_means(L, H, v):
    """``r_t`` for ``t = 0..T`` (``(T + 1, N)``, ``r_T = 0``): ``r_{t-1} = H_t v_t + L_t' r_t``."""
    def step(r, inputs):
        L_t, H_t, v_t = inputs
        return H_t @ v_t + L_t.T @ r, r

    r_0, rs = lax.scan(step, jnp.zeros(L.shape[-1], L.dtype), (L, H, v), reverse=True)
    return jnp.concatenate([r_0[None], rs])


def _backward_covs(L, S):
    """``N_t``, ``t = 0..T`` (``(T + 1, N, N)``, ``N_T = 0``): ``N_{t-1} = S_t + L_t' N_t L_t``."""
    def step(Nt, inputs):
        L_t, S_t = inputs
        return symmetrize(S_t + L_t.T @ Nt @ L_t), Nt

    N0, Ns = lax.scan(step, jnp.zeros(L.shape[-2:], L.dtype), (L, S), reverse=True)
    return jnp.concatenate([N0[None], Ns])


def _smoothed_from_r(A, filtered_means, filtered_covs, r):
    """``E[u_t | y] = m_{t|t} + P_{t|t} A' r_t`` for ``t = 0..T``."""
    return filtered_means + jnp.einsum("tij,kj,tk->ti", filtered_covs, A, r)


def _mean_smoother(A, C, gains, m0, filtered_covs, y, observed):
    """Smoothed means ``(T + 1, N)`` of ``y`` (zeros where missing) from precomputed gains.

    The covariance recursions do not depend on the data, so the simulation smoother runs only
    this (cheap, vmappable) pass per draw.
    """
    def step(m, inputs):
        y_t, obs_t, K_t, C_t = inputs
        m_pred = A @ m
        v = jnp.where(obs_t, y_t - C_t @ m_pred, 0.0)
        m = m_pred + K_t @ v
        return m, (m, v)

    C_all = jnp.broadcast_to(C, y.shape[:1] + C.shape[-2:])
    _, (ms, v) = lax.scan(step, m0, (y, observed, gains.K, C_all))
    means = jnp.concatenate([m0[None], ms])
    r = _backward_means(gains.L, gains.H, v)
    return _smoothed_from_r(A, means, filtered_covs, r)


def smoothed_mean_effects(A, C, gains, X0, filtered_covs, observed):
    """``(T + 1, N, d)``: the smoothed means of zero data started from each column of ``X0``
    (``(N, d)``), on the gains of a filter pass (the smoothed mean is affine in the prior mean
    and the data; used by the exact diffuse smoother, :mod:`.diffuse`)."""
    zeros = jnp.zeros(observed.shape, X0.dtype)
    smooth = jax.vmap(lambda x0: _mean_smoother(A, C, gains, x0, filtered_covs, zeros,
                                                observed), out_axes=-1)
    return smooth(X0.T)


def _observe(C, u):
    """``C_t u_t`` for states ``u (T, N)``: ``C`` is ``(M, N)`` or time-varying ``(T, M, N)``."""
    return jnp.einsum("tmn,tn->tm", C, u) if C.ndim == 3 else u @ C.T


def _covariance(R):
    """``R (M, M)``, or its ``(M,)`` variances as the diagonal matrix (a vector added to a
    matrix would broadcast along rows instead)."""
    return jnp.diag(R) if R.ndim == 1 else R


def _shock_vector(shock, K, dtype):
    if isinstance(shock, Integral):
        if not 0 <= shock < K:
            raise ValueError(f"shock index must be in [0, {K}); got {shock}")
        return jnp.zeros(K, dtype).at[shock].set(1.0)
    shock = jnp.asarray(shock, dtype)
    if shock.shape != (K,):
        raise ValueError(f"shock must be an int index or a vector of shape (K,) = ({K},); "
                         f"got shape {tuple(shock.shape)}")
    return shock


def _check_steps(steps):
    if not isinstance(steps, Integral) or steps < 0:
        raise ValueError(f"steps must be a non-negative int; got {steps!r}")


def _impulse_noise(shock, steps, K, dtype):
    """``(steps, K)`` noise: the shock at ``t = 1``, zeros after."""
    return jnp.zeros((steps, K), dtype).at[0].set(shock) if steps else jnp.zeros((0, K), dtype)


# -- public kernels ---------------------------------------------------------------------------
def filter_pass(A, B, C, R, m0, P0, y, mask):
    """The shared first half of every smoother here and of the exact diffuse route
    (``_kalman_routes``): the filter, its details and the data-free gains.

    Returns ``(FilterDetails, FilterGains, params)`` where ``params`` are the arguments with
    finite stand-ins for non-finite values.
    """
    (A, B, C, R, m0, P0), params_ok = _clean_params(A, B, C, _covariance(R), m0, P0)
    filt = kalman_filter(A, B, C, R, m0, P0, y, mask, save_everystep=True)
    observed = observed_mask(y, mask)
    y0 = jnp.where(observed, y, 0.0)
    Q = B @ B.T
    P_pred = _predicted_covs(A, Q, filt.filtered_covs)
    m_pred = filt.filtered_means[:-1] @ A.T
    gains = _gains(A, C, R, P_pred, observed)
    innovations = jnp.where(observed, y0 - _observe(C, m_pred), 0.0)
    ok = filt.ok & params_ok & gains.ok
    details = FilterDetails(
        filtered_means=filt.filtered_means,
        filtered_covs=filt.filtered_covs,
        predicted_means=jnp.concatenate([m0[None], m_pred]),
        predicted_covs=jnp.concatenate([P0[None], P_pred]),
        predicted_obs=filt.predicted_obs,
        innovations=innovations,
        innovation_covs=gains.F,
        observed=observed,
        log_likelihoods=filt.log_likelihoods,
        log_likelihood=jnp.where(ok, filt.log_likelihood, -jnp.inf),
        ok=ok,
    )
    return details, gains, (A, B, C, R, m0, P0)



def filter_details(A, B, C, R, m0, P0, y, mask=None) -> FilterDetails:
    """Kalman filter of ``y (T, M)`` with predicted moments and innovations.

    :param A: ``(N, N)``; :param B: ``(N, K)``; :param C: ``(M, N)`` or time-varying
    ``(T, M, N)``; :param R: ``(M, M)``,
    or ``(M,)`` variances of a diagonal one (as :func:`.kalman.kalman_filter`).
    :param m0: ``(N,)`` and :param P0: ``(N, N)``, the prior of ``u_0``.
    :param y: ``(T, M)``, NaN marks a missing entry.
    :param mask: optional ``(T, M)`` bool, False marks a missing entry.
    :return: :class:`FilterDetails`.
    """
    return filter_pass(A, B, C, R, m0, P0, y, mask)[0]


def rts_smoother(A, B, C, R, m0, P0, y, mask=None) -> SmootherResult:
    """Fixed-interval smoother: moments of ``u_0..u_T`` given all of ``y (T, M)``.

    Rauch--Tung--Striebel moments computed by the Bryson--Frazier backward recursion (see the
    module docstring), exact for singular predicted covariances. Arguments as in
    :func:`filter_details`.

    :return: :class:`SmootherResult`.
    """
    details, gains, (A, B, C, R, m0, P0) = filter_pass(A, B, C, R, m0, P0, y, mask)
    r = _backward_means(gains.L, gains.H, details.innovations)
    Ns = _backward_covs(gains.L, gains.S)
    Pf = details.filtered_covs
    means = _smoothed_from_r(A, details.filtered_means, Pf, r)
    AP = jnp.einsum("ij,tjk->tik", A, Pf)                        # A P_{t|t}
    covs = symmetrize(Pf - jnp.einsum("tji,tjk,tkl->til", AP, Ns, AP))
    eye = jnp.eye(A.shape[0], dtype=A.dtype)
    cross = jnp.einsum("tij,tjk->tik", eye - jnp.einsum("tij,tjk->tik", gains.P_pred, Ns[:-1]),
                       AP[:-1])
    return SmootherResult(means, covs, cross, details.log_likelihood, details.ok)


def simulation_smoother(key, A, B, C, R, m0, P0, y, num_samples, mask=None) -> Array:
    """Draws of the state path ``u_0..u_T`` from ``p(u | y)``: ``(num_samples, T + 1, N)``.

    Durbin--Koopman (2002) mean-correction: simulate ``(u+, y+)`` from the model with a
    zero-mean prior, then ``u = u+ + E[u | y - y+]`` (the smoothed mean is affine in ``y``).
    Only the smoothed-mean recursion is run per draw, on gains shared by all draws, so singular
    covariances are as harmless as in :func:`rts_smoother`. Entries of ``y`` that are missing
    stay missing in every ``y+``.

    :param key: a ``jax.random`` key. :param num_samples: static int.
    Other arguments as in :func:`filter_details`. On numerical failure (see
    :attr:`SmootherResult.ok`) the draws are finite but meaningless.
    """
    if not isinstance(num_samples, Integral) or num_samples < 0:
        raise ValueError(f"num_samples must be a non-negative int; got {num_samples!r}")
    details, gains, (A, B, C, R, m0, P0) = filter_pass(A, B, C, R, m0, P0, y, mask)
    T, M = y.shape
    N, K = B.shape
    # One draw for everything: each random-number call is a separate (slow) compilation.
    z = jax.random.normal(key, (num_samples, N + T * (K + M)), A.dtype)
    u0 = z[:, :N] @ psd_factor(P0).T
    w = z[:, N:N + T * K].reshape(num_samples, T, K)
    u_plus = jax.vmap(lambda u0_s, w_s: linear_states(A, B, u0_s, w_s)[0])(u0, w)
    v = z[:, N + T * K:].reshape(num_samples, T, M) @ psd_factor(R).T
    y_plus = jax.vmap(partial(_observe, C))(u_plus[:, 1:]) + v
    observed = details.observed
    y_star = jnp.where(observed, jnp.where(observed, y, 0.0) - y_plus, 0.0)
    means = jax.vmap(lambda ys: _mean_smoother(A, C, gains, m0, details.filtered_covs, ys,
                                               observed))(y_star)
    return u_plus + means


posterior_sample = simulation_smoother


def forecast(A, B, C, R, m_T, P_T, steps) -> ForecastResult:
    """Moments of ``u_{T+h}`` and ``y_{T+h}``, ``h = 1..steps``, given ``u_T ~ N(m_T, P_T)``.

    Typically ``m_T, P_T`` are the last filtered moments. ``steps`` is a static int. ``R``:
    ``(M, M)`` or ``(M,)`` variances. ``C``: ``(M, N)``, or ``(steps, M, N)`` for the design
    matrices of the forecast steps.

    :return: :class:`ForecastResult` (observation covariances include ``R``).
    """
    _check_steps(steps)
    Q = B @ B.T

    def step(carry, _):
        m, P = predict(*carry, A, Q)
        P = symmetrize(P)
        return (m, P), (m, P)

    _, (ms, Ps) = lax.scan(step, (m_T, P_T), None, length=steps)
    C_all = jnp.broadcast_to(C, (steps,) + C.shape[-2:])
    obs_means = _observe(C_all, ms)
    obs_covs = symmetrize(jnp.einsum("tmi,tij,tnj->tmn", C_all, Ps, C_all) + _covariance(R))
    return ForecastResult(ms, Ps, obs_means, obs_covs)


def impulse_response(A, B, C, steps, shock=None) -> ImpulseResponse:
    """Responses of ``u_t`` and ``C u_t``, ``t = 1..steps``, to a shock ``w_1`` at ``t = 1``.

    ``u_0 = 0``, ``u_1 = B w_1``, ``u_t = A u_{t-1}`` after.

    :param steps: static int.
    :param shock: an int ``k`` (a one-standard-deviation shock ``w_1 = e_k``), a ``(K,)`` vector
        ``w_1``, or ``None`` for every unit shock in turn (a leading ``(K,)`` axis).
    :return: :class:`ImpulseResponse`.
    """
    _check_steps(steps)
    K = B.shape[1]
    if shock is None:
        return jax.vmap(lambda s: impulse_response(A, B, C, steps, s))(jnp.eye(K, dtype=A.dtype))
    noise = _impulse_noise(_shock_vector(shock, K, A.dtype), steps, K, A.dtype)
    u = linear_states(A, B, jnp.zeros(A.shape[0], A.dtype), noise)[0][1:]
    return ImpulseResponse(u, u @ C.T)


def impulse_response_pruned(A_0, A_1, A_2, B, C_0, C_1, C_2, steps, shock=None,
                            u0=None) -> ImpulseResponse:
    """Impulse responses of the pruned second-order model (conventions of :mod:`.direct`).

    Defined as the difference between two paths from the same ``u_0`` with no shocks after
    ``t = 1``: one with ``w_1 = shock``, one with ``w_1 = 0``. Unlike the linear case the
    response depends on the sign and size of the shock and on ``u0``; with ``A_0 != 0`` the
    baseline path itself moves (towards the model's fixed point) and is subtracted.

    :param A_0: ``(N,)``; :param A_1: ``(N, N)``; :param A_2: ``(N, N, N)``; :param B: ``(N, K)``.
    :param C_0: ``(M,)``; :param C_1: ``(M, N)``; :param C_2: ``(M, N, N)``.
    :param steps: static int. :param shock: as in :func:`impulse_response`.
    :param u0: ``(N,)`` starting point, zeros by default.
    :return: :class:`ImpulseResponse` of ``u_t`` and ``z_t``, ``t = 1..steps``.
    """
    _check_steps(steps)
    N, K = B.shape
    if shock is None:
        return jax.vmap(lambda s: impulse_response_pruned(
            A_0, A_1, A_2, B, C_0, C_1, C_2, steps, s, u0))(jnp.eye(K, dtype=A_1.dtype))
    u0 = jnp.zeros(N, A_1.dtype) if u0 is None else jnp.asarray(u0, A_1.dtype)
    shocked = _impulse_noise(_shock_vector(shock, K, A_1.dtype), steps, K, A_1.dtype)

    def path(noise):
        u, uf, _ = quadratic_states(A_0, A_1, A_2, B, u0, noise, pruned=True)
        return u[1:], quadratic_observations(C_0, C_1, C_2, u, uf)[1:]

    u_s, z_s = path(shocked)
    u_b, z_b = path(jnp.zeros_like(shocked))
    return ImpulseResponse(u_s - u_b, z_s - z_b)
