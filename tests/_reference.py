"""Helpers shared by the test modules: random models and NumPy simulation (independent of the
library), a plain NumPy Kalman filter and statsmodels' as the reference implementations, and
helpers that show which code path a traced function took (jaxpr inspection, a recording spy)."""

import jax
import numpy as np
from statsmodels.tsa.statespace.kalman_filter import KalmanFilter as SMKalmanFilter


def stable_matrix(rng, N, radius=0.9):
    """A random ``(N, N)`` matrix with spectral radius ``radius``."""
    A = rng.standard_normal((N, N))
    return A * (radius / np.max(np.abs(np.linalg.eigvals(A))))


def spd(rng, n, scale=1.0, jitter=0.1):
    """A random symmetric positive definite ``(n, n)`` matrix."""
    G = rng.standard_normal((n, n))
    return scale * (G @ G.T / n + jitter * np.eye(n))


def psd_factor(S):
    """``F`` with ``F F' = S`` for a positive semi-definite ``S`` (singular allowed)."""
    w, V = np.linalg.eigh(S)
    return V * np.sqrt(np.clip(w, 0.0, None))


def simulate(rng, A, B, C, R, m0, P0, T):
    """One path ``y (T, M)`` of ``u_t = A u_{t-1} + B w_t, y_t = C u_t + v_t``, a NumPy loop;
    singular ``P0`` and ``R`` allowed."""
    u = m0 + psd_factor(P0) @ rng.standard_normal(len(m0))
    FR = psd_factor(R)
    y = np.empty((T, C.shape[0]))
    for t in range(T):
        u = A @ u + B @ rng.standard_normal(B.shape[1])
        y[t] = C @ u + FR @ rng.standard_normal(C.shape[0])
    return y


def numpy_kalman_loglik(A, B, C, R, m0, P0, y):
    """Plain float64 NumPy Kalman filter; NaN entries of ``y`` are dropped (observed rows only).

    ``log p(y) = sum_t log N(y_t[o]; C[o] m_t|t-1, C[o] P_t|t-1 C[o]' + R[o, o])``.
    """
    m, P = np.array(m0, float), np.array(P0, float)
    Q = B @ B.T
    total = 0.0
    for yt in y:
        m = A @ m
        P = A @ P @ A.T + Q
        o = ~np.isnan(yt)
        if not o.any():
            continue
        Co = C[o]
        S = Co @ P @ Co.T + R[np.ix_(o, o)]
        v = yt[o] - Co @ m
        sign, logdet = np.linalg.slogdet(S)
        assert sign > 0
        Sinv_v = np.linalg.solve(S, v)
        total += -0.5 * (o.sum() * np.log(2 * np.pi) + logdet + v @ Sinv_v)
        G = np.linalg.solve(S, Co @ P).T  # gain P C' S^-1
        m = m + G @ v
        P = P - G @ S @ G.T
        P = 0.5 * (P + P.T)
    return total


def statsmodels_filter(A, B, C, R, m0, P0, y, tolerance=None, stationary=False):
    """statsmodels' filter of our model (NaN in ``y`` = missing), as statsmodels' results.

    Our ``u_0 ~ N(m0, P0)`` precedes the first transition; statsmodels starts from the predicted
    state of the first observation, ``(A m0, A P0 A' + B B')`` (``stationary=True``: from the
    stationary distribution instead). ``tolerance=0`` turns off statsmodels' own steady-state
    switch (its default is ``1e-19``).
    """
    T, M = y.shape
    N, K = B.shape
    kw = {} if tolerance is None else {"tolerance": tolerance}
    kf = SMKalmanFilter(k_endog=M, k_states=N, k_posdef=K, **kw)
    kf.bind(np.array(y, dtype=float))
    kf["design"] = C
    kf["transition"] = A
    kf["selection"] = B
    kf["state_cov"] = np.eye(K)
    kf["obs_cov"] = R
    if stationary:
        kf.initialize_stationary()
    else:
        kf.initialize_known(A @ m0, A @ P0 @ A.T + B @ B.T)
    return kf.filter()


def input_shapes(jaxpr, primitive):
    """Shapes of the first operand of every ``primitive`` equation in ``jaxpr`` and the jaxprs
    nested in it (jit, scan, custom derivative rules)."""
    shapes = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == primitive:
            shapes.append(eqn.invars[0].aval.shape)
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else (param,):
                sub = getattr(sub, "jaxpr", sub)
                if hasattr(sub, "eqns"):
                    shapes += input_shapes(sub, primitive)
    return shapes


def record_results(monkeypatch, module, name):
    """Wrap ``module.name`` (a function returning a boolean) so that every result it computes,
    also inside ``jit`` and, member by member, ``vmap``, is appended to the returned list."""
    seen = []
    original = getattr(module, name)

    def spy(*args):
        result = original(*args)
        jax.debug.callback(lambda r: seen.append(bool(r)), result)
        return result

    monkeypatch.setattr(module, name, spy)
    return seen
