"""The steady-state switch of the Kalman log-likelihood (``kernels.steady_state``).

References: statsmodels with its own steady-state switch turned off (``tolerance=0``), our full
filter (``steady_state=False``), a NumPy loop for the block recursion, and central finite
differences for the gradients (reverse and forward mode).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from numpyro_statespace import kernels
from numpyro_statespace.kernels.steady_state import (
    linear_recursion,
    riccati_converged,
    riccati_step,
    steady_state_loglik,
)
from _reference import (central_difference, np_linear, random_model, record_results, simulate,
                        stable_matrix, statsmodels_filter)

T = 1000
EVERY = kernels.likelihood.STEADY_STATE_EVERY   # the switch is tried after every chunk of steps


def model(seed, N=4, K=2, M=3, radius=0.9, diag_R=False, R_zero=False):
    return random_model(seed, N, K, M, T, radius, diag_R, R_zero)


# one compilation per shape and option, shared by the tests
_loglik = jax.jit(kernels.kalman_loglik, static_argnames="steady_state")


def loglik(m, steady_state=True, diagonal=False, **over):
    p = {**m, **over}
    R = jnp.diagonal(p["R"]) if diagonal else p["R"]
    return _loglik(p["A"], p["B"], p["C"], R, p["m0"], p["P0"], p["y"], p.get("mask"),
                   steady_state=steady_state)


def sm_loglik(m, y=None):
    """statsmodels' log-likelihood with its own steady-state switch off."""
    return np.sum(statsmodels_filter(*(m[k] for k in ("A", "B", "C", "R", "m0", "P0")),
                                     m["y"] if y is None else y, tolerance=0).llf_obs)


def barely_observed(n_steps):
    """A near unit root, barely observed: the covariance still moves after 1000 steps."""
    m = model(9, N=2, K=1, M=1, radius=0.999)
    m["C"] = 0.001 * m["C"]
    m["y"] = simulate(np.random.default_rng(1), m["A"], m["B"], m["C"], m["R"], m["m0"],
                      m["P0"], n_steps)
    return m


_switch_step = jax.jit(kernels.likelihood.steady_state_switch_step)


def switch_step(m, **over):
    """The steps filtered in full before the steady-state tail (``T``: never switched)."""
    p = {**m, **over}
    return int(_switch_step(p["A"], p["B"], p["C"], p["R"], p["m0"], p["P0"], p["y"],
                            p.get("mask")))


def first_converged_chunk(m, limit):
    """The reference for the switch step: the first multiple of ``EVERY`` at which the
    covariance recursion alone (no data) has converged, or None before ``limit``."""
    A, B, C, R = (jnp.asarray(m[k]) for k in "ABCR")
    step, converged = jax.jit(riccati_step), jax.jit(riccati_converged)
    P = jnp.asarray(m["P0"])
    for t in range(1, limit + 1):
        P = step(P, A, B @ B.T, C, R)
        if t % EVERY == 0 and converged(P, A, B @ B.T, C, R):
            return t
    return None


@pytest.mark.parametrize("n", [1, 5, 100])
@pytest.mark.parametrize("N", [3, 20])  # a fused product and a dot (linalg.matvec)
def test_linear_recursion_matches_loop(n, N):
    rng = np.random.default_rng(n + N)
    F = stable_matrix(rng, N, 0.8)
    U = rng.standard_normal((n, N))
    a1 = rng.standard_normal(N)
    expected = np_linear(F, np.eye(N), None, a1, U, n)[0][:-1]  # a_{t+1} = F a_t + U_t
    got = linear_recursion(jnp.asarray(F), jnp.asarray(U), jnp.asarray(a1))
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)


_filter_head = jax.jit(lambda *args: kernels.kalman_filter(*args, save_everystep=False))


@pytest.mark.parametrize("case", [
    dict(), dict(diag_R=True), dict(R_zero=True, N=3, K=1, M=2), dict(N=6, K=6, M=1),
])
def test_matches_statsmodels_and_full_filter(case):
    m = model(11, **case)
    expected = float(sm_loglik(m))
    diagonal = case.get("diag_R", False)
    fast = loglik(m, diagonal=diagonal)
    full = loglik(m, steady_state=False, diagonal=diagonal)
    np.testing.assert_allclose(fast, expected, rtol=1e-12)
    np.testing.assert_allclose(fast, full, rtol=1e-13)
    # and the switch was taken, where the covariance has converged ...
    s = switch_step(m)
    assert s < T
    head = _filter_head(m["A"], m["B"], m["C"], m["R"], m["m0"], m["P0"], m["y"][:s])
    A, B, C, R = (jnp.asarray(m[k]) for k in "ABCR")
    assert jax.jit(riccati_converged)(head.filtered_covs[-1], A, B @ B.T, C, R)
    # ... and the steady-state tail alone, from there, completes statsmodels' value
    tail, ok = jax.jit(steady_state_loglik)(head.filtered_means[-1], head.filtered_covs[-1], A,
                                            B @ B.T, C, R, jnp.asarray(m["y"][s:]))
    assert ok
    np.testing.assert_allclose(head.log_likelihood + tail, expected, rtol=1e-12)


