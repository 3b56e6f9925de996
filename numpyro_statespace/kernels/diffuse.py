r"""Exact diffuse initialisation, the first observed state's prior, and a likelihood burn-in.

**Diffuse states.** Some states of the initial one have an improper flat prior (unit roots:
a level, a trend): ``u_init = m0 + S delta + x``, ``x ~ N(0, P_*)``, ``delta`` flat, ``S`` the
``(N, d)`` selection of the diffuse states (``P_*`` is zero in their rows and columns). The
exact diffuse log-likelihood of Koopman (1997) and Koopman & Durbin (2003) is the limit

.. math::
    \log L_d = \lim_{\kappa\to\infty} \big[\log p_\kappa(y) + \tfrac d2 \log\kappa\big],
    \qquad \delta \sim N(0, \kappa I_d).

Here it is computed in de Jong's (1991) augmented form, which has the same value: ``delta``
enters the model only through the prior mean, and every innovation is affine in it,
``e_t(delta) = e_t + V_t delta`` (``V_t`` the innovations of the zero-data filter started from
the mean ``S``). With the whitened ``e~_t = F_t^{-1/2} e_t``, ``V~_t = F_t^{-1/2} V_t``,
``Omega = sum_t V~_t' V~_t`` and ``s = -sum_t V~_t' e~_t``, the Gaussian integral over
``delta`` gives

.. math::
    \log L_d = \log p(y \mid \delta = 0) + \tfrac12 s^\top \Omega^{-1} s
               - \tfrac12 \log|\Omega|,

where ``log p(y | delta = 0)`` is the ordinary filter's log-likelihood (all ``n`` observed
entries counted in ``n log 2 pi``, as statsmodels and Durbin & Koopman count them). The
posterior of ``delta`` is ``N(Omega^{-1} s, Omega^{-1})``, and because the smoothed state mean
is affine in ``delta`` with a covariance that does not depend on it, the exact diffuse
smoother is the ordinary smoother started from ``m0 + S delta_hat``, plus
``H_t Omega^{-1} H_t'`` on its covariances (``H_t`` the smoothed means of the zero-data problem
started from ``S``); a posterior path is an ordinary simulation-smoother draw at ``delta_hat``
plus ``H (delta - delta_hat)`` with ``delta ~ N(delta_hat, Omega^{-1})``. Everything reuses the
proper filter and smoother; ``Omega`` singular (a diffuse direction the data never see) is a
numerical failure (``-inf``).

**The first observed state's prior** (statsmodels' ``a_1, P_1``): the prior is put on ``u_1``
(and ``u_0 = u_1``, no shock in the first step). :func:`first_state_update` conditions it on
``y_1``; the rest of the series is then an ordinary problem whose prior is the filtered
``u_1``, and a diffuse part carries over with the loading ``(I - K_1 C_1) S``.

**Burn-in** (``loglikelihood_burn = b``): the log-likelihood of ``y_{b+1..T}`` given
``y_{1..b}``, i.e. ``log L(y_{1..T}) - log L(y_{1..b})``; with diffuse states the first ``b``
steps must identify them (``Omega_b`` positive definite), as in statsmodels where the burn-in
covers the diffuse periods.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array, lax
from jax.scipy.linalg import cho_solve, solve_triangular

from .kalman import observed_system
from .linalg import LOG_2PI, logdet_from_cholesky, safe_cholesky, symmetrize


class FirstStep(NamedTuple):
    """Output of :func:`first_state_update`: ``u_1 | y_1`` and the first step's terms.

    :ivar mean: ``(N,)``; :ivar cov: ``(N, N)``; :ivar loading: ``(N, d)``, the filtered
        mean's loading on the diffuse ``delta``; :ivar e: ``(M,)`` whitened innovation
        (0 where missing); :ivar V: ``(M, d)`` whitened innovation loading;
        :ivar log_likelihood: ``log p(y_1)`` at ``delta = 0``; :ivar ok: scalar bool.
    """

    mean: Array
    cov: Array
    loading: Array
    e: Array
    V: Array
    log_likelihood: Array
    ok: Array


def first_state_update(C, R, a1, P1, S, y1, observed):
    """Condition ``u_1 ~ N(a1 + S delta, P1)`` on ``y_1 = C u_1 + v_1`` (observed entries).

    :param C: ``(M, N)``; :param R: ``(M, M)``; :param S: ``(N, d)``; :param y1: ``(M,)`` with
        missing entries zeroed; :param observed: ``(M,)`` bool. :return: :class:`FirstStep`.
    """
    C_t, R_t = observed_system(C, R, observed[None])
    C_t, R_t = C_t[0], R_t[0]
    CP = C_t @ P1
    L, ok = safe_cholesky(symmetrize(CP @ C_t.T + R_t))
    L = jnp.where(ok, L, jnp.eye(L.shape[0], dtype=L.dtype))
    W = solve_triangular(L, CP, lower=True)                  # L^-1 C P1
    e = solve_triangular(L, jnp.where(observed, y1 - C @ a1, 0.0), lower=True)
    V = -solve_triangular(L, C_t @ S, lower=True)
    K_t = solve_triangular(L, W, lower=True, trans=1).T      # P1 C' F^-1
    mean = a1 + W.T @ e
    cov = symmetrize(P1 - W.T @ W)
    loading = S - K_t @ (C_t @ S)
    ll = -0.5 * (jnp.sum(observed) * LOG_2PI + logdet_from_cholesky(L) + e @ e)
    return FirstStep(mean, cov, loading, e, V, ll, ok)


def whitened(innovations, innovation_covs, observed):
    """``(e~ (T, M), factors (T, M, M), ok)``: innovations whitened by the lower Cholesky
    factors of their covariances (missing entries: unit variance, uncorrelated, zero)."""
    both = observed[:, :, None] & observed[:, None, :]
    eye = jnp.eye(observed.shape[1], dtype=innovation_covs.dtype)
    F = jnp.where(both, innovation_covs, 0.0) + eye * ~observed[:, None, :]
    L, ok = safe_cholesky(F)
    L = jnp.where(ok[..., None, None], L, jnp.eye(F.shape[-1], dtype=F.dtype))
    e = jax.vmap(lambda L_t, e_t: solve_triangular(L_t, e_t, lower=True))(L, innovations)
    return e, L, jnp.all(ok)


def whiten_loadings(L, V):
    """``L_t^{-1} V_t`` for the factors ``L (T, M, M)`` of :func:`whitened`."""
    return jax.vmap(lambda L_t, V_t: solve_triangular(L_t, V_t, lower=True))(L, V)


def prior_mean_effects(A, C, K, X0, observed):
    """Effects of moving the prior mean by ``X0`` (``(N, d)``) on the filter of zero data:
    ``(V (T, M, d), G (T + 1, N, d))``, the innovations and the filtered means.

    :param K: ``(T, N, M)`` the proper filter's gains (zero columns where missing).
    :param C: ``(M, N)`` or ``(T, M, N)``.
    """
    C_all = jnp.broadcast_to(C, observed.shape + C.shape[-1:])

    def step(G, inputs):
        K_t, C_t, obs_t = inputs
        G_pred = A @ G
        V_t = jnp.where(obs_t[:, None], -C_t @ G_pred, 0.0)
        G = G_pred + K_t @ V_t
        return G, (G, V_t)

    _, (Gs, V) = lax.scan(step, X0, (K, C_all, observed))
    return V, jnp.concatenate([X0[None], Gs])


class DiffuseTerms(NamedTuple):
    """The augmented log-likelihood's pieces (see the module docstring).

    :ivar log_likelihood: exact diffuse ``log L_d`` (with the burn-in left out); ``-inf`` on
        failure. :ivar delta: ``(d,)`` posterior mean of the diffuse part.
    :ivar precision_factor: ``(d, d)`` lower Cholesky factor of ``Omega``.
    :ivar ok: scalar bool.
    """

    log_likelihood: Array
    delta: Array
    precision_factor: Array
    ok: Array


def _profile(e, V):
    """For ``d = 0`` (no diffuse state) all zero.
    ``(1/2 s' Omega^-1 s - 1/2 log|Omega|, Omega^-1 s, factor of Omega, ok)`` of whitened
    innovations ``e (T, M)`` and loadings ``V (T, M, d)``."""
    d = V.shape[-1]
    if d == 0:
        zero = jnp.zeros((), e.dtype)
        return zero, jnp.zeros(0, e.dtype), jnp.zeros((0, 0), e.dtype), jnp.array(True)
    Omega = symmetrize(jnp.einsum("tmi,tmj->ij", V, V))
    s = -jnp.einsum("tmi,tm->i", V, e)
    L, ok = safe_cholesky(Omega)
    L = jnp.where(ok, L, jnp.eye(d, dtype=V.dtype))
    delta = cho_solve((L, True), s)
    return 0.5 * s @ delta - 0.5 * logdet_from_cholesky(L), delta, L, ok


def diffuse_loglik(log_likelihoods, e, V, burn=0):
    """:class:`DiffuseTerms` from the proper filter's per-step log-likelihoods ``(T,)`` (at
    ``delta = 0``), whitened innovations ``e (T, M)`` and loadings ``V (T, M, d)``; ``burn``
    (static int) leaves the first steps out (``log L(y) - log L(y_{1..burn})``)."""
    extra, delta, L, ok = _profile(e, V)
    ll = jnp.sum(log_likelihoods[burn:]) + extra
    if burn and V.shape[-1]:
        extra_b, _, _, ok_b = _profile(e[:burn], V[:burn])
        ll, ok = ll - extra_b, ok & ok_b
    ok = ok & jnp.isfinite(ll)
    return DiffuseTerms(jnp.where(ok, ll, -jnp.inf), delta, L, ok)


def added_covariance(H, L):
    """``(H_t Omega^-1 H_t', H_t Omega^-1 H_{t-1}')``, the diffuse part's share of the
    smoothed covariances and lag-one cross-covariances, for loadings ``H (T + 1, N, d)`` and
    the factor ``L`` of ``Omega``."""
    W = jax.vmap(lambda H_t: solve_triangular(L, H_t.T, lower=True))(H)   # (T + 1, d, N)
    return (jnp.einsum("tdi,tdj->tij", W, W),
            jnp.einsum("tdi,tdj->tij", W[1:], W[:-1]))
