"""The Kalman log-likelihood alone, with a hand-written derivative.

Differentiating the filter's scan step by step (JAX's default) differentiates every Cholesky
factorisation, triangular solve and guard inside the sequential loop, and the reverse pass
replays them backwards: 5-10 times the filter's cost for small models. Here the gradient is the
filter's adjoint recursion written out. With the forward pass's gains ``K_t = P_t C_t' S_t^-1``
(``P_t`` the predicted covariance, ``S_t`` the innovation covariance), ``J_t = I - K_t C_t`` and
``F_t = A J_t``, the tangents of the predicted moments obey::

    dP_{t+1} = F_t dP_t F_t' + Phi_t,      dm_{t+1} = F_t (dm_t + dP_t C_t' u_t) + phi_t,

``u_t = S_t^-1 v_t``, with sources ``Phi_t``, ``phi_t`` linear in the parameters' tangents; the
adjoint of that recursion (:func:`_gradient`) runs backwards with two ``N x N`` products per
step. Everything else (gains, sources, the gradient's assembly) is a product over all steps at
once, outside the loop, from the moments the filter stored.

The gradient is computed inside a ``custom_jvp`` rule from primal values only and the tangent
is its inner product with the parameters' tangents: reverse mode (NUTS) and forward mode
(``jacfwd``) both work, and so do higher derivatives (JAX differentiates the rule). A
``custom_vjp`` would lose forward mode; a tangent scan for JAX to transpose would hit a
transposition bug in ``lax.scan`` under ``custom_jvp`` in jaxlib 0.9. The value is the filter's
(:mod:`.kalman`), bit for bit; short series (fully unrolled) keep JAX's own derivative, which is
faster there.

:func:`kalman_loglik` switches to the steady state once the covariance has converged
(:mod:`.steady_state`; when it checks: :func:`steady_state_horizon`).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy.linalg import solve_triangular

from ._batching import unbatched_all
from .guards import moment_bound
from .kalman import FULL_UNROLL_MAX_STEPS, _filter_scan, _prepare, observed_system
from .linalg import matmul, safe_cholesky
from .linalg import transpose as _mT
from .steady_state import riccati_converged, riccati_settled, steady_state_loglik


def _sym2(x):
    return x + _mT(x)


def _residuals(A, C, R, univariate, m0, ms, Ps, m_pred, P_pred, AP, y, observed):
    """What the adjoint recursion needs, for all ``T`` steps at once, from the filter's stored
    filtered (``ms (T, N)``, ``Ps (T, N, N)``) and predicted moments and ``AP = A P_{t-1}``.
    After a numerical failure these may be anything: the caller discards the gradient."""
    C_t, R_t = observed_system(C, jnp.diag(R) if univariate else R, observed)
    v = jnp.where(observed, y - m_pred @ C.T, 0.0)
    G = jnp.where(observed[:, :, None], jnp.einsum("mn,tnk->tmk", C, P_pred), 0.0)  # C_t P_pred
    L, _ = safe_cholesky(jnp.where(observed[:, None, :], G @ C.T, 0.0) + R_t)
    # S^-1 from the factor's inverse, then products: XLA's batched triangular solve is slow
    # per right-hand side, so solve for M columns rather than N + M + 1
    L_inv = solve_triangular(L, jnp.broadcast_to(jnp.eye(L.shape[-1], dtype=L.dtype), L.shape),
                             lower=True)
    S_inv = _mT(L_inv) @ L_inv
    u = jnp.einsum("tij,tj->ti", S_inv, v)
    K = _mT(S_inv @ G)
    J = jnp.eye(A.shape[0], dtype=A.dtype) - K @ C_t
    return dict(m_prev=jnp.concatenate([m0[None], ms[:-1]]), AP=AP, m_pred=m_pred,
                P_pred=P_pred, ms=ms, Ps=Ps, C_t=C_t, K=K, u=u, J=J, F=A @ J, c=u @ C,
                Z=S_inv - u[:, :, None] * u[:, None, :])


def _gradient(r, A, univariate, observed, P_hat, m_hat, unroll=None):
    """Gradient of ``log-likelihood + <P_hat, P_T> + <m_hat, m_T>`` (the adjoints of the last
    filtered moments, zero unless a steady-state tail follows) with respect to
    ``(A, Q, C, R, m0, P0, y)``, from the residuals ``r`` of :func:`_residuals`.

    The adjoint of the tangent recursion in the module docstring: with ``Lam_t``, ``lam_t`` the
    adjoints of the predicted covariance and mean at ``t``::

        Lam_t = H_t + F_t' Lam_{t+1} F_t + sym(F_t' lam_{t+1} c_t'),   lam_t = c_t + F_t' lam_{t+1},

    ``H_t = -C_t' Z_t C_t / 2``, ``c_t = C_t' u_t``; two ``N x N`` products per step, run backwards.
    Everything else is a product over all steps at once.
    """
    C_t, K, u, Z, J, F, c = (r[k] for k in ("C_t", "K", "u", "Z", "J", "F", "c"))
    Ps, ms, P_pred, m_pred = r["Ps"], r["ms"], r["P_pred"], r["m_pred"]
    H = -0.5 * _mT(C_t) @ Z @ C_t
    # the last step's adjoints: its log-likelihood term and the adjoints of (m_T, P_T)
    w = J[-1].T @ m_hat
    Lam_T = H[-1] + J[-1].T @ P_hat @ J[-1] + 0.5 * _sym2(jnp.outer(w, c[-1]))
    lam_T = c[-1] + w

    def step(carry, x):
        Lam, lam = carry
        F_t, c_t, H_t = x
        Fl = matmul(F_t.T, lam)
        Lam = H_t + matmul(matmul(F_t.T, Lam), F_t) + 0.5 * _sym2(jnp.outer(Fl, c_t))
        lam = c_t + Fl
        return (Lam, lam), (Lam, lam)

    T = u.shape[0]
    if unroll is None:
        unroll = max(T - 1, 1) if T <= FULL_UNROLL_MAX_STEPS else 1
    _, (Lam, lam) = lax.scan(step, (Lam_T, lam_T), (F[:-1], c[:-1], H[:-1]), reverse=True,
                             unroll=unroll)
    Lam = jnp.concatenate([Lam, Lam_T[None]])
    lam = jnp.concatenate([lam, lam_T[None]])
    # adjoints of the filtered moments at t = 1..T: Omega_t = A' Lam_{t+1} A, omega_t = A' lam_{t+1}
    # (Omega_T = P_hat, omega_T = m_hat), needed only as K_t' Omega_t, K_t' omega_t
    omega = jnp.concatenate([lam[1:] @ A, m_hat[None]])
    Ko = jnp.einsum("tnm,tn->tm", K, omega)
    AK = jnp.einsum("ij,tjm->tim", A, K[:-1])
    KOmega = jnp.concatenate([_mT(AK) @ Lam[1:] @ A, (K[-1].T @ P_hat)[None]])
    g_A = (2.0 * jnp.einsum("tij,tjk->ik", Lam, r["AP"])
           + jnp.einsum("ti,tj->ij", lam, r["m_prev"]))
    g_C = (-2.0 * KOmega @ Ps - Z @ C_t @ P_pred
           + u[:, :, None] * (jnp.einsum("tij,tj->ti", Ps, omega) + m_pred)[:, None, :]
           - Ko[:, :, None] * ms[:, None, :])
    g_R = KOmega @ K - 0.5 * Z - Ko[:, :, None] * u[:, None, :]
    both = observed[:, :, None] & observed[:, None, :]
    g_C = jnp.sum(jnp.where(observed[:, :, None], g_C, 0.0), axis=0)
    g_R = jnp.sum(jnp.where(both, g_R, 0.0), axis=0)
    g_R = jnp.diagonal(g_R) if univariate else 0.5 * _sym2(g_R)
    g_y = jnp.where(observed, Ko - u, 0.0)
    return g_A, jnp.sum(Lam, axis=0), g_C, g_R, A.T @ lam[0], A.T @ Lam[0] @ A, g_y


def _steady_tail(A, Q, C, R, m, P, y, univariate, n=None):
    """``(log-likelihood, ok)`` of ``y`` (all observed; its first ``n`` rows if given) from the
    filtered ``N(m, P)`` at the steady-state gain (:func:`.steady_state.steady_state_loglik`)."""
    # bounded data only: an overflowing product would leave NaN in the gradient
    y_ok = jnp.abs(y) < moment_bound(y.dtype)
    ll, ok = steady_state_loglik(m, P, A, Q, C, jnp.diag(R) if univariate else R,
                                 jnp.where(y_ok, y, 0.0), n)
    return ll, ok & jnp.all(y_ok)


def _use_steady_tail(A, Q, C, R, P, observed, univariate):
    """The switch: the covariance has converged (see :mod:`.steady_state`) and nothing is
    missing in the rest of the series; under ``vmap``, for every member (:mod:`._batching`)."""
    return unbatched_all(riccati_converged(P, A, Q, C, jnp.diag(R) if univariate else R)
                         & jnp.all(observed))


def _tail(A, Q, C, R, m, P, y, observed, univariate):
    """Log-likelihood of the rest of the series from the filtered ``N(m, P)``: at the
    steady-state gain if :func:`_use_steady_tail`, else the full filter. Returns
    ``(log-likelihood, ok)``."""

    def full(m, P):
        ll = _loglik(A, Q, C, R, m, P, y, observed, jnp.array(True), univariate, None)
        return ll, ll > -jnp.inf

    return lax.cond(_use_steady_tail(A, Q, C, R, P, observed, univariate),
                    partial(_steady_tail, A, Q, C, R, y=y, univariate=univariate), full, m, P)


def _tail_value_and_grad(A, Q, C, R, m, P, y, observed, univariate, steady_ok=True):
    """:func:`_tail` and its gradient with respect to ``(A, Q, C, R, m, P, y)``: the branch is
    chosen first and each branch computes its own gradient (JAX's for the steady tail, the
    adjoint recursion for the full filter), which compiles to a smaller program than JAX's
    derivative of the branch; ``steady_ok=False`` (static) compiles the full filter alone.
    Returns ``(log-likelihood, ok, gradient)``."""

    def steady(A, Q, C, R, m, P, y):
        ll, vjp, ok = jax.vjp(partial(_steady_tail, univariate=univariate), A, Q, C, R, m, P, y,
                              has_aux=True)
        return ll, ok, vjp(jnp.ones_like(ll))

    def full(A, Q, C, R, m, P, y):
        (_, _, ll, ok, _), saved = _filter_scan(A, Q, C, R, univariate, m, P, y, observed,
                                                jnp.array(True), True, save_predicted=True)
        g = _adjoint(A, C, R, univariate, m, saved, y, observed, jnp.zeros_like(P),
                     jnp.zeros_like(m))
        return ll, ok, g

    if not steady_ok:
        return full(A, Q, C, R, m, P, y)
    return lax.cond(_use_steady_tail(A, Q, C, R, P, observed, univariate), steady, full,
                    A, Q, C, R, m, P, y)


def _adjoint(A, C, R, univariate, m0, saved, y, observed, P_hat, m_hat, unroll=None):
    """:func:`_gradient` from what :func:`.kalman._filter_scan` saved (``save_predicted``)."""
    ms, Ps, _, _, m_pred, P_pred, AP = saved
    r = _residuals(A, C, R, univariate, m0, ms, Ps, m_pred, P_pred, AP, y, observed)
    return _gradient(r, A, univariate, observed, P_hat, m_hat, unroll)


@partial(jax.custom_jvp, nondiff_argnums=(9, 10))
def _loglik(A, Q, C, R, m0, P0, y, observed, ok, univariate, start):
    """Log-likelihood (``-inf`` on failure) from ``_prepare``'s sanitised parameters (``y`` with
    missing entries zeroed, ``observed`` mask): the full filter, or (static ``start``) the full
    filter over ``y[:start]`` and :func:`_tail` over the rest."""
    head = slice(None) if start is None else slice(None, start)
    (m, P, ll, ok, _), _ = _filter_scan(A, Q, C, R, univariate, m0, P0, y[head], observed[head],
                                        ok, False)
    if start is not None:
        ll_tail, ok_tail = _tail(A, Q, C, R, m, P, y[start:], observed[start:], univariate)
        ok = ok & ok_tail
        ll = ll + jnp.where(ok_tail, ll_tail, 0.0)
    return jnp.where(ok, ll, -jnp.inf)


@_loglik.defjvp
def _loglik_jvp(univariate, start, primals, tangents):
    A, Q, C, R, m0, P0, y, observed, ok = primals
    head = slice(None) if start is None else slice(None, start)
    (m, P, ll, ok, _), saved = _filter_scan(A, Q, C, R, univariate, m0, P0, y[head],
                                            observed[head], ok, True, save_predicted=True)
    m_hat, P_hat = jnp.zeros_like(m), jnp.zeros_like(P)
    if start is not None:
        ll_tail, ok_tail, g_tail = _tail_value_and_grad(A, Q, C, R, m, P, y[start:],
                                                        observed[start:], univariate)
        m_hat, P_hat = g_tail[4], 0.5 * _sym2(g_tail[5])
        ok = ok & ok_tail
        ll = ll + jnp.where(ok_tail, ll_tail, 0.0)
    g = list(_adjoint(A, C, R, univariate, m0, saved, y[head], observed[head], P_hat, m_hat))
    if start is not None:
        g[:4] = [a + b for a, b in zip(g[:4], g_tail[:4])]
        g[6] = jnp.concatenate([g[6], g_tail[6]])
    # a failed filter leaves arbitrary numbers in g: the likelihood is -inf, its gradient zero
    ok = ok & jnp.all(jnp.stack([jnp.all(jnp.isfinite(g_i)) for g_i in g]))
    dll = sum(jnp.sum(jnp.where(ok, g_i, 0.0) * t_i) for g_i, t_i in zip(g, tangents[:7]))
    return jnp.where(ok, ll, -jnp.inf), dll


#: The run-time switch (:func:`_auto_loglik`) filters chunks of this many steps and checks for
#: convergence after each: a switch at most this many steps late, against a while loop of
#: chunks that each batch their gradient's residuals (per-step iterations pay XLA's loop
#: overhead and unbatched factorisations).
STEADY_STATE_EVERY = 8


def _pad(y, observed, length):
    """``y``, ``observed`` and ``rest`` (``(length + 1,)`` bool: no entry of ``y[t:]`` is
    missing) extended to ``length`` steps by missing observations, pure predictions that change
    neither the likelihood nor its gradient."""
    T, M = y.shape
    missing = jnp.cumsum(~jnp.all(observed, axis=1)[::-1])[::-1]
    rest = jnp.concatenate([missing == 0, jnp.ones(length + 1 - T, bool)])
    return (jnp.concatenate([y, jnp.zeros((length - T, M), y.dtype)]),
            jnp.concatenate([observed, jnp.zeros((length - T, M), bool)]), rest)


def _head(A, Q, C, R, univariate, m0, P0, y, observed, rest, ok, horizon, save):
    """The full filter in chunks of :data:`STEADY_STATE_EVERY` steps from the prior, until after
    a chunk the covariance has converged (:func:`.steady_state.riccati_settled`) and no later
    entry of ``y`` is missing (``rest``, see :func:`_pad`), or ``horizon`` (static, a multiple
    of the chunk) steps are done.

    Returns ``(s, m, P, ll, ok, settled, saved)``: the steps filtered, the filtered moments and
    log-likelihood after them, whether the switch is taken, and with ``save`` the filter's
    per-step outputs (:func:`.kalman._filter_scan`'s ``save_predicted``) in buffers of
    ``horizon`` steps, valid up to ``s``. Under ``vmap`` the batch stops together
    (:mod:`._batching`), so ``s`` and ``settled`` are unbatched."""
    b = STEADY_STATE_EVERY
    R_mat = jnp.diag(R) if univariate else R
    N = A.shape[0]
    vec, mat = jnp.zeros((horizon, N), A.dtype), jnp.zeros((horizon, N, N), A.dtype)
    bufs = (vec, mat, vec, mat, mat) if save else ()

    def body(carry):
        k, m, P_before, ll, ok, _, bufs = carry
        t = k * b
        chunk = (lax.dynamic_slice_in_dim(y, t, b), lax.dynamic_slice_in_dim(observed, t, b))
        (m, P, ll_k, ok, _), out = _filter_scan(A, Q, C, R, univariate, m, P_before, *chunk, ok,
                                                save, save_predicted=save, unroll=1)
        if save:
            ms, Ps, _, _, m_pred, P_pred, AP = out
            bufs = tuple(lax.dynamic_update_slice_in_dim(buf, x, t, 0)
                         for buf, x in zip(bufs, (ms, Ps, m_pred, P_pred, AP)))
        settled = unbatched_all(riccati_settled(P_before, P, A, Q, C, R_mat) & rest[t + b])
        return k + 1, m, P, ll + ll_k, ok, settled, bufs

    def more(carry):
        return (carry[0] < horizon // b) & ~carry[5]

    init = (jnp.zeros((), jnp.int32), m0, P0, jnp.zeros((), P0.dtype), ok, jnp.array(False),
            bufs)
    k, m, P, ll, ok, settled, bufs = lax.while_loop(more, body, init)
    return k * b, m, P, ll, ok, settled, bufs


def _rest_from(y, s, width):
    """``y[s:]`` in ``width`` rows (zeros after ``T - s`` of them), ``s`` traced."""
    padded = jnp.concatenate([y, jnp.zeros((width, y.shape[1]), y.dtype)])
    return lax.dynamic_slice_in_dim(padded, s, width)


def _auto_tail(A, Q, C, R, m, P, y, observed, s, settled, horizon, univariate, grad):
    """Log-likelihood of ``y[s:]`` (``y (T, M)`` unpadded) from the filtered ``N(m, P)`` after
    :func:`_head`: at the steady-state gain if ``settled``; else ``s == horizon`` and the full
    filter runs to the end (nothing is left if the head covered the series). Returns
    ``(log-likelihood, ok)``, and with ``grad`` also the gradient with respect to ``(A, Q, C,
    R, m, P, y)``, each branch computing its own as in :func:`_tail_value_and_grad`."""
    T, width = y.shape[0], y.shape[0] - STEADY_STATE_EVERY     # s >= one chunk

    def steady_ll(A, Q, C, R, m, P, y):
        return _steady_tail(A, Q, C, R, m, P, _rest_from(y, s, width), univariate,
                            jnp.maximum(T - s, 0))

    def steady(A, Q, C, R, m, P, y):
        if not grad:
            return steady_ll(A, Q, C, R, m, P, y)
        ll, vjp, ok = jax.vjp(steady_ll, A, Q, C, R, m, P, y, has_aux=True)
        return ll, ok, vjp(jnp.ones_like(ll))

    def full(A, Q, C, R, m, P, y):
        if horizon >= T:
            ll, ok = jnp.zeros((), y.dtype), jnp.array(True)
            return (ll, ok, jax.tree.map(jnp.zeros_like, (A, Q, C, R, m, P, y))) if grad \
                else (ll, ok)
        if not grad:
            ll = _loglik(A, Q, C, R, m, P, y[horizon:], observed[horizon:], jnp.array(True),
                         univariate, None)
            return ll, ll > -jnp.inf
        ll, ok, g = _tail_value_and_grad(A, Q, C, R, m, P, y[horizon:], observed[horizon:],
                                         univariate, steady_ok=False)
        g_y = jnp.concatenate([jnp.zeros((horizon, y.shape[1]), y.dtype), g[6]])
        return ll, ok, g[:6] + (g_y,)

    return lax.cond(settled, steady, full, A, Q, C, R, m, P, y)


def _auto_head(A, Q, C, R, m0, P0, y, observed, ok, univariate, horizon, save):
    """:func:`_head` over ``y`` padded to whole chunks and its tail :func:`_auto_tail`."""
    T = y.shape[0]
    y_pad, observed_pad, rest = _pad(y, observed, max(horizon, T))
    head = _head(A, Q, C, R, univariate, m0, P0, y_pad, observed_pad, rest, ok, horizon, save)
    s, m, P, _, _, settled, _ = head
    tail = _auto_tail(A, Q, C, R, m, P, y, observed, s, settled, horizon, univariate, save)
    return head, tail, y_pad, observed_pad


@partial(jax.custom_jvp, nondiff_argnums=(9, 10))
def _auto_loglik(A, Q, C, R, m0, P0, y, observed, ok, univariate, horizon):
    """:func:`_loglik` with the switch step found at run time: the full filter until the
    covariance has converged (:func:`_head`, at most ``horizon`` steps), then the steady-state
    tail, or the full filter to the end if it has not converged by ``horizon``."""
    (_, _, _, ll, ok, _, _), (ll_tail, ok_tail), _, _ = _auto_head(
        A, Q, C, R, m0, P0, y, observed, ok, univariate, horizon, False)
    ok = ok & ok_tail
    return jnp.where(ok, ll + jnp.where(ok_tail, ll_tail, 0.0), -jnp.inf)


@_auto_loglik.defjvp
def _auto_loglik_jvp(univariate, horizon, primals, tangents):
    A, Q, C, R, m0, P0, y, observed, ok = primals
    b = STEADY_STATE_EVERY
    head, tail, y_pad, observed_pad = _auto_head(A, Q, C, R, m0, P0, y, observed, ok,
                                                 univariate, horizon, True)
    s, _, _, ll, ok, _, bufs = head
    ll_tail, ok_tail, g_tail = tail
    ok = ok & ok_tail
    ll = ll + jnp.where(ok_tail, ll_tail, 0.0)

    # the head's adjoint, chunk by chunk backwards from the tail's adjoints of (m_s, P_s)
    def back(carry):
        k, m_hat, P_hat, g, g_y = carry
        k = k - 1
        t = k * b
        ms, Ps, m_pred, P_pred, AP = (lax.dynamic_slice_in_dim(x, t, b) for x in bufs)
        m_before = jnp.where(k == 0, m0, bufs[0][jnp.maximum(t - 1, 0)])
        g_k = _adjoint(A, C, R, univariate, m_before, (ms, Ps, None, None, m_pred, P_pred, AP),
                       lax.dynamic_slice_in_dim(y_pad, t, b),
                       lax.dynamic_slice_in_dim(observed_pad, t, b), P_hat, m_hat, unroll=1)
        g = tuple(a + c for a, c in zip(g, g_k[:4]))
        g_y = lax.dynamic_update_slice_in_dim(g_y, g_k[6], t, 0)
        return k, g_k[4], 0.5 * _sym2(g_k[5]), g, g_y

    g_y = jnp.zeros_like(y_pad).at[:y.shape[0]].set(g_tail[6])
    init = (s // b, g_tail[4], 0.5 * _sym2(g_tail[5]), tuple(g_tail[:4]), g_y)
    _, g_m0, g_P0, g, g_y = lax.while_loop(lambda c: c[0] > 0, back, init)
    g = list(g) + [g_m0, g_P0, g_y[:y.shape[0]]]
    # a failed filter leaves arbitrary numbers in g: the likelihood is -inf, its gradient zero
    ok = ok & jnp.all(jnp.stack([jnp.all(jnp.isfinite(g_i)) for g_i in g]))
    dll = sum(jnp.sum(jnp.where(ok, g_i, 0.0) * t_i) for g_i, t_i in zip(g, tangents[:7]))
    return jnp.where(ok, ll, -jnp.inf), dll


def _filter_loglik(A, B, C, R, m0, P0, y, mask, unroll=None):
    A, Q, C, R, m0, P0, y, observed, univariate, ok = _prepare(A, B, C, R, m0, P0, y, mask)
    (_, _, ll, ok, _), _ = _filter_scan(A, Q, C, R, univariate, m0, P0, y, observed, ok, False,
                                        unroll=unroll)
    return jnp.where(ok, ll, -jnp.inf)


@jax.custom_jvp
def _short_series_loglik(A, B, C, R, m0, P0, y, mask):
    """The log-likelihood of a short series (``T <= FULL_UNROLL_MAX_STEPS``). Its derivatives
    are JAX's, of the fully unrolled filter: faster than the batched residuals of the
    hand-written derivative there. The value alone runs the rolled scan: called from Python,
    a program costs the runtime per call in proportion to its size rather than its steps, so
    the rolled scan is the cheaper of the two (see benchmarks/README.md). Same values to
    round-off."""
    return _filter_loglik(A, B, C, R, m0, P0, y, mask, unroll=1)


@_short_series_loglik.defjvp
def _short_series_loglik_jvp(primals, tangents):
    return jax.jvp(_filter_loglik, primals, tangents)


#: Series shorter than this are always filtered in full.
STEADY_STATE_MIN_STEPS = 64
#: Below this many states a series shorter than 1000 steps is filtered in full.
STEADY_STATE_MIN_STATES = 8


def steady_state_horizon(T, N):
    """How many steps :func:`kalman_loglik` filters in full at most while it waits for the
    covariance to converge, for ``T`` steps and ``N`` states: the whole series (in whole chunks
    of :data:`STEADY_STATE_EVERY` steps) up to 2000 steps, beyond that ``max(1000, T // 10)``
    rounded down to a chunk, after which the full filter goes on to the end (the bound keeps
    the stored head of a long series small); ``None`` (no switch) for
    ``T < STEADY_STATE_MIN_STEPS``, and for ``T < 1000`` with ``N < STEADY_STATE_MIN_STATES``.

    Why not always: the switch's program holds the steady tail and the full filter's fallback
    and takes about twice as long to compile. A step of a small model is cheap, and the few
    thousand evaluations of a short NUTS run do not repay the longer compile: a NUTS run on the
    RBC model (N = 2, T = 200) is slower with the switch than without (benchmarks/README.md)."""
    if T < STEADY_STATE_MIN_STEPS or (T < 1000 and N < STEADY_STATE_MIN_STATES):
        return None
    b = STEADY_STATE_EVERY
    whole = -(-T // b) * b                   # the series in whole chunks
    return whole if whole <= 2000 else max(1000, T // 10) // b * b


def steady_state_switch_step(A, B, C, R, m0, P0, y, mask=None):
    """How many steps :func:`kalman_loglik` (``steady_state=True``) filters in full before the
    steady-state tail takes over, or ``T`` if it never does (a diagnostic; arguments as
    :func:`kalman_loglik`)."""
    T = y.shape[0]
    horizon = steady_state_horizon(T, A.shape[0]) if T > FULL_UNROLL_MAX_STEPS else None
    if horizon is None:
        return jnp.asarray(T)
    A, Q, C, R, m0, P0, y, observed, univariate, ok = _prepare(A, B, C, R, m0, P0, y, mask)
    (s, _, _, _, _, settled, _), _, _, _ = _auto_head(A, Q, C, R, m0, P0, y, observed, ok,
                                                      univariate, horizon, False)
    return jnp.where(settled, jnp.minimum(s, T), T)


def kalman_loglik(A, B, C, R, m0, P0, y, mask=None, *, steady_state=True):
    """``log p(y_1..y_T)`` alone (no paths are stored); ``-inf`` on numerical failure. Arguments
    as :func:`.kalman.kalman_filter`. Differentiable in every array argument, forward and
    reverse mode, through the tangent recursion above.

    :param steady_state: static. ``True`` (default): every :data:`STEADY_STATE_EVERY` steps,
        up to :func:`steady_state_horizon`, the filter checks whether the covariance recursion
        has converged (see :mod:`.steady_state`) with no later entry of ``y`` missing; from the
        first such step on, the rest of the series is filtered with the steady-state gain (one
        matrix-vector product per step, no factorisation); if none comes, the full filter goes
        on. The result agrees with the full filter to round-off. An ``int`` checks once, after
        that many steps; ``False`` always runs the full filter.
    """
    T = y.shape[0]
    if T <= FULL_UNROLL_MAX_STEPS:
        return _short_series_loglik(A, B, C, R, m0, P0, y, mask)
    A, Q, C, R, m0, P0, y, observed, univariate, ok = _prepare(A, B, C, R, m0, P0, y, mask)
    if steady_state is True:
        horizon = steady_state_horizon(T, A.shape[0])
        if horizon is not None:
            return _auto_loglik(A, Q, C, R, m0, P0, y, observed, ok, univariate, horizon)
    start = None if steady_state is True else (steady_state or None)
    if start is not None and not 0 < start < T:
        start = None
    return _loglik(A, Q, C, R, m0, P0, y, observed, ok, univariate, start)
