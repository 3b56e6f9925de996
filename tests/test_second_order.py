"""The second-order perturbation solver (numpyro_statespace.solve_second_order).

- RBC: the solution from deep parameters reproduces DifferenceEquations.jl's reference
  A_0 ... C_2 (1e-10) and its pruned joint log-likelihood -690.81094364573;
- derivatives of g_xx, h_xx, g_ss, h_ss in (alpha, beta, sigma): jacfwd and jacrev against
  central differences of the solver; the pruned joint log-likelihood as a function of
  (alpha, beta), its gradient against central differences;
- independent solutions at random parameter draws of two models: a dense Kronecker solve in
  NumPy of the SGU equations built from the full Hessian of H (jax.hessian);
- Brock–Mirman (log utility, full depreciation): closed-form second derivatives and zero
  sigma-sigma terms;
- the Sylvester solver alone against a dense solve, with its derivatives;
- explosive parameters: ok False, finite stand-ins, -inf through log_prob_guard, finite
  gradients.
"""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
from numpyro.infer.util import log_density

import numpyro_statespace as nss
from models import rbc, rbc_second_order, reference_data
from _reference import central_difference, stable_matrix

REF = reference_data.rbc()
P0 = {k: rbc.TRUTH[k] for k in rbc.PARAMETERS}
_solve = jax.jit(lambda p: rbc_second_order.second_order(**p))


# -- RBC reference ------------------------------------------------------------------------
def test_rbc_reproduces_reference_matrices_and_pruned_likelihood():
    sol = _solve(P0)
    assert bool(sol.ok)
    for k in ("A_0", "A_1", "A_2", "B", "C_0", "C_1", "C_2"):
        np.testing.assert_allclose(np.asarray(getattr(sol, k)), REF[k], rtol=0, atol=1e-10,
                                   err_msg=k)
    np.testing.assert_array_equal(np.asarray(sol.A_2), np.asarray(sol.h_xx) / 2)
    loglik = jax.jit(lambda noise, y: rbc_second_order.joint_distribution_from(
        noise, R=REF["R"])[0].log_prob(y))
    np.testing.assert_allclose(float(loglik(REF["noise"][:5], REF["observables"][:5])),
                               -690.81094364573, rtol=1e-10)


def _terms(theta):
    s = rbc_second_order.second_order(alpha=theta[0], beta=theta[1], sigma=theta[2])
    return jnp.concatenate([s.g_xx.ravel(), s.h_xx.ravel(), s.g_ss, s.h_ss])


def test_second_order_derivatives_forward_and_reverse_match_central_differences():
    theta = jnp.asarray([P0["alpha"], P0["beta"], P0["sigma"]])
    fwd = jax.jit(jax.jacfwd(_terms))(theta)
    rev = jax.jit(jax.jacrev(_terms))(theta)
    fd = central_difference(jax.jit(_terms), theta)
    np.testing.assert_allclose(np.asarray(rev), np.asarray(fwd), rtol=1e-10, atol=1e-12)
    # central differences with h = 1e-6: truncation ~ h^2 f''' plus rounding ~ eps f / h,
    # about 1e-8 of the largest entry (~1e2)
    scale = np.max(np.abs(fd))
    np.testing.assert_allclose(np.asarray(fwd), fd, rtol=1e-6, atol=1e-6 * scale)
    assert np.max(np.abs(fd[:, 2])) > 0  # sigma moves g_ss, h_ss


def test_pruned_joint_loglik_through_the_solver_gradient_in_alpha_beta():
    y = jnp.asarray(REF["observables"][:5])
    noise = jnp.asarray(REF["noise"][:5])

    def loglik(ab):
        d, ok = rbc_second_order.joint_distribution_from(noise, R=REF["R"], alpha=ab[0],
                                                          beta=ab[1])
        return jnp.where(ok, d.log_prob(y), -jnp.inf)

    ab = jnp.asarray([0.5, 0.95])
    value, grad = jax.jit(jax.value_and_grad(loglik))(ab)
    np.testing.assert_allclose(float(value), -690.81094364573, rtol=1e-10)
    fd = central_difference(jax.jit(loglik), ab)
    np.testing.assert_allclose(np.asarray(grad), fd, rtol=1e-6)
    assert np.all(np.abs(fd) > 1.0)


