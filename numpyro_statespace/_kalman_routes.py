"""What :class:`~numpyro_statespace.KalmanLGSS` computes for one (unbatched) model when it has
offsets, a time-varying ``C``, diffuse states, the prior on ``u_1`` or a burn-in.

The offsets are removed by the change of variables of :mod:`.kernels.offsets`; the rest is
:mod:`.kernels.diffuse` on the proper filter and smoother of :mod:`.kernels.smoother`. Every
function takes a :class:`Spec` (the static options) and arrays of one model; state paths have
``T + 1`` rows, ``u_0`` first (with the prior on ``u_1``, ``u_0 = u_1``).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

from . import kernels
from .families import covariance_form, masked_system
from .kernels import diffuse as dk
from .kernels.kalman import observed_mask
from .kernels.offsets import observation_shift, offset_path, shifted_data
from .kernels.smoother import filter_pass, smoothed_mean_effects


class Spec(NamedTuple):
    """Static options: ``diffuse`` (tuple of bools, one per state, or ``None``),
    ``first_state`` (the prior is that of ``u_1``), ``burn`` (steps left out of the
    log-likelihood)."""

    diffuse: Optional[tuple]
    first_state: bool
    burn: int


def selection(spec, N, dtype):
    """``S (N, d)``: the unit vectors of the diffuse states (``d = 0`` without any)."""
    idx = [] if spec.diffuse is None else [i for i, f in enumerate(spec.diffuse) if f]
    return jnp.asarray(np.eye(N)[:, idx], dtype)


def _shift(spec, A, C, c, d, y):
    """``(y shifted, ubar (T + 1, N), ok)`` (no offsets: ``y``, zeros, True). With the prior
    on ``u_1`` the first step has no transition, so ``c_1`` does not enter."""
    T, M = y.shape
    if c is None and d is None:
        return y, jnp.zeros((T + 1, A.shape[0]), y.dtype), jnp.array(True)
    c = jnp.zeros((1, A.shape[0]), y.dtype) if c is None else c
    if spec.first_state:
        c = jnp.broadcast_to(c, (T, A.shape[0])).at[0].set(0.0)
    d = jnp.zeros((1, M), y.dtype) if d is None else d
    return shifted_data(A, C, c, d, y)


class _Proper(NamedTuple):
    """The proper (offset-free, ``delta = 0``) problem after the optional first step."""

    head: Optional[dk.FirstStep]
    details: kernels.FilterDetails
    gains: object
    params: tuple        # (A, B, C, R, m0, P0) with finite stand-ins, of the sub-problem
    X0: jax.Array        # (N, d) loading of the sub-problem's prior mean on delta
    y: jax.Array         # the sub-problem's data (offsets removed)


def _proper(spec, A, B, C, R, m0, P0, y, mask):
    S = selection(spec, A.shape[0], A.dtype)
    R = covariance_form(R)
    head = None
    if spec.first_state:
        y1, observed1 = masked_system(y[:1], None if mask is None else mask[:1])
        C1 = C[0] if C.ndim == 3 else C
        head = dk.first_state_update(C1, R, m0, P0, S, y1[0], observed1[0])
        m0, P0, S = head.mean, head.cov, head.loading
        y, C = y[1:], (C[1:] if C.ndim == 3 else C)
        mask = None if mask is None else mask[1:]
    details, gains, params = filter_pass(A, B, C, R, m0, P0, y, mask)
    return _Proper(head, details, gains, params, S, y)


def _terms(spec, p, loadings=False):
    """:class:`.kernels.diffuse.DiffuseTerms` of a :class:`_Proper` (``d = 0`` included); with
    ``loadings`` also the filtered means' loadings on ``delta``, ``(T + 1, N, d)``."""
    A, _, C = p.params[:3]
    e, L, ok_w = dk.whitened(p.details.innovations, p.details.innovation_covs,
                             p.details.observed)
    V, G = dk.prior_mean_effects(A, C, p.gains.K, p.X0, p.details.observed)
    V = dk.whiten_loadings(L, V)
    lls = p.details.log_likelihoods
    ok = p.details.ok & ok_w
    if p.head is not None:
        lls = jnp.concatenate([p.head.log_likelihood[None], lls])
        e = jnp.concatenate([p.head.e[None], e])
        V = jnp.concatenate([p.head.V[None], V])
        ok = ok & p.head.ok
    terms = dk.diffuse_loglik(lls, e, V, spec.burn)
    ok = ok & terms.ok
    terms = terms._replace(log_likelihood=jnp.where(ok, terms.log_likelihood, -jnp.inf), ok=ok)
    return (terms, G) if loadings else terms


