"""Helpers shared by the test modules: random models and NumPy simulation (independent of the
library), a plain NumPy Kalman filter and statsmodels' as the reference implementations, the one
central finite difference every gradient test compares with, and helpers that show which code
path a traced function took (jaxpr inspection, a recording spy)."""

import jax
import numpy as np
from scipy.stats import multivariate_normal
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


def np_quad(T3, v):
    """``quad(T3, v)[i] = v @ T3[i] @ v``."""
    return np.array([v @ T3[i] @ v for i in range(T3.shape[0])])


def np_logpdf(y, z, R):
    """sum_{t=1}^T log N(y_t; z_t, R) with z (T+1, M), y (T, M)."""
    return sum(multivariate_normal(mean=z[t + 1], cov=R).logpdf(y[t]) for t in range(len(y)))


def np_linear(A, B, C, u0, noise, T):
    """States ``u (T+1, N)`` and observations ``z (T+1, M)`` (``None`` without ``C``) of the
    linear model given the noise, a NumPy loop (``B=None``: no shocks)."""
    N = A.shape[0]
    u = np.zeros((T + 1, N))
    u[0] = u0
    for t in range(1, T + 1):
        u[t] = A @ u[t - 1] + (B @ noise[t - 1] if B is not None else 0.0)
    z = None if C is None else np.array([C @ u[t] for t in range(T + 1)])
    return u, z


def np_quadratic(A_0, A_1, A_2, B, C_0, C_1, C_2, u0, noise, T, pruned):
    """States and observations of the (pruned) quadratic model given the noise, as
    :func:`np_linear`."""
    N = A_1.shape[0]
    u = np.zeros((T + 1, N))
    uf = np.zeros((T + 1, N))
    u[0] = uf[0] = u0
    for t in range(1, T + 1):
        bw = B @ noise[t - 1] if B is not None else np.zeros(N)
        if pruned:
            u[t] = A_0 + A_1 @ u[t - 1] + np_quad(A_2, uf[t - 1]) + bw
            uf[t] = A_1 @ uf[t - 1] + bw
        else:
            u[t] = A_0 + A_1 @ u[t - 1] + np_quad(A_2, u[t - 1]) + bw
    if C_1 is None:
        return u, None
    src = uf if pruned else u
    z = np.array([C_0 + C_1 @ u[t] + np_quad(C_2, src[t]) for t in range(T + 1)])
    return u, z


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


def central_difference(f, x, h=1e-6, batched=False):
    """Central finite differences ``(f(x + h_i e_i) - f(x - h_i e_i)) / (2 h_i)`` along every entry
    ``i`` of ``x``, in ``jax.jacfwd``'s layout ``f(x).shape + x.shape`` (``x.shape`` for a scalar
    ``f``; a scalar ``x`` gives a derivative).

    ``h`` is a scalar or an array of ``x``'s shape (relative steps are the caller's
    ``h * abs(x)``). ``batched=True`` calls ``f`` once on the ``(2 x.size,) + x.shape`` stack of
    points (all ``+`` steps, then all ``-`` steps), so a vmapped ``f`` compiles one program.
    """
    x = np.asarray(x, float)
    steps = np.broadcast_to(np.asarray(h, float), x.shape).ravel()
    E = (np.eye(x.size) * steps).reshape((x.size,) + x.shape)
    points = np.concatenate([x + E, x - E])
    values = np.asarray(f(points) if batched else [np.asarray(f(p)) for p in points], float)
    d = (values[:x.size] - values[x.size:]) / (2 * steps.reshape((-1,) + (1,) * (values.ndim - 1)))
    return np.moveaxis(d, 0, -1).reshape(values.shape[1:] + x.shape)


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
