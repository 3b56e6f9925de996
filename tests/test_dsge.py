"""The first-order perturbation solver (numpyro_statespace.dsge) and the RBC model built on it.

- the RBC solution reproduces DifferenceEquations.jl's reference A, B, C;
- the solver agrees with an independent QZ (generalised Schur) solution on random models and
  flags exactly the models without a unique stable solution;
- derivatives (forward and reverse, implicit) agree with each other and with finite differences;
- indeterminate / explosive / steady-state-less parameters give ok=False and a -inf
  log-likelihood with finite gradients;
- NUTS recovers alpha and beta from the bundled simulated data (Kalman and joint likelihoods;
  short runs by default, long ones with r_hat < 1.01 under ``pytest -m slow``).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
import scipy.linalg
from numpyro.diagnostics import summary
from numpyro.infer import MCMC, NUTS

import numpyro_statespace as nss
from models import rbc, reference_data
from numpyro_statespace import dsge
from _reference import central_difference

REF = reference_data.rbc()
NAMES = rbc.PARAMETERS
THETA0 = np.array([rbc.TRUTH[k] for k in NAMES])


def _flat(theta):
    sol = rbc.first_order(**dict(zip(NAMES, theta)))
    return jnp.concatenate([sol.A.ravel(), sol.B.ravel(), sol.C.ravel()])


_flat_jit = jax.jit(_flat)
# One compilation each, shared by the tests below (eager control flow recompiles every call).
_solution = jax.jit(lambda theta: rbc.first_order(**dict(zip(NAMES, theta))))
ALL_NAMES = tuple(rbc.TRUTH)  # the deep parameters and Omega
Y40 = jnp.asarray(rbc.simulated_data()[:40])


def _loglik(theta):
    return rbc.kalman_log_likelihood(Y40, **dict(zip(ALL_NAMES, theta)))


_loglik_value_and_grad = jax.jit(jax.value_and_grad(_loglik))


def _theta(**params):
    return jnp.asarray([params.get(k, rbc.TRUTH[k]) for k in ALL_NAMES])


# -- values ---------------------------------------------------------------------------------
def test_rbc_reproduces_reference_matrices():
    sol = _solution(jnp.asarray(THETA0))
    assert bool(sol.ok)
    for k in ("A", "B", "C"):
        np.testing.assert_allclose(np.asarray(getattr(sol, k)), REF[k], rtol=0, atol=1e-10)
    np.testing.assert_array_equal(np.asarray(sol.A), np.asarray(sol.h_x))
    # C's first row is g_x's consumption row, its second selects k
    np.testing.assert_allclose(np.asarray(sol.C[0]), np.asarray(sol.g_x[0]), rtol=0, atol=0)
    assert float(sol.steady_state_residual) < 1e-12
    assert sol.g_x.shape == (2, 2) and sol.B.shape == (2, 1)


def _qz_solution(J, n_x):
    """SGU's QZ method (scipy.linalg.ordqz): ``(g_x, h_x, n_stable)``."""
    A = np.hstack([J.H_xp, J.H_yp])
    B = -np.hstack([J.H_x, J.H_y])
    # Pencil B v = lambda A v; stable eigenvalues |alpha / beta| < 1 first.
    S, T, alpha, beta, Q, Z = scipy.linalg.ordqz(B, A, sort=lambda a, b: np.abs(a) < np.abs(b),
                                                 output="complex")
    n_stable = int(np.sum(np.abs(alpha) < np.abs(beta)))
    g_x = np.real(Z[n_x:, :n_x] @ np.linalg.inv(Z[:n_x, :n_x]))
    # (H_xp + H_yp g_x) h_x = -(H_x + H_y g_x): n equations, consistent, for n_x columns
    h_x = -np.linalg.lstsq(J.H_xp + J.H_yp @ g_x, J.H_x + J.H_y @ g_x, rcond=None)[0]
    return g_x, h_x, n_stable