def test_switch_at_the_first_converged_chunk():
    """The switch step is found at run time from the covariance recursion: the first chunk
    boundary where it has converged, so models that converge at different speeds switch at
    different steps (a fixed step would be too early for one or too late for the other)."""
    slow, fast = model(3), model(3, radius=0.5)
    steps = []
    for m in (slow, fast):
        s = switch_step(m)
        assert s == first_converged_chunk(m, T)
        # a few steps in, the covariance is still moving
        assert first_converged_chunk(m, 5) is None
        np.testing.assert_allclose(loglik(m), loglik(m, steady_state=False), rtol=1e-13)
        steps.append(s)
    assert steps[1] < steps[0] < T, steps


def test_int_switch_point_and_short_series():
    m = model(5)
    full = float(loglik(m, steady_state=False))
    for start in (200, 999):
        np.testing.assert_allclose(loglik(m, steady_state=start), full, rtol=1e-13)
    # no switch below 64 steps, nor below 1000 with fewer than 8 states (here 4)
    for n_steps in (kernels.likelihood.STEADY_STATE_MIN_STEPS - 1, 999):
        short = dict(m, y=m["y"][:n_steps])
        assert float(loglik(short)) == float(loglik(short, steady_state=False))


def test_missing_data_postpones_the_switch():
    """The tail must be complete: a missing entry holds the full filter until after it."""
    m = model(7)
    s_complete = switch_step(m)
    y = m["y"].copy()
    y[800, 1] = np.nan
    mask = np.ones_like(y, bool)
    mask[700, 0] = False
    y_early = m["y"].copy()
    y_early[s_complete - 3, 0] = np.nan
    for over, after in ((dict(y=y), 800), (dict(mask=mask), 700), (dict(y=y_early), 0)):
        assert after < switch_step(m, **over) < T
        ref = sm_loglik(m, np.where(over.get("mask", True), over.get("y", m["y"]), np.nan))
        np.testing.assert_allclose(loglik(m, **over), ref, rtol=1e-12)
        np.testing.assert_allclose(loglik(m, **over), loglik(m, steady_state=False, **over),
                                   rtol=1e-13)


def test_slowly_converging_model_falls_back():
    m = barely_observed(T)
    np.testing.assert_allclose(loglik(m), sm_loglik(m), rtol=1e-12)
    assert switch_step(m) == T


def test_beyond_the_horizon_the_full_filter_goes_on():
    """A series longer than the stored head (steady_state_horizon) whose covariance has not
    converged by then: the full filter runs on from the horizon; value and gradient as the full
    filter's."""
    n_steps = 2100
    assert kernels.likelihood.steady_state_horizon(n_steps, 2) == 1000
    m = barely_observed(n_steps)
    assert switch_step(m) == n_steps
    f = jax.jit(jax.value_and_grad(lambda A, ss: loglik(m, steady_state=ss, A=A)),
                static_argnums=1)
    (v, g), (v_full, g_full) = f(m["A"], True), f(m["A"], False)
    np.testing.assert_allclose(v, v_full, rtol=1e-13)
    np.testing.assert_allclose(g, g_full, rtol=1e-10, atol=1e-11 * np.max(np.abs(g_full)))


def test_vmap_mixes_switch_and_fallback():
    fast, slow = model(2), model(9, N=4, radius=0.9)
    slow["y"] = fast["y"].copy()
    slow["y"][900, 0] = np.nan                  # this one falls back
    stacked = {k: np.stack([fast[k], slow[k]]) for k in fast}
    got = jax.jit(jax.vmap(lambda p: kernels.kalman_loglik(p["A"], p["B"], p["C"], p["R"], p["m0"],
                                                           p["P0"], p["y"])))(stacked)
    np.testing.assert_allclose(got, [loglik(fast, steady_state=False),
                                     loglik(slow, steady_state=False)], rtol=1e-13)


def test_gradients_match_finite_differences():
    m = model(13)
    x = {k: m[k] for k in "ABCR"}
    f = jax.jit(lambda x: loglik(m, **x))
    rev = jax.jit(jax.grad(lambda x: loglik(m, **x)))(x)
    fwd = jax.jit(jax.jacfwd(lambda x: loglik(m, **x)))(x)
    full = jax.jit(jax.grad(lambda x: loglik(m, steady_state=False, **x)))(x)
    for k in x:
        fd = central_difference(lambda v, k=k: float(f({**x, k: v})), x[k])
        scale = np.max(np.abs(full[k]))
        np.testing.assert_allclose(rev[k], full[k], rtol=1e-10, atol=1e-11 * scale)
        np.testing.assert_allclose(fwd[k], full[k], rtol=1e-10, atol=1e-11 * scale)
        np.testing.assert_allclose(rev[k], fd, rtol=1e-5, atol=1e-6 * scale)