def log_likelihood(spec, A, B, C, R, m0, P0, c, d, y, mask):
    """The log-likelihood with every option (``-inf`` on failure), by the general route:
    JAX's derivative of the filter pass (no hand-written adjoint, no steady-state tail)."""
    y, _, ok = _shift(spec, A, C, c, d, y)
    terms = _terms(spec, _proper(spec, A, B, C, R, m0, P0, y, mask))
    return jnp.where(ok, terms.log_likelihood, -jnp.inf)


def head_steps(spec, T, N):
    """Steps of the general route before :func:`head_and_tail_log_likelihood` hands over to
    the fast kernel: the burn-in, the first step with the prior on ``u_1`` (and one more, so
    that the rest starts from a filtered state), and ``N + 1`` with diffuse states (with
    complete data a time-invariant model identifies ``delta`` within ``N`` steps, by the
    Cayley-Hamilton theorem, or never)."""
    k = max(spec.burn, 2 * spec.first_state, N + 1 if spec.diffuse is not None else 0)
    return min(T, k)


def head_and_tail_log_likelihood(loglik, spec, missing, A, B, C, R, m0, P0, c, d, y, mask):
    """:func:`log_likelihood` for a time-invariant ``C``: the general route over the first
    :func:`head_steps` steps, then ``loglik`` (the sequential kernel with its hand-written
    derivative and steady-state tail) from the filtered state there, ``delta``'s posterior
    included. With missing data (static ``missing``) the head may not identify ``delta``:
    then the general route over the whole series."""
    T, N = y.shape[0], A.shape[0]
    k = head_steps(spec, T, N)
    y_s, _, ok = _shift(spec, A, C, c, d, y)
    p = _proper(spec, A, B, C, R, m0, P0, y_s[:k], None if mask is None else mask[:k])
    terms, G = _terms(spec, p, loadings=True)
    if k == T:
        return jnp.where(ok, terms.log_likelihood, -jnp.inf)
    m_k, P_k = p.details.filtered_means[-1], p.details.filtered_covs[-1]
    if p.X0.shape[-1]:
        m_k = m_k + G[-1] @ terms.delta
        P_k = P_k + dk.added_covariance(G[-1:], terms.precision_factor)[0][0]
    tail = loglik(A, B, C, R, m_k, P_k, y_s[k:], None if mask is None else mask[k:])
    ll = jnp.where(ok & terms.ok, terms.log_likelihood + tail, -jnp.inf)
    if not missing or spec.diffuse is None:
        return ll
    return jax.lax.cond(terms.ok, lambda: ll,
                        lambda: log_likelihood(spec, A, B, C, R, m0, P0, c, d, y, mask))


def uses_parallel(method):
    """Whether ``method`` (``"sequential"``, ``"parallel"`` or ``"auto"``) runs the associative
    scan. ``"auto"`` takes it on accelerators, where its ``O(log T)`` depth pays for its
    ``O(T log T)`` work; on CPU the sequential kernel does less work (hand-written adjoint,
    steady-state tail)."""
    return method == "parallel" or (method == "auto" and jax.default_backend() != "cpu")


def is_general(spec, time_varying_C):
    """Options that the fast likelihood kernels do not take."""
    return (time_varying_C or spec.diffuse is not None or spec.first_state
            or spec.burn > 0)


def kalman_log_likelihood(spec, time_varying_C, parallel, missing, A, B, C, R, m0, P0, c, d,
                          y, mask):
    """The Kalman log-likelihood of one model: the single entry point that picks the route.

    ``parallel`` (:func:`uses_parallel`) and ``missing`` (whether ``y`` or ``mask`` may hide
    entries) are static, decided before tracing; ``R`` is in the kernels' filter form
    (:func:`.families.filter_form`).
    """
    if time_varying_C:
        # The fast kernels take one C for all steps: the general route, JAX's derivative of
        # the filter pass over every step.
        return log_likelihood(spec, A, B, C, R, m0, P0, c, d, y, mask)
    if is_general(spec, False):
        # Diffuse states, the prior on u_1 and a burn-in act on the first steps only: the
        # general route there, then the sequential kernel (hand-written adjoint, steady-state
        # tail) for the rest. The parallel kernel is not offered these options (refused at
        # construction): the head would dominate its depth.
        return head_and_tail_log_likelihood(kernels.kalman_loglik, spec, missing, A, B, C, R,
                                            m0, P0, c, d, y, mask)
    # Offsets at most (removed by a change of variables): the fast kernel over the series,
    # the associative scan where it was chosen, else the sequential adjoint.
    loglik = kernels.parallel_loglik if parallel else kernels.kalman_loglik
    return fast_log_likelihood(loglik, A, B, C, R, m0, P0, c, d, y, mask)


def fast_log_likelihood(loglik, A, B, C, R, m0, P0, c, d, y, mask):
    """Offsets only: ``loglik`` (the sequential kernel with its hand-written derivative and
    steady-state tail, or the parallel one) on the shifted data."""
    y, _, ok = _shift(Spec(None, False, 0), A, C, c, d, y)
    return jnp.where(ok, loglik(A, B, C, R, m0, P0, y, mask), -jnp.inf)


