"""Parallel-in-time Kalman filter: the filtering recursion as an associative scan.

Following Särkkä and García-Fernández (2021, "Temporal parallelization of Bayesian smoothers"),
step ``t`` of the filter is an element ``(F, b, U, eta, J)`` describing, for a known previous
state, the filtered transition and the information ``y_t`` carries about that state::

    p(u_t | u_{t-1}, y_t) = N(F u_{t-1} + b, U),   p(y_t | u_{t-1}) ∝ exp(-u' J u / 2 + eta' u)

(the first step, from the prior, is the ordinary Kalman step: ``F = 0``, ``J = 0``). Combining
two consecutive elements is associative, so ``lax.associative_scan`` returns every filtered
mean ``b`` and covariance ``U`` in ``O(log T)`` sequential depth: the route for GPUs and TPUs,
where a sequential step costs kernel launches rather than arithmetic. On a CPU the sequential
filter does less work and is faster.

The log-likelihood is then computed for all steps at once from the filtered moments: predicted
moments, innovation covariances ``S_t = C P_{t|t-1} C' + R`` and innovations, exactly as the
sequential filter does. No element covariance is ever inverted (the combination solves with
``I + U J``, whose eigenvalues are at least 1), so fewer shocks than states and ``R = 0`` are
fine. What an element does need is ``C Q C' + R`` positive definite: an observable that, with
``R = 0``, measures a predetermined state (``C B = 0`` in that row) reveals a combination of
``u_{t-1}`` exactly, which no finite ``J`` expresses. And exact observables (``K = M``,
``R = 0``) make the element's transition ``F`` the zero dynamics ``(I - B (C B)^-1 C) A``; where
those are unstable the combined transitions grow exponentially and the combination cancels ever
larger numbers (at T = 20 with an eigenvalue of 4 the gradient is wrong in the third digit while
the value still agrees). So where some step's ``C Q C' + R`` is singular relative to the
innovation covariance, a combined ``F`` grows beyond ``GROWTH_MAX`` times the one-step ones, or
anything else fails, :func:`parallel_loglik` returns the sequential filter's result instead:
value and gradient are always the exact likelihood's.

Missing entries follow :mod:`.kalman` (zero row of ``C``, unit variance, zero innovation).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.linalg import solve_triangular

from ._batching import unbatched_all
from .guards import moment_bound
from .kalman import _prepare, observed_system, predict, update
from .likelihood import kalman_loglik
from .linalg import LOG_2PI, logdet_from_cholesky, safe_cholesky, symmetrize
from .linalg import transpose as _mT


def singular_rtol(dtype):
    """An element's ``C Q C' + R`` counts as singular when one of its squared Cholesky pivots is
    below this fraction of the same observable's variance in the step's innovation covariance
    ``S_t``: ``sqrt(eps)`` of ``dtype`` (1.5e-8 in float64, 3.5e-4 in float32). Its gain, about
    one over the ratio, amplifies round-off by as much."""
    return float(np.sqrt(np.finfo(dtype).eps))


#: The largest entry of a combined transition may exceed the largest one-step one (or 1) by this
#: factor; beyond it the sequential filter's value is used.
GROWTH_MAX = 100.0


def _elements(A, Q, C_t, R_t, m0, P0, y, observed):
    """The scan's ``T`` elements ``(F, b, U, eta, J)``, whether every factorisation succeeded,
    and the squared Cholesky pivots of each later step's ``C Q C' + R`` (steps 2..T).

    With ``C Q C' + R = L L'``, ``W = L^-1 C Q``, ``H = L^-1 C A`` and ``e = L^-1 y``:
    ``F = A - W' H``, ``b = W' e``, ``U = Q - W' W``, ``eta = H' e``, ``J = H' H``.
    """
    N = A.shape[0]
    L, ok = safe_cholesky(C_t @ Q @ _mT(C_t) + R_t)
    rhs = jnp.concatenate([C_t @ Q, C_t @ A, y[:, :, None]], axis=-1)
    sol = solve_triangular(L, rhs, lower=True)
    W, H, e = sol[..., :N], sol[..., N:2 * N], sol[..., 2 * N]
    Wt = _mT(W)
    F = A - Wt @ H
    b = jnp.einsum("tnm,tm->tn", Wt, e)
    U = symmetrize(Q - Wt @ W)
    eta = jnp.einsum("tmn,tm->tn", H, e)
    J = symmetrize(_mT(H) @ H)
    # The first step conditions on the prior instead of a known u_0: an ordinary Kalman step.
    m_1, P_1, _, ok_1 = update(*predict(m0, P0, A, Q), y[0], observed[0], C_t[0], R_t[0])
    zero = jnp.zeros((N, N), A.dtype)
    F, b, U = F.at[0].set(zero), b.at[0].set(m_1), U.at[0].set(P_1)
    eta, J = eta.at[0].set(0.0), J.at[0].set(zero)
    # step 1's own factor is the ordinary update's, checked with the log-likelihood
    pivots = lax.stop_gradient(jnp.diagonal(L, axis1=-2, axis2=-1) ** 2)
    return (F, b, U, eta, J), jnp.all(ok[1:]) & ok_1, pivots[1:]


def _max_abs(X):
    return lax.stop_gradient(jnp.max(jnp.abs(X), axis=(-2, -1)))


def _mv(M, v):
    return jnp.einsum("...ij,...j->...i", M, v)


def _combine(first, second):
    """The element of ``first`` followed by ``second`` (batched over leading axes); the last
    field is the largest entry of any transition ``F`` combined so far (see
    :func:`_parallel_pass`)."""
    F1, b1, U1, eta1, J1, growth1 = first
    F2, b2, U2, eta2, J2, growth2 = second
    N = F1.shape[-1]
    X = jnp.eye(N, dtype=F1.dtype) + U1 @ J2
    # one solve with X = I + U1 J2 for the three products that need its inverse
    rhs = jnp.concatenate([F1, U1 @ _mT(F2), (b1 + _mv(U1, eta2))[..., None]], axis=-1)
    sol = jnp.linalg.solve(X, rhs)
    XF1, XU1F2, Xb = sol[..., :N], sol[..., N:2 * N], sol[..., 2 * N]
    F = F2 @ XF1
    b = _mv(F2, Xb) + b2
    U = symmetrize(F2 @ XU1F2 + U2)
    eta = _mv(_mT(XF1), eta2 - _mv(J2, b1)) + eta1
    J = symmetrize(_mT(XF1) @ J2 @ F1 + J1)
    return F, b, U, eta, J, jnp.maximum(jnp.maximum(growth1, growth2), _max_abs(F))


def _parallel_pass(A, Q, C, R, m0, P0, y, observed):
    """``(log_likelihood, ok)`` by the associative scan; ``ok`` False where the elements are not
    well defined or a factorisation fails (the value is then meaningless)."""
    Q, R, P0 = symmetrize(Q), symmetrize(R), symmetrize(P0)
    C_t, R_t = observed_system(C, R, observed)
    elements, ok, pivots = _elements(A, Q, C_t, R_t, m0, P0, y, observed)
    one_step = _max_abs(elements[0])  # (T,): each element's largest transition entry
    _, ms, Ps, _, _, growth = lax.associative_scan(_combine, elements + (one_step,))
    # A combined transition growing far beyond the one-step ones means exponentially growing
    # products (an exact observable whose zero dynamics are unstable): the combination then
    # cancels large numbers and loses precision, in the gradient first.
    ok = ok & (jnp.max(growth) <= GROWTH_MAX * jnp.maximum(jnp.max(one_step), 1.0))
    # log N(y_t; C m_{t|t-1}, C P_{t|t-1} C' + R) for every step at once
    m_prev = jnp.concatenate([m0[None], ms[:-1]])
    P_prev = jnp.concatenate([P0[None], Ps[:-1]])
    m_pred = m_prev @ A.T
    P_pred = A @ P_prev @ A.T + Q
    S = C_t @ P_pred @ _mT(C_t) + R_t
    L, ok_S = safe_cholesky(S)
    # An element's C Q C' + R singular relative to the innovation covariance S_t: its gain is
    # (nearly) infinite, the information it carries about u_{t-1} (nearly) exact. Pivot by
    # pivot against the same observable's variance: observables on different scales are not
    # singular.
    scale = lax.stop_gradient(jnp.diagonal(S, axis1=-2, axis2=-1))
    ok = ok & jnp.all(pivots > singular_rtol(S.dtype) * scale[1:])
    v = jnp.where(observed, y - m_pred @ C.T, 0.0)
    e = solve_triangular(L, v[:, :, None], lower=True)[..., 0]
    n_observed = jnp.sum(observed, axis=-1)
    ll = -0.5 * jnp.sum(n_observed * LOG_2PI + logdet_from_cholesky(L) + jnp.sum(e * e, -1))
    big = moment_bound(ms.dtype)
    ok = ok & jnp.all(ok_S) & jnp.isfinite(ll) & jnp.all(jnp.abs(ms) < big) & jnp.all(
        jnp.abs(Ps) < big)
    return ll, ok


@jax.custom_jvp
def _guarded_pass(A, Q, C, R, m0, P0, y, observed):
    return _parallel_pass(A, Q, C, R, m0, P0, y, observed)


@_guarded_pass.defjvp
def _guarded_pass_jvp(primals, tangents):
    # The gradient is evaluated here, from primal values, and the tangent is its inner product
    # with the parameters' tangents: where the pass failed (its numbers then arbitrary, perhaps
    # infinite) the gradient is replaced by zeros before anything multiplies it, so no NaN
    # reaches the caller in forward or reverse mode.
    *params, observed = primals
    ll, vjp, ok = jax.vjp(lambda *p: _parallel_pass(*p, observed), *params, has_aux=True)
    grads = vjp(jnp.ones_like(ll))
    ok = ok & jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in grads]))
    dll = sum(jnp.sum(jnp.where(ok, g, 0.0) * t) for g, t in zip(grads, tangents[:7]))
    return (ll, ok), (jnp.where(ok, dll, 0.0), np.zeros(jnp.shape(ok), jax.dtypes.float0))


def parallel_loglik(A, B, C, R, m0, P0, y, mask=None):
    """``log p(y_1..y_T)`` by the parallel-in-time filter; arguments as
    :func:`.kalman.kalman_filter`, result as :func:`.likelihood.kalman_loglik` (``-inf`` on
    numerical failure, finite gradients, forward and reverse mode).

    Where the parallel elements are not well defined (see the module docstring) or the pass
    fails, the sequential filter's value is returned. The choice is a ``lax.cond`` that only
    runs the chosen filter; under ``vmap`` (e.g. NumPyro's ``chain_method="vectorized"``) it is
    made once for the batch (:mod:`._batching`): the parallel values if every member's pass
    succeeded, else the sequential filter for all members.
    """
    if y.shape[0] == 0:
        return kalman_loglik(A, B, C, R, m0, P0, y, mask)
    A_, Q, C_, R_, m0_, P0_, y_, observed, univariate, ok = _prepare(A, B, C, R, m0, P0, y, mask)
    R_full = jnp.diag(R_) if univariate else R_
    ll, ok_pass = _guarded_pass(A_, Q, C_, R_full, m0_, P0_, y_, observed)
    return lax.cond(unbatched_all(ok & ok_pass), lambda: ll,
                    lambda: kalman_loglik(A, B, C, R, m0, P0, y, mask))