def test_rbc_agrees_with_qz_across_parameters():
    for beta, rho, alpha in [(0.95, 0.2, 0.5), (0.99, 0.9, 0.33), (0.9, 0.5, 0.7)]:
        p = {k: jnp.asarray(v) for k, v in dict(rbc.TRUTH, alpha=alpha, beta=beta, rho=rho).items()}
        y_ss, x_ss, _ = rbc.steady_state(p)
        J = dsge.jacobians(rbc.equilibrium, y_ss, x_ss, p)
        g_qz, h_qz, n_stable = _qz_solution(jax.tree.map(np.asarray, J), 2)
        assert n_stable == 2
        sol = _solution(jnp.asarray([alpha, beta, rho, rbc.TRUTH["delta"], rbc.TRUTH["sigma"]]))
        assert bool(sol.ok)
        np.testing.assert_allclose(np.asarray(sol.g_x), g_qz, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(np.asarray(sol.h_x), h_qz, rtol=1e-9, atol=1e-11)


def test_random_models_agree_with_qz_and_flag_blanchard_kahn():
    """Random Jacobians built around a known solution; ok must equal QZ's Blanchard–Kahn count
    (n_x stable roots) and the solutions must agree where it holds."""
    rng = np.random.default_rng(0)
    n_x, n_y = 3, 2
    n = n_x + n_y
    solve = jax.jit(lambda *J: dsge.first_order_from_jacobians(*J))
    n_ok = n_bad = 0
    for _ in range(40):
        H_yp, H_y = rng.standard_normal((n, n_y)), rng.standard_normal((n, n_y))
        H_xp = rng.standard_normal((n, n_x))
        g = rng.standard_normal((n_y, n_x))
        h = rng.standard_normal((n_x, n_x))
        h *= rng.uniform(0.3, 1.3) / np.max(np.abs(np.linalg.eigvals(h)))
        H_x = -(H_yp @ g @ h + H_y @ g + H_xp @ h)
        J = dsge.DSGEJacobians(H_yp, H_y, H_xp, H_x)
        g_qz, h_qz, n_stable = _qz_solution(J, n_x)
        g_x, h_x, ok = solve(*J)
        assert bool(ok) == (n_stable == n_x)
        if n_stable == n_x:
            n_ok += 1
            np.testing.assert_allclose(np.asarray(g_x), g_qz, rtol=1e-7, atol=1e-8)
            np.testing.assert_allclose(np.asarray(h_x), h_qz, rtol=1e-7, atol=1e-8)
        else:
            n_bad += 1
            assert np.all(np.asarray(g_x) == 0) and np.all(np.asarray(h_x) == 0)
    assert n_ok >= 5 and n_bad >= 5  # both branches exercised


# -- derivatives ------------------------------------------------------------------------------
def test_gradients_match_finite_differences_and_each_other():
    theta = jnp.asarray(THETA0)
    J_fwd = np.asarray(jax.jit(jax.jacfwd(_flat))(theta))
    J_rev = np.asarray(jax.jit(jax.jacrev(_flat))(theta))
    J_fd = central_difference(_flat_jit, theta, h=1e-6 * THETA0)
    np.testing.assert_allclose(J_fwd, J_rev, rtol=0, atol=1e-10)
    np.testing.assert_allclose(J_fwd, J_fd, rtol=0, atol=1e-5)
    # every deep parameter moves something (sigma only B, rho only the z-column)
    assert np.all(np.abs(J_fwd).max(axis=0) > 1e-3)


def test_loglik_gradient_matches_finite_differences():
    theta = _theta() * 1.01
    value, grad = _loglik_value_and_grad(theta)
    assert np.isfinite(float(value))
    fd = central_difference(lambda t: _loglik_value_and_grad(t)[0], theta,
                            h=1e-6 * np.asarray(theta))
    np.testing.assert_allclose(np.asarray(grad), fd, rtol=1e-5)


def test_doubling_and_kronecker_tangents_agree():
    p = {k: jnp.asarray(v) for k, v in rbc.TRUTH.items()}
    y_ss, x_ss, _ = rbc.steady_state(p)
    J = dsge.jacobians(rbc.equilibrium, y_ss, x_ss, p)
    n = 4
    A = jnp.concatenate([jnp.zeros((n, 2)), J.H_yp], axis=1)
    B = jnp.concatenate([J.H_xp, J.H_y], axis=1)
    C = jnp.concatenate([J.H_x, jnp.zeros((n, 2))], axis=1)
    rng = np.random.default_rng(1)
    dA, dB, dC = (jnp.asarray(rng.standard_normal((n, n))) for _ in range(3))
    outs = {}
    for method in ("kronecker", "doubling"):
        (P, ok), (dP, _) = jax.jvp(lambda a, b, c: dsge.solve_quadratic(a, b, c, tangent=method),
                                   (A, B, C), (dA, dB, dC))
        assert bool(ok)
        outs[method] = np.asarray(dP)
    np.testing.assert_allclose(outs["kronecker"], outs["doubling"], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("tangent", ["kronecker", "doubling"])
def test_reverse_mode_of_each_tangent(tangent):
    """``y = a E y' + x``, ``x' = x / 2``: ``g_x = 1 / (1 - a / 2)``, ``dg_x/da = (1/2) / (1 -
    a / 2)^2``, by ``jax.grad`` and ``jax.jacfwd`` with either tangent solver. Reverse mode of
    the doubling one (what "auto" picks beyond 24 variables) raised an AssertionError: its
    ``F`` came out of the same solve as the tangent and the loop was bilinear in it."""
    def H(yn, y, xn, x, a):
        return jnp.stack([xn[0] - 0.5 * x[0], y[0] - a * yn[0] - x[0]])

    def g_x(a):
        return dsge.solve_first_order(H, jnp.zeros(1), jnp.zeros(1), a, tangent=tangent).g_x[0, 0]

    a = jnp.asarray(0.5)
    exact = 0.5 / (1 - 0.5 * a) ** 2
    np.testing.assert_allclose(float(jax.jit(jax.grad(g_x))(a)), exact, rtol=1e-12)
    np.testing.assert_allclose(float(jax.jit(jax.jacfwd(g_x))(a)), exact, rtol=1e-12)


# -- failure ----------------------------------------------------------------------------------
BAD = {
    "indeterminate (beta=1.015: both capital roots stable)": {"beta": 1.015},
    "explosive technology (rho=1.2)": {"rho": 1.2},
    "unit root (rho=1)": {"rho": 1.0},
    "no steady state (beta=1.05)": {"beta": 1.05},
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_parameters_fail_softly(case):
    theta = _theta(**BAD[case])
    sol = _solution(theta[:len(NAMES)])
    assert not bool(sol.ok)
    assert all(np.all(np.isfinite(np.asarray(x))) for x in (sol.A, sol.B, sol.C))
    value, grad = _loglik_value_and_grad(theta)
    assert float(value) == -np.inf
    assert np.all(np.isfinite(np.asarray(grad)))


def test_model_log_density_is_minus_inf_with_finite_gradient_when_indeterminate():
    def parts(alpha, beta):
        ld, tr = numpyro.infer.util.log_density(rbc.kalman_model, (Y40,), {},
                                                {"alpha": alpha, "beta": beta})
        return ld, tr["determinacy"]["fn"].log_factor, tr["y"]["fn"].log_prob(tr["y"]["value"])

    parts = jax.jit(parts)
    grad = jax.jit(jax.grad(lambda a, b: parts(a, b)[0], argnums=(0, 1)))
    ld, factor, ll = parts(0.5, 0.95)
    assert np.isfinite(float(ld)) and float(factor) == 0.0
    # beta = 1.015 is indeterminate (and outside the prior, which ends at 0.99); 1.05 has no
    # steady state. The determinacy factor is -inf, the likelihood of the stand-in finite.
    for beta in (1.015, 1.05):
        ld, factor, ll = parts(0.5, beta)
        assert float(ld) == -np.inf and float(factor) == -np.inf and np.isfinite(float(ll))
        assert np.all(np.isfinite(np.asarray(grad(0.5, beta))))


def test_vmap_over_parameters():
    betas = jnp.array([0.9, 0.95, 1.015, 0.99])
    sols = jax.jit(jax.vmap(lambda b: rbc.first_order(beta=b)))(betas)
    np.testing.assert_array_equal(np.asarray(sols.ok), [True, True, False, True])
    np.testing.assert_allclose(np.asarray(sols.A[1]), REF["A"], atol=1e-10)


def test_bad_input_raises():
    p = {k: jnp.asarray(v) for k, v in rbc.TRUTH.items()}
    y_ss, x_ss, _ = rbc.steady_state(p)
    with pytest.raises(ValueError, match="must return shape"):
        dsge.solve_first_order(lambda yp, y, xp, x, p: jnp.zeros(3), y_ss, x_ss, p)
    with pytest.raises(ValueError, match="y_ss"):
        dsge.solve_first_order(rbc.equilibrium, y_ss[None], x_ss, p)
    with pytest.raises(ValueError, match="eta"):
        dsge.solve_first_order(rbc.equilibrium, y_ss, x_ss, p, eta=jnp.ones((3, 1)))
    with pytest.raises(ValueError, match="Gamma"):
        dsge.solve_first_order(rbc.equilibrium, y_ss, x_ss, p, eta=jnp.ones((2, 1)),
                               Gamma=jnp.ones((2, 2)))
    with pytest.raises(ValueError, match="observables"):
        dsge.solve_first_order(rbc.equilibrium, y_ss, x_ss, p, observables=(0, 4))
    with pytest.raises(ValueError, match="observables"):
        dsge.solve_first_order(rbc.equilibrium, y_ss, x_ss, p, observables=jnp.ones((2, 3)))
    with pytest.raises(ValueError, match=r"B must have shape \(n, n\)"):
        dsge.solve_quadratic(jnp.eye(2), jnp.eye(3), jnp.eye(2))
    with pytest.raises(ValueError, match="tangent"):
        dsge.solve_quadratic(jnp.eye(2), jnp.eye(2), jnp.eye(2), tangent="qz")
    with pytest.raises(ValueError, match="H_x must have shape"):
        dsge.first_order_from_jacobians(jnp.ones((4, 2)), jnp.ones((4, 2)), jnp.ones((4, 2)),
                                        jnp.ones((3, 2)))
    with pytest.raises(ValueError, match="unknown RBC parameters"):
        rbc.first_order(gamma=1.0)


# -- inference --------------------------------------------------------------------------------
def _kalman_known_start(y):
    """The Kalman route with the joint routes' known start ``u_0 = 0``: the same posterior of
    ``(alpha, beta)`` as ``rbc.joint_model``, which samples the shocks it integrates out."""
    sol = rbc._solve_in_model()
    R = rbc.observation_cov(rbc.TRUTH["Omega"])
    numpyro.sample("y", nss.KalmanLGSS(sol.A, sol.B, sol.C, R, jnp.zeros(2), jnp.zeros((2, 2)),
                                       y.shape[0]), obs=y)


ROUTES = {
    # model, target_accept_prob
    "kalman": (_kalman_known_start, 0.8),
    # The joint density with the shocks whitened by their posterior (nss.Whitening): ~15 steps
    # per draw. (Plain latent shocks take ~250: their agreement is tests/test_inference.py's.)
    "joint_whitened": (functools.partial(rbc.joint_model, whiten=True), 0.8),
}


def _posterior(route, T=200, num_warmup=1000, num_samples=1000):
    """``summary`` of alpha and beta from 2 chains on the bundled data, after checking r_hat
    <= 1.01 and no divergent transition."""
    model, target = ROUTES[route]
    y = jnp.asarray(rbc.simulated_data()[:T])
    kernel = NUTS(model, target_accept_prob=target, init_strategy=numpyro.infer.init_to_median)
    mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=2,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(7), y, extra_fields=("diverging",))
    grouped = mcmc.get_samples(group_by_chain=True)
    stats = summary({k: grouped[k] for k in ("alpha", "beta")})
    for name, s in stats.items():
        assert s["r_hat"] <= 1.01, f"{route} {name}: r_hat {s['r_hat']}"
    assert int(mcmc.get_extra_fields()["diverging"].sum()) == 0
    return stats


@pytest.mark.slow
def test_nuts_kalman_and_whitened_joint_agree_through_the_solver():
    """The DSGE solver inside NUTS by two routes that must give one posterior: the marginal
    (Kalman) likelihood and the joint likelihood with whitened latent shocks. Their posterior
    means of alpha and beta agree within Monte Carlo error (|z| < 4, standard errors from the
    effective sample sizes)."""
    a, b = _posterior("kalman"), _posterior("joint_whitened")
    for name in ("alpha", "beta"):
        se = np.hypot(a[name]["std"] / np.sqrt(a[name]["n_eff"]),
                      b[name]["std"] / np.sqrt(b[name]["n_eff"]))
        z = (a[name]["mean"] - b[name]["mean"]) / se
        assert abs(z) < 4.0, f"{name}: z = {z:.2f}"
