"""The Dynare-timing front end (numpyro_statespace.dsge.DynareModel).

- the RBC written in Dynare timing has the same solution as its SGU-form version
  (``models/rbc.py``) after the linear change of state ``(k(-1), z(-1), e) -> (k, z)``, and the
  same Kalman likelihood (a NumPy filter written for the tests);
- auxiliary variables: an ARMA(2, 1) with a lead of two and a lagged shock against its policy
  derived by hand;
- Newton's steady state equals the closed form, and its derivatives (implicit) equal central
  differences, forward and reverse;
- bad input: wrong number of residuals, unknown names, a wrong steady state (residual
  reported), explosive parameters (ok False, -inf, finite gradients).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

import numpyro_statespace as nss
from models import rbc, rbc_second_order
from tests._reference import central_difference, numpy_kalman_loglik

P0 = {k: rbc.TRUTH[k] for k in rbc.PARAMETERS}
NAMES = ("c", "q", "k", "z")


def rbc_equations(v, p):
    """The RBC of ``models/rbc.py`` in Dynare timing (``k`` is end-of-period capital)."""
    a, b, r, d, s = p["alpha"], p["beta"], p["rho"], p["delta"], p["sigma"]
    return [1 / v("c") - b / v("c", 1) * (a * jnp.exp(v("z", 1)) * v("k") ** (a - 1) + 1 - d),
            v("c") + v("k") - (1 - d) * v("k", -1) - v("q"),
            v("q") - jnp.exp(v("z")) * v("k", -1) ** a,
            v("z") - r * v("z", -1) + s * v("e")]


def rbc_steady_state(p):
    y, x, _ = rbc.steady_state(p)
    return {"c": y[0], "q": y[1], "k": x[0], "z": x[1]}


GUESS = {"c": 2.0, "q": 2.5, "k": 20.0, "z": 0.1}
CLOSED = nss.DynareModel(rbc_equations, NAMES, ("e",), rbc.PARAMETERS,
                         steady_state=rbc_steady_state, observables=("c", "q"))
NEWTON = nss.DynareModel(rbc_equations, NAMES, ("e",), rbc.PARAMETERS,
                         steady_state_guess=GUESS, observables=("c", "q"))


def _sgu_in_dynare_states(p):
    """The SGU solution expressed in the Dynare-timing states ``(k(-1), z(-1), e)``:
    ``(k, z)_SGU = L (k(-1), z(-1), e)`` with ``L = [[1, 0, 0], [0, rho, -sigma]]``, and the
    Dynare controls ``(c, q, k, z)_t = [g_x; h_x[k]; (0, 1)] (k, z)_SGU``."""
    sol = rbc.first_order(**p)
    L = np.array([[1.0, 0.0, 0.0], [0.0, p["rho"], -p["sigma"]]])
    G = np.vstack([np.asarray(sol.g_x), np.asarray(sol.h_x)[:1], [[0.0, 1.0]]])
    return G @ L


def test_rbc_dynare_timing_matches_sgu_form_first_order():
    assert CLOSED.state_names == ("k(-1)", "z(-1)", "e")
    assert CLOSED.observable_names == ("c", "q")
    y_ss, _, _ = rbc.steady_state({k: jnp.asarray(v) for k, v in P0.items()})
    np.testing.assert_allclose(np.asarray(CLOSED.observable_steady_state(P0)), y_ss, rtol=1e-14)
    for p in (P0, dict(P0, alpha=0.33, beta=0.99, rho=0.9)):
        sol = CLOSED.solve(p)
        assert bool(sol.ok) and float(sol.steady_state_residual) < 1e-12
        expected = _sgu_in_dynare_states(p)
        np.testing.assert_allclose(np.asarray(sol.g_x), expected, rtol=0, atol=1e-12)
        # the next state is (k, z, e') with the shock row zero and B = (0, 0, 1)
        np.testing.assert_allclose(np.asarray(sol.h_x), np.vstack([expected[2:], np.zeros(3)]),
                                   rtol=0, atol=1e-12)
        np.testing.assert_array_equal(np.asarray(sol.B), [[0.0], [0.0], [1.0]])
        np.testing.assert_allclose(np.asarray(sol.C), expected[:2], rtol=0, atol=1e-12)


def test_rbc_dynare_timing_matches_sgu_form_second_order():
    """Second order: the Dynare-timing policy is the SGU policy composed with the linear map
    ``L`` (exact, shocks included), so ``g_xx = L' G_xx L`` and the sigma-sigma terms agree."""
    sol = jax.jit(lambda p: CLOSED.solve(p, order=2))(P0)
    sgu = jax.jit(lambda p: rbc_second_order.second_order(**p))(P0)
    assert bool(sol.ok) and bool(sgu.ok)
    L = np.array([[1.0, 0.0, 0.0], [0.0, P0["rho"], -P0["sigma"]]])
    zero = np.zeros((1, 2, 2))
    G_xx = np.concatenate([np.asarray(sgu.g_xx), np.asarray(sgu.h_xx)[:1], zero])
    g_xx = np.einsum("iab,aj,bk->ijk", G_xx, L, L)
    np.testing.assert_allclose(np.asarray(sol.g_xx), g_xx, rtol=0, atol=1e-10)
    h_xx = np.concatenate([g_xx[2:], np.zeros((1, 3, 3))])
    np.testing.assert_allclose(np.asarray(sol.h_xx), h_xx, rtol=0, atol=1e-10)
    g_ss = np.concatenate([np.asarray(sgu.g_ss), np.asarray(sgu.h_ss)[:1], [0.0]])
    np.testing.assert_allclose(np.asarray(sol.g_ss), g_ss, rtol=0, atol=1e-14)
    np.testing.assert_allclose(np.asarray(sol.h_ss), np.append(g_ss[2:], 0.0), rtol=0,
                               atol=1e-14)
    assert abs(g_ss[0]) > 1e-5  # a non-trivial comparison
    # the state space: observables (c, q) are the first two controls
    np.testing.assert_allclose(np.asarray(sol.C_2), g_xx[:2] / 2, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.asarray(sol.C_0), g_ss[:2] / 2, rtol=0, atol=1e-14)


