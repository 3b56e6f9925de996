"""Helpers shared by the test modules: random models and NumPy simulation (independent of the
library), NumPy loops, the dense joint Gaussian, a plain NumPy Kalman filter and statsmodels' as
the reference implementations, one ``assert_close``, the one central finite difference every
gradient test compares with, and helpers that show which code path a traced function took
(jaxpr inspection, a recording spy)."""

import jax
import numpy as np
from scipy.stats import multivariate_normal
from statsmodels.tsa.statespace.kalman_smoother import KalmanSmoother


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


def random_model(seed, N, K, M, T, radius=0.9, diag_R=False, R_zero=False, missing=0.0):
    """A random stable model and data simulated from it: ``dict(A, B, C, R, m0, P0, y)``;
    ``R`` diagonal (``diag_R``) or without measurement error in the first observable
    (``R_zero``: a DSGE-style exact observable); NaN at a fraction ``missing`` of ``y``."""
    rng = np.random.default_rng(seed)
    A = stable_matrix(rng, N, radius)
    B = rng.standard_normal((N, K))
    C = rng.standard_normal((M, N))
    R = np.diag(rng.uniform(0.05, 0.5, M)) if diag_R else spd(rng, M, 0.3)
    if R_zero:
        R[0, :] = R[:, 0] = 0.0
    m0, P0 = rng.standard_normal(N), spd(rng, N)
    y = simulate(rng, A, B, C, R, m0, P0, T)
    y[rng.uniform(size=y.shape) < missing] = np.nan
    return {"A": A, "B": B, "C": C, "R": R, "m0": m0, "P0": P0, "y": y}


def dsge_singular(seed, T):
    """K = 1 shock < N = 3 states, M = 1 observable without measurement error (R = 0)."""
    rng = np.random.default_rng(seed)
    A, B, C = stable_matrix(rng, 3, 0.95), rng.standard_normal((3, 1)), rng.standard_normal((1, 3))
    m = {"A": A, "B": B, "C": C, "R": np.zeros((1, 1)), "m0": np.zeros(3), "P0": spd(rng, 3)}
    m["y"] = simulate(rng, A, B, C, m["R"], m["m0"], m["P0"], T)
    return m


def dense_moments(A, B, C, R, m0, P0, T):
    """Mean ``(T M,)`` and covariance ``(T M, T M)`` of the stacked ``y_1..y_T`` in closed form:
    ``u_t = A^t u_0 + sum_s A^(t-s) B w_s``."""
    M = C.shape[0]
    Ap = [np.linalg.matrix_power(A, t) for t in range(T + 1)]
    mean = np.concatenate([C @ Ap[t] @ m0 for t in range(1, T + 1)])
    cov = np.zeros((T * M, T * M))
    for t in range(1, T + 1):
        for s in range(1, T + 1):
            P_ts = Ap[t] @ P0 @ Ap[s].T
            for r in range(1, min(t, s) + 1):
                P_ts = P_ts + Ap[t - r] @ B @ B.T @ Ap[s - r].T
            cov[(t - 1) * M:t * M, (s - 1) * M:s * M] = C @ P_ts @ C.T
        cov[(t - 1) * M:t * M, (t - 1) * M:t * M] += R
    return mean, cov


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


def linear_transition(x, w, p, t):
    """The linear model as generic callbacks, ``p = dict(A, B, C)``: ``A x + B w``, ..."""
    return p["A"] @ x + p["B"] @ w


def linear_observation(x, p, t):
    """... and ``C x``."""
    return p["C"] @ x


def np_quad(T3, v):
    """``quad(T3, v)[i] = v @ T3[i] @ v``."""
    return np.array([v @ T3[i] @ v for i in range(T3.shape[0])])


def np_logpdf(y, z, R):
    """sum_{t=1}^T log N(y_t; z_t, R) with z (T+1, M), y (T, M)."""
    return sum(multivariate_normal(mean=z[t + 1], cov=R).logpdf(y[t]) for t in range(len(y)))