def _with_first_row(x, first):
    """Rows of the sub-problem (``u_1..u_T``) with ``u_0`` (``= u_1``) in front."""
    return jnp.concatenate([first[None], x])


def smooth(spec, A, B, C, R, m0, P0, c, d, y, mask):
    """:class:`.kernels.SmootherResult` with every option (exact diffuse smoother)."""
    y_s, ubar, ok = _shift(spec, A, C, c, d, y)
    p = _proper(spec, A, B, C, R, m0, P0, y_s, mask)
    terms = _terms(spec, p)
    A_, B_, C_, R_, m_, P_ = p.params
    res = kernels.rts_smoother(A_, B_, C_, R_, m_ + p.X0 @ terms.delta, P_, p.y,
                               _sub_mask(spec, mask))
    means, covs, cross = res.smoothed_means, res.smoothed_covs, res.cross_covs
    if p.X0.shape[-1]:
        H = smoothed_mean_effects(A_, C_, p.gains, p.X0, p.details.filtered_covs,
                                  p.details.observed)
        extra, extra_cross = dk.added_covariance(H, terms.precision_factor)
        covs, cross = covs + extra, cross + extra_cross
    if spec.first_state:
        means, covs = _with_first_row(means, means[0]), _with_first_row(covs, covs[0])
        cross = _with_first_row(cross, covs[0])
    ok = ok & terms.ok & res.ok
    return kernels.SmootherResult(means + ubar, covs, cross,
                                  jnp.where(ok, terms.log_likelihood, -jnp.inf), ok)


def _sub_mask(spec, mask):
    return mask[1:] if spec.first_state and mask is not None else mask


def posterior_sample(spec, key, A, B, C, R, m0, P0, c, d, y, mask, num_samples):
    """``(num_samples, T + 1, N)`` draws of the state path (diffuse part drawn from its
    posterior)."""
    y_s, ubar, _ = _shift(spec, A, C, c, d, y)
    p = _proper(spec, A, B, C, R, m0, P0, y_s, mask)
    A_, B_, C_, R_, m_, P_ = p.params
    k1, k2 = jax.random.split(key)
    dim = p.X0.shape[-1]
    if dim:
        terms = _terms(spec, p)
        m_ = m_ + p.X0 @ terms.delta
    draws = kernels.simulation_smoother(k1, A_, B_, C_, R_, m_, P_, p.y, num_samples,
                                        _sub_mask(spec, mask))
    if dim:
        H = smoothed_mean_effects(A_, C_, p.gains, p.X0, p.details.filtered_covs,
                                  p.details.observed)
        z = jax.random.normal(k2, (num_samples, dim), A.dtype)
        offsets = solve_triangular(terms.precision_factor, z.T, lower=True, trans=1).T
        draws = draws + jnp.einsum("tnd,sd->stn", H, offsets)
    if spec.first_state:
        draws = jnp.concatenate([draws[:, :1], draws], axis=1)
    return draws + ubar


def filter(spec, A, B, C, R, m0, P0, c, d, y, mask):
    """:class:`.kernels.FilterDetails` with every option. With diffuse states the filtered
    moments are those given ``delta``'s posterior from ``y_1..y_t``: NaN while the data seen
    so far do not identify it."""
    y_s, ubar, ok = _shift(spec, A, C, c, d, y)
    p = _proper(spec, A, B, C, R, m0, P0, y_s, mask)
    det = p.details
    means, covs = det.filtered_means, det.filtered_covs
    pmeans, pcovs = det.predicted_means, det.predicted_covs
    terms = _terms(spec, p)
    lls = det.log_likelihoods
    profile = jnp.zeros(1, lls.dtype)
    if p.X0.shape[-1]:
        means, covs, pmeans, pcovs, profile = _diffuse_filtered(p, means, covs, pmeans, pcovs)
        # per-step terms that add up to the exact diffuse total: each step gets the change of
        # 1/2 s' Omega^-1 s - 1/2 log|Omega| (zero until delta is identified)
        lls = lls + jnp.diff(profile)
    pred_obs = det.predicted_obs
    innov, icovs, observed = det.innovations, det.innovation_covs, det.observed
    if spec.first_state:
        # rows: u_0 (= u_1 before y_1: the prior), u_1 given y_1, ... (the sub-problem's rows)
        m1, P1 = m0, P0
        if p.X0.shape[-1]:  # an improper prior
            m1, P1 = jnp.full_like(m0, jnp.nan), jnp.full_like(P0, jnp.nan)
        two = lambda x, first: jnp.concatenate([first[None], first[None], x[1:]])
        means, covs = _with_first_row(means, m1), _with_first_row(covs, P1)
        pmeans, pcovs = two(pmeans, m1), two(pcovs, P1)
        C1 = C[0] if C.ndim == 3 else C
        pred_obs = two(pred_obs, C1 @ m1)
        R2 = covariance_form(R)
        obs1 = observed_mask(y_s[:1], None if mask is None else mask[:1])
        innov = _with_first_row(innov, jnp.where(obs1[0], y_s[0] - C1 @ m0, 0.0))
        icovs = _with_first_row(icovs, C1 @ P0 @ C1.T + R2)
        observed = jnp.concatenate([obs1, observed])
        lls = _with_first_row(lls, p.head.log_likelihood + profile[0])
    shift = observation_shift(C, ubar, _obs_offset(d, y))
    pred_obs = pred_obs + jnp.concatenate([shift[:1], shift])
    ok = ok & terms.ok
    return kernels.FilterDetails(means + ubar, covs, pmeans + ubar, pcovs, pred_obs, innov,
                                 icovs, observed, lls,
                                 jnp.where(ok, terms.log_likelihood, -jnp.inf), ok)


