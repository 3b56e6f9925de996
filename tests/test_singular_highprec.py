"""DSGE-style singular models against a 50-digit (mpmath) Kalman filter.

Fewer shocks than states, observables without measurement error (``R = 0`` or zero rows),
rank-deficient ``R``, near-unit-root and unit-root ``A``, missing data: ``KalmanLGSS.log_prob``
(float64) must equal an mpmath reference filter run at 50 significant digits on the same
float64 inputs to ``rtol = 1e-10``, and its gradient (reverse mode) must match the reference's
directional derivatives (central differences at 50 digits with step 1e-20, so the reference
derivative itself is exact to ~1e-30) in random directions to ``rtol = 1e-8``.

The measured errors are printed (``pytest -s``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
from _reference import dense_moments, simulate

import numpyro_statespace as nss

DPS = 50
VALUE_RTOL = 1e-10
GRAD_RTOL = 1e-8
N_DIRECTIONS = 2
T = 120
FD_H = mp.mpf("1e-20")

# ---------------------------------------------------------------------------------------------
# 50-digit reference on object arrays of mpf
# ---------------------------------------------------------------------------------------------


def _mp(x):
    """Exact conversion of a float64 array (every float64 is an mpf exactly)."""
    x = np.asarray(x, float)
    out = np.empty(x.shape, dtype=object)
    for i in np.ndindex(x.shape):
        out[i] = mp.mpf(float(x[i]))
    return out


def _cholesky(S):
    n = S.shape[0]
    L = np.full((n, n), mp.mpf(0), dtype=object)
    for j in range(n):
        d = S[j, j] - sum((L[j, k] ** 2 for k in range(j)), mp.mpf(0))
        if d <= 0:
            raise ValueError("innovation covariance not positive definite at 50 digits")
        L[j, j] = mp.sqrt(d)
        for i in range(j + 1, n):
            L[i, j] = (S[i, j] - sum((L[i, k] * L[j, k] for k in range(j)), mp.mpf(0))) / L[j, j]
    return L


def _forward(L, b):
    """``L^{-1} b`` for lower-triangular ``L`` and ``b`` of shape (n,) or (n, k)."""
    x = np.array(b, dtype=object, copy=True)
    for i in range(L.shape[0]):
        for k in range(i):
            x[i] = x[i] - L[i, k] * x[k]
        x[i] = x[i] / L[i, i]
    return x


def _stationary(A, Q):
    """``P = A P A' + Q`` through ``(I - A kron A) vec P = vec Q`` at 50 digits."""
    n = A.shape[0]
    K = mp.eye(n * n) - mp.matrix(np.kron(A, A).tolist())
    vecP = mp.lu_solve(K, mp.matrix(Q.reshape(-1).tolist()))
    P = np.array([vecP[i] for i in range(n * n)], dtype=object).reshape(n, n)
    return (P + P.T) / 2


def mp_kalman_loglik(A, B, C, R, m0, P0, y):
    """Kalman log-likelihood at ``DPS`` digits; ``P0 = None`` means the stationary prior.

    Arguments are object arrays of mpf (``y`` may hold ``None`` for a missing entry).
    """
    Q = B @ B.T
    P = _stationary(A, Q) if P0 is None else P0
    m = m0
    total = mp.mpf(0)
    log2pi = mp.log(2 * mp.pi)
    for yt in y:
        m = A @ m
        P = A @ P @ A.T + Q
        o = [i for i, v in enumerate(yt) if v is not None]
        if not o:
            continue
        Co = C[o]
        S = Co @ P @ Co.T + R[np.ix_(o, o)]
        S = (S + S.T) / 2
        L = _cholesky(S)
        v = np.array([yt[i] for i in o], dtype=object) - Co @ m
        e = _forward(L, v)
        W = _forward(L, Co @ P)  # L^{-1} C P
        total += -(len(o) * log2pi + 2 * sum(mp.log(L[i, i]) for i in range(len(o)))
                   + e @ e) / 2
        m = m + W.T @ e
        P = P - W.T @ W
        P = (P + P.T) / 2
    return total


# ---------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------