# -- independent dense solution -------------------------------------------------------------
def dense_second_order(H, y_ss, x_ss, p, Bm, g_x, h_x):
    """SGU's equations in NumPy: the full Hessian of H in v = (y', y, x', x), the state block
    by one dense Kronecker solve and the sigma-sigma block by a second solve."""
    n_y, n_x = len(y_ss), len(x_ss)
    n = n_y + n_x

    def Hv(v):
        return H(v[:n_y], v[n_y:2 * n_y], v[2 * n_y:2 * n_y + n_x], v[2 * n_y + n_x:], p)

    vbar = jnp.concatenate([y_ss, y_ss, x_ss, x_ss])
    Jv = np.asarray(jax.jacfwd(Hv)(vbar))
    Hvv = np.asarray(jax.hessian(Hv)(vbar))
    H_yp, H_y = Jv[:, :n_y], Jv[:, n_y:2 * n_y]
    H_xp = Jv[:, 2 * n_y:2 * n_y + n_x]
    g_x, h_x, Bm = np.asarray(g_x), np.asarray(h_x), np.asarray(Bm)
    Vx = np.vstack([g_x @ h_x, g_x, h_x, np.eye(n_x)])
    E = -np.einsum("iab,aj,bk->ijk", Hvv, Vx, Vx)
    A = np.hstack([H_y, H_yp @ g_x + H_xp])
    C = np.hstack([H_yp, np.zeros((n, n_x))])
    hh = np.kron(h_x, h_x)  # acts on X reshaped (n, n_x^2), row-major (j, k)
    K = np.kron(A, np.eye(n_x * n_x)) + np.kron(C, hh.T)
    X = np.linalg.solve(K, E.reshape(-1)).reshape(n, n_x, n_x)
    Ve = np.vstack([g_x @ Bm, np.zeros((n_y, Bm.shape[1])), Bm, np.zeros((n_x, Bm.shape[1]))])
    rhs = -(np.einsum("iab,ak,bk->i", Hvv, Ve, Ve)
            + H_yp @ np.einsum("ijk,jl,kl->i", X[:n_y], Bm, Bm))
    ss = np.linalg.solve(np.hstack([H_yp + H_y, H_yp @ g_x + H_xp]), rhs)
    return X[:n_y], X[n_y:], ss[:n_y], ss[n_y:]


def growth_equations(v, p):
    """A second model, in Dynare timing: CRRA utility (gamma), elastic labour (chi), TFP and
    investment-specific shocks."""
    a, b, d, g, chi = p["alpha"], p["beta"], p["delta"], p["gamma"], p["chi"]
    k, c, l, z, q = v("k"), v("c"), v("l"), v("z"), v("q")
    y = jnp.exp(z) * v("k", -1) ** a * l ** (1 - a)
    k1 = v("k")
    y1 = jnp.exp(v("z", 1)) * k1 ** a * v("l", 1) ** (1 - a)
    return [c ** -g * jnp.exp(-q) - b * v("c", 1) ** -g * (a * y1 / k1
                                                           + (1 - d) * jnp.exp(-v("q", 1))),
            chi * l - c ** -g * (1 - a) * y / l,
            c + jnp.exp(-q) * (k - (1 - d) * v("k", -1)) - y,
            z - p["rho"] * v("z", -1) - p["s_z"] * v("e_z"),
            q - p["rho_q"] * v("q", -1) - p["s_q"] * v("e_q")]


GROWTH = nss.DynareModel(growth_equations, ("k", "c", "l", "z", "q"), ("e_z", "e_q"),
                         ("alpha", "beta", "delta", "gamma", "chi", "rho", "s_z", "rho_q",
                          "s_q"),
                         steady_state_guess={"k": 10.0, "c": 1.0, "l": 0.5})
GROWTH_P = {"alpha": 0.33, "beta": 0.97, "delta": 0.1, "gamma": 2.0, "chi": 3.0, "rho": 0.9,
            "s_z": 0.02, "rho_q": 0.7, "s_q": 0.03}


def _check_against_dense(H, y_ss, x_ss, p, sol):
    g_xx, h_xx, g_ss, h_ss = dense_second_order(H, y_ss, x_ss, p, sol.B, sol.g_x, sol.h_x)
    for got, want in ((sol.g_xx, g_xx), (sol.h_xx, h_xx), (sol.g_ss, g_ss), (sol.h_ss, h_ss)):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-8,
                                   atol=1e-9 * max(1.0, np.max(np.abs(want))))


@pytest.mark.parametrize("draws", [1, pytest.param(4, marks=pytest.mark.slow)])
def test_random_draws_of_two_models_agree_with_a_dense_solve(draws):
    rng = np.random.default_rng(3 + draws)
    for _ in range(draws):
        p = dict(P0, alpha=rng.uniform(0.25, 0.6), beta=rng.uniform(0.9, 0.99),
                 rho=rng.uniform(0.0, 0.95), delta=rng.uniform(0.02, 0.2), sigma=0.01)
        sol = _solve(p)
        assert bool(sol.ok)
        pj = rbc._params(p)
        y_ss, x_ss, _ = rbc.steady_state(pj)
        _check_against_dense(rbc.equilibrium, y_ss, x_ss, pj, sol)
    solve = jax.jit(lambda p: GROWTH.solve(p, order=2, shock_cov=jnp.diag(jnp.array([1.0, 2.0]))))
    for _ in range(draws):
        p = dict(GROWTH_P, alpha=rng.uniform(0.25, 0.4), gamma=rng.uniform(1.0, 4.0),
                 rho=rng.uniform(0.5, 0.95))
        sol = solve(p)
        assert bool(sol.ok) and float(sol.steady_state_residual) < 1e-10
        H, y_ss, x_ss, pj, *_ = GROWTH.sgu_arguments(p)
        assert np.max(np.abs(np.asarray(sol.g_xx))) > 1e-3
        _check_against_dense(H, y_ss, x_ss, pj, sol)