def test_rbc_dynare_timing_kalman_likelihood_equals_sgu_form():
    """Both state spaces (SGU: 2 states; Dynare timing: 3) give one likelihood for (c, q)."""
    rng = np.random.default_rng(1)
    y = 0.01 * rng.standard_normal((30, 2))
    R = 1e-4 * np.eye(2)
    sgu = rbc.first_order(**P0)
    C_sgu = np.asarray(sgu.g_x)
    dyn = CLOSED.solve(P0)
    values = []
    for A, B, C in ((sgu.A, sgu.B, C_sgu), (dyn.A, dyn.B, dyn.C)):
        A, B, C = (np.asarray(X) for X in (A, B, C))
        P = scipy.linalg.solve_discrete_lyapunov(A, B @ B.T)
        values.append(numpy_kalman_loglik(A, B, C, R, np.zeros(A.shape[0]), P, y))
    np.testing.assert_allclose(values[0], values[1], rtol=1e-11)


def test_newton_steady_state_equals_closed_form_with_implicit_derivatives():
    ss_newton = NEWTON.steady_state(P0)
    ss_closed = CLOSED.steady_state(P0)
    for k in NAMES:
        np.testing.assert_allclose(float(ss_newton[k]), float(ss_closed[k]), rtol=1e-12,
                                   atol=1e-14)

    def k_bar(model, theta):
        return model.steady_state(dict(zip(rbc.PARAMETERS, theta)))["k"]

    theta = jnp.asarray([P0[k] for k in rbc.PARAMETERS])
    exact = jax.grad(lambda t: k_bar(CLOSED, t))(theta)  # differentiates the closed form
    np.testing.assert_allclose(np.asarray(jax.grad(lambda t: k_bar(NEWTON, t))(theta)),
                               np.asarray(exact), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(np.asarray(jax.jacfwd(lambda t: k_bar(NEWTON, t))(theta)),
                               np.asarray(exact), rtol=1e-9, atol=1e-9)


@pytest.mark.slow
def test_solution_derivatives_through_newton_agree_with_central_differences():
    """(slow: three compilations; the default run checks the Newton steady state's own
    derivatives above and the solver's in tests/test_second_order.py)"""
    def flat(theta):
        sol = NEWTON.solve(dict(zip(rbc.PARAMETERS, theta)))
        return jnp.concatenate([sol.g_x.ravel(), sol.h_x.ravel()])

    theta = jnp.asarray([P0[k] for k in rbc.PARAMETERS])
    f = jax.jit(flat)
    fwd, rev = jax.jacfwd(flat)(theta), jax.jacrev(flat)(theta)
    fd = central_difference(f, theta)
    np.testing.assert_allclose(np.asarray(fwd), np.asarray(rev), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(fwd), fd, rtol=1e-6, atol=1e-7)


def arma_equations(v, p):
    """z an ARMA(2, 1); w = E_t z_{t+2} (a lead of two); x = z_{t-2} (a lag of two)."""
    return [v("z") - p["r1"] * v("z", -1) - p["r2"] * v("z", -2) - p["s"] * v("e")
            - p["th"] * v("e", -1),
            v("w") - v("z", 2),
            v("x") - v("z", -2)]


def test_auxiliary_variables_for_long_leads_lags_and_lagged_shocks():
    p = {"r1": 0.5, "r2": 0.3, "s": 0.7, "th": 0.4}
    model = nss.DynareModel(arma_equations, ("z", "w", "x"), ("e",), tuple(p),
                            steady_state=lambda p: {"z": 0.0, "w": 0.0, "x": 0.0},
                            observables=("w", "z"))
    assert sorted(model.state_names) == sorted(("z(-1)", "z(-2)", "e(-1)", "e"))
    assert model.state_names[-1] == "e"
    sol = model.solve(p)
    assert bool(sol.ok)
    r1, r2, s, th = p["r1"], p["r2"], p["s"], p["th"]
    # z_t in the states (z(-1), z(-2), e(-1), e)
    z = np.array([r1, r2, th, s])
    # E_t z_{t+2} = (r1^2 + r2) z_t + r1 r2 z_{t-1} + r1 th e_t
    w = (r1**2 + r2) * z + r1 * r2 * np.array([1.0, 0, 0, 0]) + r1 * th * np.array([0, 0, 0, 1.0])
    order = [model.state_names.index(k) for k in ("z(-1)", "z(-2)", "e(-1)", "e")]
    C = np.asarray(sol.C)[:, order]
    np.testing.assert_allclose(C[0], w, rtol=0, atol=1e-12)
    np.testing.assert_allclose(C[1], z, rtol=0, atol=1e-12)


def test_solution_and_gradient_kernel_matches_central_differences():
    """The benchmark kernel: solution and reverse-mode gradient of the sum of its arrays."""
    p = {"r1": 0.5, "r2": 0.3, "s": 0.7, "th": 0.4}
    model = nss.DynareModel(arma_equations, ("z", "w", "x"), ("e",), tuple(p),
                            steady_state=lambda p: {"z": 0.0, "w": 0.0, "x": 0.0})
    kernel = model.solution_and_gradient(order=2)
    theta = jnp.asarray(list(p.values()))
    sol, grad = kernel(theta)
    assert bool(sol.ok) and sol.A_2.shape == (4, 4, 4)

    def total(t):
        s = kernel(t)[0]
        return sum(float(jnp.sum(getattr(s, k))) for k in ("A_0", "A_1", "A_2", "B", "C_0",
                                                            "C_1", "C_2"))

    np.testing.assert_allclose(np.asarray(grad), central_difference(total, theta), rtol=1e-6)


# -- bad input ------------------------------------------------------------------------------
def test_wrong_number_of_residuals_names_counts():
    with pytest.raises(ValueError, match=r"returned 3 residuals for 4 endogenous"):
        nss.DynareModel(lambda v, p: rbc_equations(v, p)[:3], NAMES, ("e",), rbc.PARAMETERS)


def test_unknown_names_are_reported():
    with pytest.raises(ValueError, match=r"variable 'kk'"):
        nss.DynareModel(lambda v, p: rbc_equations(v, p)[:3] + [v("kk")], NAMES, ("e",),
                        rbc.PARAMETERS)
    with pytest.raises(ValueError, match=r"parameter 'delta'"):
        nss.DynareModel(rbc_equations, NAMES, ("e",), ("alpha", "beta", "rho", "sigma"))
    with pytest.raises(ValueError, match=r"reserved for auxiliary variables; got \['AUX_k'\]"):
        nss.DynareModel(rbc_equations, ("c", "q", "AUX_k", "z"), ("e",), rbc.PARAMETERS)
    with pytest.raises(ValueError, match=r"observables \['y'\]"):
        nss.DynareModel(rbc_equations, NAMES, ("e",), rbc.PARAMETERS, observables=("c", "y"))
    with pytest.raises(ValueError, match=r"missing \['sigma'\], unknown \['sig'\]"):
        CLOSED.solve({**{k: v for k, v in P0.items() if k != "sigma"}, "sig": 0.01})


def test_wrong_steady_state_reports_residual_and_flags_under_jit():
    def wrong(p):
        return dict(rbc_steady_state(p), c=rbc_steady_state(p)["c"] * 1.01)

    model = nss.DynareModel(rbc_equations, NAMES, ("e",), rbc.PARAMETERS, steady_state=wrong,
                            observables=("c", "q"))
    with pytest.raises(ValueError, match=r"does not solve the equations: residuals"):
        model.steady_state(P0)
    sol = jax.jit(lambda p: model.solve(p))(P0)
    assert not bool(sol.ok) and float(sol.steady_state_residual) > 1e-4


def test_explosive_shock_process_gives_ok_false_minus_inf_and_finite_gradients():
    from numpyro.infer.util import log_density

    def model_fn(theta):
        sol = CLOSED.solve(dict(P0, rho=theta))
        nss.dsge.log_prob_guard("bk", sol.ok)
        return sol

    def logp(theta):
        return log_density(model_fn, (theta,), {}, {})[0]

    sol = jax.jit(lambda r: CLOSED.solve(dict(P0, rho=r)))(1.2)
    assert not bool(sol.ok)
    assert np.all(np.isfinite(np.asarray(sol.g_x)))
    assert float(logp(1.2)) == -np.inf and np.isfinite(float(logp(0.2)))
    g = jax.grad(lambda r: jnp.sum(CLOSED.solve(dict(P0, rho=r)).C))(1.2)
    assert np.isfinite(float(g))