def _dsge_A(rho_slow):
    """Endogenous block (k, x) driven by exogenous AR(1) states (z1, z2); ``rho_slow`` is the
    eigenvalue of the slow endogenous state (0.9999: near unit root; 1.0: unit root)."""
    return np.array([[rho_slow, 0.05, 0.30, 0.00],
                     [0.00, 0.60, 0.10, 0.25],
                     [0.00, 0.00, 0.90, 0.00],
                     [0.00, 0.00, 0.00, 0.50]])


B_DSGE = np.array([[0.0, 0.0], [0.0, 0.0], [0.01, 0.0], [0.0, 0.02]])  # K = 2 < N = 4


def _case(name):
    """``dict(A, B, C, R, m0, P0 or None (stationary), y)``."""
    A = _dsge_A(0.95)
    m0 = np.array([0.01, -0.02, 0.0, 0.01])
    P0 = 1e-4 * np.diag([2.0, 1.0, 0.5, 0.5])
    if name == "R_zero_M_equals_K":  # stochastic singularity boundary: S = C P C' only
        C = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]])
        R = np.zeros((2, 2))
    elif name == "R_partly_zero":  # two exact observables, one with error; M = 3 > K = 2
        C = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0], [0.5, 0.5, 0.0, 0.0]])
        R = np.diag([0.0, 1e-5, 0.0])
    elif name == "R_rank_one":  # rank-deficient, non-diagonal R
        C = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0], [0.5, 0.5, 0.0, 0.0]])
        r = np.array([1e-3, -2e-3, 5e-4])
        R = np.outer(r, r)
    elif name == "near_unit_root_stationary":  # eigenvalue 0.9999 and u0_cov="stationary"
        A = _dsge_A(0.9999)
        C = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0]])
        R = np.diag([1e-6, 0.0])
        P0 = None
    elif name == "unit_root_missing":  # eigenvalue 1 with a given prior, 20% missing data
        A = _dsge_A(1.0)
        C = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0]])
        R = np.diag([0.0, 1e-6])
        P0 = 1e-2 * np.eye(4)
    else:
        raise KeyError(name)
    P0_sim = P0 if P0 is not None else _stationary_f64(A, B_DSGE @ B_DSGE.T)
    y = simulate(np.random.default_rng(len(name)), A, B_DSGE, C, R, m0, P0_sim, T)
    if name == "unit_root_missing":
        y[np.random.default_rng(1).random(y.shape) < 0.2] = np.nan
    return dict(A=A, B=B_DSGE.copy(), C=C, R=R, m0=m0, P0=P0, y=y)


def _stationary_f64(A, Q):
    from scipy.linalg import solve_discrete_lyapunov

    return solve_discrete_lyapunov(A, Q)


CASES = ["R_zero_M_equals_K", "R_partly_zero", "R_rank_one", "near_unit_root_stationary",
         "unit_root_missing"]
# the diagonal-R cases again with R given as variances (the univariate update)
PARAMS = [(c, "matrix") for c in CASES] + [(c, "variances") for c in CASES if c != "R_rank_one"]

# ---------------------------------------------------------------------------------------------
# library side
# ---------------------------------------------------------------------------------------------


def _names(case):
    return [k for k in ("A", "B", "C", "R", "m0", "P0", "y") if case[k] is not None]


def _as_variances(case):
    """The same model with a diagonal ``R`` given as its ``(M,)`` variances (the filter's
    univariate, factorisation-free update for few observables)."""
    R = case["R"]
    assert np.all(R == np.diag(np.diag(R)))
    return dict(case, R=np.diag(R).copy())


def _library_fn(case):
    stationary = case["P0"] is None
    T_ = case["y"].shape[0]

    def lp(th):
        P0 = "stationary" if stationary else th["P0"]
        return nss.KalmanLGSS(th["A"], th["B"], th["C"], th["R"], th["m0"], P0,
                              num_timesteps=T_, validate_args=False).log_prob(th["y"])

    return jax.jit(jax.value_and_grad(lp))


def _reference(case, theta):
    args = {k: _mp(v) for k, v in theta.items() if k != "y"}
    if args["R"].ndim == 1:  # variances of a diagonal R
        args["R"] = np.diag(args["R"])
    y = np.empty(theta["y"].shape, dtype=object)
    for i in np.ndindex(y.shape):
        v = theta["y"][i]
        y[i] = None if np.isnan(v) else mp.mpf(float(v))
    return args, y


def _mp_value(case, args, y):
    return mp_kalman_loglik(args["A"], args["B"], args["C"], args["R"], args["m0"],
                            args.get("P0"), y)