def test_horizon():
    horizon = kernels.likelihood.steady_state_horizon
    assert horizon(63, 30) is None and horizon(999, 7) is None   # short, or small and < 1000
    assert horizon(64, 8) == 64 and horizon(100, 30) == 104      # the series in whole chunks
    assert horizon(1000, 2) == 1000 and horizon(2000, 2) == 2000
    assert horizon(2001, 2) == 1000 and horizon(30_000, 2) == 3000  # then 10 %, at least 1000


def test_mid_length_series_switches_where_converged():
    # 8 states, 120 steps: the covariance has converged at step 28, the switch follows at 32
    n_steps = 120
    m = model(21, N=8, K=3, M=3)
    m["y"] = m["y"][:n_steps]
    assert switch_step(m) == first_converged_chunk(m, n_steps) == 32
    np.testing.assert_allclose(loglik(m), sm_loglik(m), rtol=1e-12)
    x = {k: m[k] for k in "ABCR"}
    # forward mode runs the same rule: test_gradients_match_finite_differences
    rev = jax.jit(jax.grad(lambda x: loglik(m, **x)))(x)
    full = jax.jit(jax.grad(lambda x: loglik(m, steady_state=False, **x)))(x)
    for k in x:
        scale = np.max(np.abs(full[k]))
        np.testing.assert_allclose(rev[k], full[k], rtol=1e-10, atol=1e-11 * scale)
    fd = central_difference(lambda v: float(loglik(m, A=v)), x["A"])
    np.testing.assert_allclose(rev["A"], fd, rtol=1e-5, atol=1e-6 * np.max(np.abs(fd)))


@pytest.mark.slow
def test_second_derivatives_through_the_switch():
    """JAX differentiates the rule (its while loops forward): the Hessian with respect to a
    scale of A and of R equals the full filter's."""
    m = model(21, N=8, K=3, M=3)
    y = jnp.asarray(m["y"][:80])
    assert switch_step(dict(m, y=y)) < 80

    def f(a, steady_state):
        return kernels.kalman_loglik(m["A"] * a[0], m["B"], m["C"], m["R"] * a[1], m["m0"],
                                     m["P0"], y, steady_state=steady_state)

    hessian = jax.jit(jax.hessian(f), static_argnums=1)
    H, H_full = hessian(jnp.ones(2), True), hessian(jnp.ones(2), False)
    np.testing.assert_allclose(H, H_full, rtol=1e-10, atol=1e-11 * np.max(np.abs(H_full)))


_value_and_grad_A = jax.jit(jax.value_and_grad(
    lambda A, m, y: kernels.kalman_loglik(A, m["B"], m["C"], m["R"], m["m0"], m["P0"], y)))


@pytest.mark.parametrize("bad", ["inf_in_tail", "huge_in_tail", "nan_A"])
def test_failure_is_minus_inf_with_finite_gradient(bad):
    m = model(17)
    y, A = m["y"].copy(), m["A"].copy()
    if bad == "inf_in_tail":
        y[900, 0] = np.inf
    elif bad == "huge_in_tail":
        y[900, 0] = 1e300
    else:
        A[0, 0] = np.nan
    value, grad = _value_and_grad_A(A, {k: m[k] for k in "BCR"} | {"m0": m["m0"], "P0": m["P0"]}, y)
    assert value == -np.inf
    assert np.all(np.isfinite(grad))


def test_float32_switch_is_taken_and_agrees_with_float64(monkeypatch):
    """In float32 the Riccati recursion ends in a one-ulp oscillation: a float64 tolerance never
    accepted it and the switch never engaged (every step filtered in full, ~6x slower at T =
    10,000). The tolerance is now in machine epsilons of the dtype: the switch is taken, and the
    float32 value and gradient agree with float64's at the same (rounded) numbers as closely as
    the float32 full filter does."""
    m = model(3)
    m = {k: np.asarray(np.asarray(v, np.float32), np.float64) for k, v in m.items()}
    seen = record_results(monkeypatch, kernels.likelihood, "riccati_settled")
    f = jax.jit(jax.value_and_grad(kernels.kalman_loglik), static_argnames="steady_state")
    args = [m[k] for k in ("A", "B", "C", "R", "m0", "P0", "y")]
    v64, g64 = f(*map(jnp.asarray, args), steady_state=False)
    f32 = [jnp.asarray(a, jnp.float32) for a in args]
    v_full, g_full = f(*f32, steady_state=False)
    v, g = f(*f32)
    assert v.dtype == g.dtype == jnp.float32
    assert seen[-1] and not any(seen[:-1])           # checked after every chunk, taken once
    err = lambda a: (abs(float(a[0]) - float(v64)) / abs(float(v64)),  # noqa: E731
                     float(jnp.max(jnp.abs(a[1] - g64)) / jnp.max(jnp.abs(g64))))
    (ev, eg), (ev_full, eg_full) = err((v, g)), err((v_full, g_full))
    assert ev < max(3 * ev_full, 1e-6) and eg < max(3 * eg_full, 1e-5), (ev, eg, ev_full, eg_full)