# -- closed form --------------------------------------------------------------------------
def brock_mirman(y_next, y, x_next, x, p):
    """Log utility, full depreciation, levels: y = (c,), x = (k, z)."""
    a, b = p["alpha"], p["beta"]
    return jnp.stack([
        1 / y[0] - b * a * jnp.exp(x_next[1]) * x_next[0] ** (a - 1) / y_next[0],
        y[0] + x_next[0] - jnp.exp(x[1]) * x[0] ** a,
        x_next[1] - p["rho"] * x[1],
    ])


def test_brock_mirman_closed_form_second_derivatives():
    """k' = a b e^z k^a and c = (1 - a b) e^z k^a exactly, whatever sigma: the second
    derivatives are those of f(k, z) = e^z k^a, and g_ss = h_ss = 0."""
    a, b, rho, sigma = 0.36, 0.96, 0.8, 0.05
    p = {"alpha": jnp.asarray(a), "beta": jnp.asarray(b), "rho": jnp.asarray(rho)}
    k = (a * b) ** (1 / (1 - a))
    c = (1 - a * b) * k ** a
    sol = jax.jit(lambda p: nss.solve_second_order(
        brock_mirman, jnp.array([c]), jnp.array([k, 0.0]), p, jnp.array([[0.0], [1.0]]),
        Gamma=jnp.array([sigma])))(p)
    assert bool(sol.ok)
    f_xx = k ** a * np.array([[a * (a - 1) / k ** 2, a / k], [a / k, 1.0]])
    np.testing.assert_allclose(np.asarray(sol.g_xx[0]), (1 - a * b) * f_xx, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(sol.h_xx[0]), a * b * f_xx, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(sol.h_xx[1]), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(sol.g_ss), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(sol.h_ss), 0.0, atol=1e-12)


# -- the Sylvester solver -----------------------------------------------------------------
def test_kron_sylvester_matches_dense_solve_with_derivatives():
    rng = np.random.default_rng(0)
    n, m = 4, 3
    A = rng.standard_normal((n, n)) + 3 * np.eye(n)
    C = 0.5 * rng.standard_normal((n, n))
    P = stable_matrix(rng, m, 0.9)
    E = rng.standard_normal((n, m, m))
    X = np.asarray(nss.dsge.solve_kron_sylvester(A, C, P, E))
    K = np.kron(A, np.eye(m * m)) + np.kron(C, np.kron(P, P).T)
    np.testing.assert_allclose(X.reshape(-1), np.linalg.solve(K, E.reshape(-1)), rtol=1e-10,
                               atol=1e-12)

    def f(t):
        return nss.dsge.solve_kron_sylvester(A + t * C, C, P + t * P.T, E).ravel()

    t0 = jnp.asarray(0.1)
    fwd = jax.jacfwd(f)(t0)
    rev = jax.jacrev(f)(t0)
    fd = central_difference(f, t0)
    np.testing.assert_allclose(np.asarray(rev), np.asarray(fwd), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(fwd), np.asarray(fd), rtol=1e-6, atol=1e-8)


# -- failure ------------------------------------------------------------------------------
def test_explosive_and_indeterminate_parameters_fail_softly():
    y = jnp.asarray(REF["observables"][:5])
    noise = jnp.asarray(REF["noise"][:5])

    def model(rho, beta):
        d, ok = rbc_second_order.joint_distribution_from(noise, R=REF["R"], rho=rho, beta=beta)
        nss.dsge.log_prob_guard("solution", ok)
        numpyro.factor("y", d.log_prob(y))

    def logp(theta):
        return log_density(model, (theta[0], theta[1]), {}, {})[0]

    value_and_grad = jax.jit(jax.value_and_grad(logp))
    for theta in ([1.3, 0.95], [0.2, 1.015]):  # explosive shock; indeterminate (both stable)
        sol = _solve(dict(P0, rho=theta[0], beta=theta[1]))
        assert not bool(sol.ok)
        for k in ("g_xx", "h_xx", "g_ss", "h_ss", "A_0", "C_2"):
            assert np.all(np.isfinite(np.asarray(getattr(sol, k))))
        value, grad = value_and_grad(jnp.asarray(theta))
        assert float(value) == -np.inf
        assert np.all(np.isfinite(np.asarray(grad)))
    value, grad = value_and_grad(jnp.asarray([0.2, 0.95]))
    np.testing.assert_allclose(float(value), -690.81094364573, rtol=1e-10)