def _obs_offset(d, y):
    return jnp.zeros((1, y.shape[1]), y.dtype) if d is None else d


def _diffuse_filtered(p, means, covs, pmeans, pcovs):
    """Filtered and predicted moments given ``delta``'s posterior from the data so far (rows
    of the sub-problem: row 0 its prior, improper without a first step)."""
    A_, _, C_ = p.params[:3]
    e, L, _ = dk.whitened(p.details.innovations, p.details.innovation_covs, p.details.observed)
    V, G = dk.prior_mean_effects(A_, C_, p.gains.K, p.X0, p.details.observed)
    V = dk.whiten_loadings(L, V)
    d = p.X0.shape[-1]
    lead_e = jnp.zeros_like(e[0]) if p.head is None else p.head.e
    lead_V = jnp.zeros_like(V[0]) if p.head is None else p.head.V
    e, V = jnp.concatenate([lead_e[None], e]), jnp.concatenate([lead_V[None], V])
    Omega = jnp.cumsum(jnp.einsum("tmi,tmj->tij", V, V), axis=0)
    s = -jnp.cumsum(jnp.einsum("tmi,tm->ti", V, e), axis=0)
    # before the data identify delta, Omega_t is singular: NaN moments (infinite variance)
    good = jnp.linalg.matrix_rank(Omega) == d
    Oinv = jnp.where(good[:, None, None], jnp.linalg.pinv(Omega), jnp.nan)
    delta = jnp.einsum("tij,tj->ti", Oinv, s)
    means = means + jnp.einsum("tnd,td->tn", G, delta)
    covs = covs + jnp.einsum("tnd,tde,tme->tnm", G, Oinv, G)
    Gp = jnp.concatenate([G[:1], jnp.einsum("ij,tjd->tid", A_, G[:-1])])
    dp = jnp.concatenate([delta[:1], delta[:-1]])
    Op = jnp.concatenate([Oinv[:1], Oinv[:-1]])
    pmeans = pmeans + jnp.einsum("tnd,td->tn", Gp, dp)
    pcovs = pcovs + jnp.einsum("tnd,tde,tme->tnm", Gp, Op, Gp)
    # partly identified: the same on the identified subspace (pseudo-inverse and
    # pseudo-determinant), which splits the diffuse periods' total as Koopman and Durbin's
    # univariate filter does
    w, U = jnp.linalg.eigh(Omega)
    seen = w > jnp.finfo(w.dtype).eps ** 0.5 * jnp.max(w, axis=-1, keepdims=True)
    w_inv = jnp.where(seen, 1.0 / jnp.where(seen, w, 1.0), 0.0)
    Us = jnp.einsum("tij,ti->tj", U, s)
    profile = 0.5 * jnp.sum(w_inv * Us**2, axis=-1) - 0.5 * jnp.sum(jnp.where(seen, jnp.log(
        jnp.where(seen, w, 1.0)), 0.0), axis=-1)
    return means, covs, pmeans, pcovs, profile


def forecast(spec, A, B, C, R, m0, P0, c, d, y, mask, c_f, d_f, C_f, steps):
    """:class:`.kernels.ForecastResult` from the last filtered moments, with the future
    offsets ``c_f (steps, N)``, ``d_f (steps, M)`` and design matrices ``C_f``."""
    f = filter(spec, A, B, C, R, m0, P0, c, d, y, mask)
    res = kernels.forecast(A, B, C_f, R, f.filtered_means[-1], f.filtered_covs[-1], steps)
    ubar = offset_path(A, c_f, steps)[0]
    return res._replace(state_means=res.state_means + ubar[1:],
                        obs_means=res.obs_means + observation_shift(C_f, ubar, d_f))