def _directions(case, rng):
    """Random unit directions: symmetric in R and P0, zero at missing data."""
    out = []
    for _ in range(N_DIRECTIONS):
        d = {k: rng.standard_normal(np.shape(case[k])) for k in _names(case)}
        for k in ("R", "P0"):
            if k in d and d[k].ndim == 2:
                d[k] = 0.5 * (d[k] + d[k].T)
        d["y"] = np.where(np.isnan(case["y"]), 0.0, d["y"])
        # scale each block to the size of its parameter so that no block dominates
        for k in d:
            scale = np.max(np.abs(np.nan_to_num(case[k]))) or 1e-3
            d[k] *= scale / np.sqrt(np.sum(d[k] ** 2))
        out.append(d)
    return out


@pytest.mark.parametrize("name, R_form", PARAMS)
def test_singular_model_matches_50_digit_reference(name, R_form):
    mp.mp.dps = DPS
    case = _case(name)
    if R_form == "variances":
        case = _as_variances(case)
    name = f"{name} (R as {R_form})"
    theta = {k: case[k] for k in _names(case)}
    value, grad = _library_fn(case)({k: jnp.asarray(v) for k, v in theta.items()})
    value = float(value)
    args, y = _reference(case, theta)
    ref = _mp_value(case, args, y)
    rel = abs(mp.mpf(value) - ref) / abs(ref)
    print(f"\n{name}: log p = {mp.nstr(ref, 20)}, float64 relative error {mp.nstr(rel, 3)}")
    assert np.isfinite(value)
    assert rel < VALUE_RTOL, f"{name}: value {value!r} vs 50-digit {mp.nstr(ref, 25)}"

    for k, g in grad.items():
        assert np.all(np.isfinite(np.asarray(g))), f"{name}: non-finite gradient for {k}"
    rng = np.random.default_rng(7)
    for i, d in enumerate(_directions(case, rng)):
        ad = sum(float(np.vdot(np.asarray(grad[k]), d[k])) for k in d)
        dm = {k: _mp(v) for k, v in d.items()}
        if dm["R"].ndim == 1:
            dm["R"] = np.diag(dm["R"])
        plus = {k: args[k] + FD_H * dm[k] for k in args}
        minus = {k: args[k] - FD_H * dm[k] for k in args}
        yp = np.array([[None if v is None else v + FD_H * dv for v, dv in zip(r, dr)]
                       for r, dr in zip(y, dm["y"])], dtype=object)
        ym = np.array([[None if v is None else v - FD_H * dv for v, dv in zip(r, dr)]
                       for r, dr in zip(y, dm["y"])], dtype=object)
        exact = (_mp_value(case, plus, yp) - _mp_value(case, minus, ym)) / (2 * FD_H)
        rel_g = abs(mp.mpf(ad) - exact) / abs(exact)
        print(f"  direction {i}: d log p = {mp.nstr(exact, 15)}, relative error "
              f"{mp.nstr(rel_g, 3)}")
        assert rel_g < GRAD_RTOL, f"{name} direction {i}: AD {ad!r} vs {mp.nstr(exact, 20)}"


def test_reference_filter_matches_dense_formula():
    """The mpmath filter itself equals the dense joint-Gaussian log-density (T = 4)."""
    mp.mp.dps = DPS
    case = _case("R_partly_zero")
    A, B, C, R, m0, P0 = (case[k] for k in ("A", "B", "C", "R", "m0", "P0"))
    y = case["y"][:4]
    Tn, M = y.shape
    mean, cov = dense_moments(A, B, C, R, m0, P0, Tn)
    S = mp.matrix(cov.tolist())
    r = mp.matrix((y.reshape(-1) - mean).tolist())
    dense = -(Tn * M * mp.log(2 * mp.pi) + mp.log(mp.det(S)) + (r.T * mp.lu_solve(S, r))[0]) / 2
    args, ym = _reference(case, dict(A=A, B=B, C=C, R=R, m0=m0, P0=P0, y=y))
    ref = _mp_value(case, args, ym)
    # the dense covariance was built in float64: agreement to float64 accuracy
    assert abs(ref - dense) / abs(dense) < 1e-9, (mp.nstr(ref, 20), mp.nstr(dense, 20))
    assert math.isfinite(float(ref))