def np_conditional(predict, u0, y, noise, R):
    """The conditional likelihood's predictions ``z_t = predict(y_{t-1}, w_t, t-1)`` with
    ``y_0 = u0`` and ``sum_t log N(y_t; z_t, R)``."""
    T = y.shape[0]
    prev = np.vstack([u0[None], y[:-1]])
    z = np.array([predict(prev[t], None if noise is None else noise[t], t) for t in range(T)])
    ll = sum(multivariate_normal(mean=z[t], cov=R).logpdf(y[t]) for t in range(T))
    return z, ll


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


def statsmodels_filter(A, B, C, R, m0, P0, y, tolerance=None, prior_of="u0", smooth=False,
                       state_offset=None, obs_offset=None):
    """statsmodels' filter (``smooth=True``: smoother) of our model (NaN in ``y`` = missing), as
    statsmodels' results; ``C`` may be time-varying ``(T, M, N)``.

    Our ``u_0 ~ N(m0, P0)`` precedes the first transition; statsmodels starts from the predicted
    state of the first observation, ``(A m0, A P0 A' + B B')``. ``prior_of="u1"``: ``(m0, P0)``
    is that state already; ``"stationary"`` / ``"diffuse"``: statsmodels' own initialisations.
    Offsets ``c (T, N)``, ``d (T, M)`` (or constant): statsmodels' ``state_intercept[:, t]``
    enters ``alpha_{t+1}``, our ``c_t`` enters ``u_t``, so ``a_1`` gains ``c_1`` and
    ``state_intercept[:, t - 1] = c_{t + 1}``. ``tolerance=0`` turns off statsmodels' own
    steady-state switch (its default is ``1e-19``).
    """
    T, M = y.shape
    N, K = B.shape
    kw = {} if tolerance is None else {"tolerance": tolerance}
    ks = KalmanSmoother(k_endog=M, k_states=N, k_posdef=K, **kw)
    ks.bind(np.array(y, dtype=float))
    ks["design"] = np.moveaxis(C, 0, -1) if np.ndim(C) == 3 else C
    ks["transition"], ks["selection"], ks["state_cov"], ks["obs_cov"] = A, B, np.eye(K), R
    c = np.zeros((T, N)) if state_offset is None else np.broadcast_to(state_offset, (T, N))
    if state_offset is not None:  # (set only when given: a time-varying system turns off
        # statsmodels' steady-state switch)
        ks["state_intercept"] = np.concatenate([c[1:], np.zeros((1, N))]).T.copy()
    if obs_offset is not None:
        ks["obs_intercept"] = np.broadcast_to(obs_offset, (T, M)).T.copy()
    if prior_of == "stationary":
        ks.initialize_stationary()
    elif prior_of == "diffuse":
        ks.initialize_diffuse()
    elif prior_of == "u1":
        ks.initialize_known(m0, P0)
    else:
        ks.initialize_known(c[0] + A @ m0, A @ P0 @ A.T + B @ B.T)
    return ks.smooth() if smooth else ks.filter()


def statsmodels_loglik(*args, **kw):
    """statsmodels' log-likelihood: :func:`statsmodels_filter`'s ``llf``."""
    return float(statsmodels_filter(*args, **kw).llf)


def assert_close(actual, expected, rtol=1e-8, atol_rel=1e-10, floor=1e-300):
    """``assert_allclose`` of arrays of the same shape, with an absolute floor ``atol_rel`` times
    the scale of ``expected`` (its largest entry, at least ``floor``) for entries that are zero up
    to round-off (e.g. covariance entries that cancel): 1e-10 of the largest entry is far below
    anything a wrong recursion would produce."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(np.max(np.abs(expected)), floor) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol_rel * scale)


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


def input_shapes(jaxpr, primitive, skip=()):
    """Shapes of the first operand of every ``primitive`` equation in ``jaxpr`` and the jaxprs
    nested in it (jit, scan, custom derivative rules), those of the primitives ``skip`` (e.g.
    loops) left out."""
    shapes = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in skip:
            continue
        if eqn.primitive.name == primitive:
            shapes.append(eqn.invars[0].aval.shape)
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else (param,):
                sub = getattr(sub, "jaxpr", sub)
                if hasattr(sub, "eqns"):
                    shapes += input_shapes(sub, primitive, skip)
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
