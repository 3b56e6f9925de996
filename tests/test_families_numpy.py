"""Each model family against a plain NumPy for-loop (``_reference.py``), on seeded random models:
states ``u``, observations ``z`` and the joint log-likelihood (DirectIteration), and the
conditional likelihood (ConditionalLikelihood). Covers ``B=None``, ``C=None`` and
``tspan=(t0, T)`` with ``t0 != 0``; the generic ``StateSpaceProblem`` reproduces the linear and
the pruned-quadratic problems through callbacks.
"""

import functools
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal

import numpyro_statespace as nss
import _reference
from _reference import (input_shapes, linear_observation, linear_transition, np_linear,
                        np_conditional, np_logpdf, np_quad, np_quadratic, stable_matrix)

assert_close = functools.partial(_reference.assert_close, rtol=1e-10, atol_rel=1e-12, floor=1.0)


def assert_path(sol, u, z, y=None, R=None):
    """``sol.u`` and ``sol.z`` (``None``: no observation equation) equal the NumPy path, and
    ``sol.logpdf`` its log-density of ``y`` (0 without data)."""
    assert_close(sol.u, u)
    if z is None:
        assert sol.z is None
    else:
        assert_close(sol.z, z)
    if y is None:
        assert float(sol.logpdf) == 0.0
    else:
        assert_close(sol.logpdf, np_logpdf(y, z, R))


# jit the whole solve (problems are pytrees, the algorithm marker is hashable): generic problems
# too (nss.solve runs those as they are; see test_eager_solve_is_one_compiled_program).
_solve = jax.jit(nss.solve, static_argnames=("alg", "save_everystep"))


def solve(prob, alg=nss.DirectIteration()):
    return _solve(prob, alg)


# --------------------------------------------------------------------------------------------
# random models
# --------------------------------------------------------------------------------------------

spd = functools.partial(_reference.spd, scale=0.2, jitter=0.2)


def random_linear(seed, N=4, K=2, M=3, T=20):
    rng = np.random.default_rng(seed)
    return dict(A=stable_matrix(rng, N, 0.8), B=rng.standard_normal((N, K)),
                C=rng.standard_normal((M, N)), R=spd(rng, M), u0=rng.standard_normal(N),
                noise=rng.standard_normal((T, K)), y=rng.standard_normal((T, M)))


def random_quadratic(seed, N=3, K=2, M=2, T=15):
    rng = np.random.default_rng(seed)
    return dict(A_0=0.1 * rng.standard_normal(N), A_1=stable_matrix(rng, N, 0.7),
                A_2=0.05 * rng.standard_normal((N, N, N)), B=0.3 * rng.standard_normal((N, K)),
                C_0=0.1 * rng.standard_normal(M), C_1=rng.standard_normal((M, N)),
                C_2=0.1 * rng.standard_normal((M, N, N)), R=spd(rng, M),
                u0=0.5 * rng.standard_normal(N), noise=rng.standard_normal((T, K)),
                y=rng.standard_normal((T, M)))


# --------------------------------------------------------------------------------------------
# Linear
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tspan", [(0, 20), (3, 23), 20])
@pytest.mark.parametrize("R_kind", ["full", "diag_vector"])
def test_linear_joint(tspan, R_kind):
    m = random_linear(0)
    R = m["R"] if R_kind == "full" else np.diag(m["R"]).copy()
    R_full = m["R"] if R_kind == "full" else np.diag(R)
    prob = nss.LinearStateSpaceProblem(m["A"], m["B"], m["u0"], tspan, C=m["C"],
                                       observables_noise=R, observables=m["y"], noise=m["noise"])
    sol = solve(prob)
    u, z = np_linear(m["A"], m["B"], m["C"], m["u0"], m["noise"], 20)
    assert_path(sol, u, z, m["y"], R_full)
    t0 = 0 if isinstance(tspan, int) else tspan[0]
    np.testing.assert_array_equal(np.asarray(sol.t), np.arange(t0, t0 + 21))
    np.testing.assert_array_equal(np.asarray(sol.W), m["noise"])


def test_linear_joint_missing_observables_and_the_complete_data_path():
    """NaN observables are skipped entry by entry (NumPy: a sum over the observed entries). The
    problem records when it is built whether its data are complete, so the likelihood factorises
    ``R`` once for NaN-free data even where ``solve`` is traced with the problem built inside
    (DifferenceEquations.jl's usage: a problem from parameters inside a differentiated
    function), and per step with a NaN."""
    m = random_linear(3)
    y = m["y"].copy()
    y[2, 0] = np.nan
    y[5] = np.nan  # a step with nothing observed

    def problem(A, y):
        return nss.LinearStateSpaceProblem(A, m["B"], m["u0"], 20, C=m["C"],
                                           observables_noise=m["R"], observables=y,
                                           noise=m["noise"])

    _, z = np_linear(m["A"], m["B"], m["C"], m["u0"], m["noise"], 20)
    ref = sum(multivariate_normal(mean=z[t + 1][o], cov=m["R"][np.ix_(o, o)]).logpdf(y[t][o])
              for t, o in enumerate(~np.isnan(y)) if o.any())
    assert_close(solve(problem(m["A"], y)).logpdf, ref)
    assert_close(solve(problem(m["A"], m["y"])).logpdf, np_logpdf(m["y"], z, m["R"]))
    for data, per_step in ((m["y"], False), (y, True)):
        jaxpr = jax.make_jaxpr(lambda A: nss.solve(problem(A, data), nss.DirectIteration())
                               .logpdf)(jnp.asarray(m["A"]))
        shapes = input_shapes(jaxpr.jaxpr, "cholesky")
        assert shapes and ((20, 3, 3) in shapes) == per_step, shapes


def test_eager_solve_is_one_compiled_program(monkeypatch):
    """Called eagerly, ``solve`` of a linear or quadratic problem runs one compiled program
    per problem structure and algorithm, reused for new values (the NumPy loop checks the
    values). A generic problem runs as it is: its callbacks would be part of the cache key."""
    solve_module = importlib.import_module("numpyro_statespace.solve")  # (the package's
    # ``solve`` is the function)
    traced = []
    direct = solve_module._solve_direct
    monkeypatch.setattr(solve_module, "_solve_direct",
                        lambda prob, key: traced.append(type(prob)) or direct(prob, key))
    m = random_linear(4, T=17)
    counts = []
    for f in (1.0, 0.9):
        prob = nss.LinearStateSpaceProblem(f * m["A"], m["B"], m["u0"], 17, C=m["C"],
                                           observables_noise=m["R"], observables=m["y"],
                                           noise=m["noise"])
        _, z = np_linear(f * m["A"], m["B"], m["C"], m["u0"], m["noise"], 17)
        assert_close(nss.solve(prob).logpdf, np_logpdf(m["y"], z, m["R"]))
        counts.append(len(traced))
    assert counts == [1, 1]  # traced (and compiled) once, run twice
    generic = nss.StateSpaceProblem(lambda x, w, p, t: p @ x, None, m["u0"], 17,
                                    jnp.asarray(m["A"]), n_shocks=0)
    for _ in range(2):
        u, _ = np_linear(m["A"], None, None, m["u0"], None, 17)
        assert_close(nss.solve(generic).u, u)
    assert traced[1:] == [nss.StateSpaceProblem] * 2  # run as it is, each time


@pytest.mark.parametrize("seed, shocks, observed, data, tspan", [
    (1, False, True, True, (5, 25)), (2, True, False, False, (2, 22)),
    (3, False, False, False, 20), (4, True, True, False, 20)],
    ids=["B_none", "C_none", "B_none_C_none", "no_observables"])
def test_linear_without_shocks_observation_or_data(seed, shocks, observed, data, tspan):
    """``B=None`` (no noise, ``W`` None), ``C=None`` (``z`` None), no data (``logpdf`` 0)."""
    m = random_linear(seed)
    B, noise = (m["B"], m["noise"]) if shocks else (None, None)
    C = m["C"] if observed else None
    obs = {"observables_noise": m["R"], "observables": m["y"]} if data else {}
    sol = solve(nss.LinearStateSpaceProblem(m["A"], B, m["u0"], tspan, C=C, noise=noise, **obs))
    assert (sol.W is None) == (not shocks)
    u, z = np_linear(m["A"], B, C, m["u0"], noise, 20)
    assert_path(sol, u, z, m["y"] if data else None, m["R"])


def test_linear_one_state_one_shock_long():
    # scalar model, longer horizon, K > N
    m = random_linear(5, N=1, K=3, M=1, T=200)
    prob = nss.LinearStateSpaceProblem(m["A"], m["B"], m["u0"], 200, C=m["C"],
                                       observables_noise=m["R"], observables=m["y"],
                                       noise=m["noise"])
    sol = solve(prob)
    u, z = np_linear(m["A"], m["B"], m["C"], m["u0"], m["noise"], 200)
    assert_path(sol, u, z, m["y"], m["R"])


# --------------------------------------------------------------------------------------------
# Quadratic and pruned quadratic
# --------------------------------------------------------------------------------------------

QUAD_CLASSES = [(nss.QuadraticStateSpaceProblem, False),
                (nss.PrunedQuadraticStateSpaceProblem, True)]


@pytest.mark.parametrize("cls, pruned", QUAD_CLASSES)
@pytest.mark.parametrize("tspan", [(0, 15), (4, 19)])
def test_quadratic_joint(cls, pruned, tspan):
    m = random_quadratic(10)
    prob = cls(m["A_0"], m["A_1"], m["A_2"], m["B"], m["u0"], tspan, C_0=m["C_0"],
               C_1=m["C_1"], C_2=m["C_2"], observables_noise=m["R"], observables=m["y"],
               noise=m["noise"])
    assert prob.pruned is pruned
    sol = solve(prob)
    u, z = np_quadratic(m["A_0"], m["A_1"], m["A_2"], m["B"], m["C_0"], m["C_1"], m["C_2"],
                        m["u0"], m["noise"], 15, pruned)
    assert_path(sol, u, z, m["y"], m["R"])
    np.testing.assert_array_equal(np.asarray(sol.t), np.arange(tspan[0], tspan[1] + 1))


def test_pruned_differs_from_unpruned():
    # guards against both problems silently computing the same thing
    m = random_quadratic(11)
    args = (m["A_0"], m["A_1"], m["A_2"], m["B"], m["u0"], 15)
    kw = dict(C_1=m["C_1"], C_2=m["C_2"], noise=m["noise"])
    a = solve(nss.QuadraticStateSpaceProblem(*args, **kw))
    b = solve(nss.PrunedQuadraticStateSpaceProblem(*args, **kw))
    assert not np.allclose(np.asarray(a.u[2:]), np.asarray(b.u[2:]))


@pytest.mark.parametrize("cls, pruned", QUAD_CLASSES)
@pytest.mark.parametrize("without", ["B", "C"])
def test_quadratic_without_B_or_C(cls, pruned, without):
    m = random_quadratic(12 if without == "B" else 13)
    if without == "B":  # no shocks, observed
        B, noise, tspan = None, None, (1, 16)
        kw = {"C_0": m["C_0"], "C_1": m["C_1"], "C_2": m["C_2"], "observables_noise": m["R"],
              "observables": m["y"]}
    else:  # no observation equation, no data
        B, noise, tspan, kw = m["B"], m["noise"], 15, {}
    sol = solve(cls(m["A_0"], m["A_1"], m["A_2"], B, m["u0"], tspan, noise=noise, **kw))
    u, z = np_quadratic(m["A_0"], m["A_1"], m["A_2"], B, kw.get("C_0"), kw.get("C_1"),
                        kw.get("C_2"), m["u0"], noise, 15, pruned)
    assert (sol.W is None) == (without == "B")
    assert_path(sol, u, z, kw.get("observables"), m["R"])


@pytest.mark.parametrize("cls, pruned", QUAD_CLASSES)
def test_quadratic_only_C_1(cls, pruned):
    # C_0 and C_2 default to zeros
    m = random_quadratic(14)
    prob = cls(m["A_0"], m["A_1"], m["A_2"], m["B"], m["u0"], 15, C_1=m["C_1"],
               observables_noise=m["R"], observables=m["y"], noise=m["noise"])
    sol = solve(prob)
    M, N = m["C_1"].shape
    u, z = np_quadratic(m["A_0"], m["A_1"], m["A_2"], m["B"], np.zeros(M), m["C_1"],
                        np.zeros((M, N, N)), m["u0"], m["noise"], 15, pruned)
    assert_path(sol, u, z, m["y"], m["R"])


def test_quadratic_with_zero_A2_equals_linear():
    m = random_linear(15, N=3, K=2, M=2, T=15)
    N = 3
    lin = solve(nss.LinearStateSpaceProblem(m["A"], m["B"], m["u0"], 15, C=m["C"],
                                            observables_noise=m["R"], observables=m["y"],
                                            noise=m["noise"]))
    for cls, _ in QUAD_CLASSES:
        q = solve(cls(np.zeros(N), m["A"], np.zeros((N, N, N)), m["B"], m["u0"], 15,
                      C_1=m["C"], observables_noise=m["R"], observables=m["y"],
                      noise=m["noise"]))
        assert_close(q.u, lin.u)
        assert_close(q.z, lin.z)
        assert_close(q.logpdf, lin.logpdf)


# --------------------------------------------------------------------------------------------
# Generic StateSpaceProblem
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tspan", [(0, 20), (7, 27)])
def test_generic_reproduces_linear(tspan):
    m = random_linear(20)
    p = {k: jnp.asarray(m[k]) for k in ("A", "B", "C")}
    gen = nss.StateSpaceProblem(linear_transition, linear_observation, m["u0"], tspan, p,
                                n_shocks=2, observables_noise=m["R"], observables=m["y"],
                                noise=m["noise"])
    assert gen.n_obs == 3
    lin = nss.LinearStateSpaceProblem(m["A"], m["B"], m["u0"], tspan, C=m["C"],
                                      observables_noise=m["R"], observables=m["y"],
                                      noise=m["noise"])
    sg, sl = solve(gen), solve(lin)
    u, z = np_linear(m["A"], m["B"], m["C"], m["u0"], m["noise"], 20)
    assert_close(sg.u, u)
    assert_close(sg.z, z)
    assert_close(sg.logpdf, np_logpdf(m["y"], z, m["R"]))
    assert_close(sg.u, sl.u)
    assert_close(sg.z, sl.z)
    assert_close(sg.logpdf, sl.logpdf)
    np.testing.assert_array_equal(np.asarray(sg.t), np.asarray(sl.t))


def _pruned_transition(x, w, p, t):
    N = p["A_1"].shape[0]
    u, uf = x[:N], x[N:]
    bw = p["B"] @ w
    u_next = p["A_0"] + p["A_1"] @ u + jnp.einsum("ijk,j,k->i", p["A_2"], uf, uf) + bw
    uf_next = p["A_1"] @ uf + bw
    return jnp.concatenate([u_next, uf_next])


def _pruned_observation(x, p, t):
    N = p["A_1"].shape[0]
    u, uf = x[:N], x[N:]
    return p["C_0"] + p["C_1"] @ u + jnp.einsum("ijk,j,k->i", p["C_2"], uf, uf)


@pytest.mark.parametrize("tspan", [(0, 15), (2, 17)])
def test_generic_reproduces_pruned_quadratic(tspan):
    m = random_quadratic(21)
    p = {k: jnp.asarray(m[k]) for k in ("A_0", "A_1", "A_2", "B", "C_0", "C_1", "C_2")}
    x0 = np.concatenate([m["u0"], m["u0"]])
    gen = nss.StateSpaceProblem(_pruned_transition, _pruned_observation, x0, tspan, p,
                                n_shocks=2, observables_noise=m["R"], observables=m["y"],
                                noise=m["noise"])
    pruned = nss.PrunedQuadraticStateSpaceProblem(
        m["A_0"], m["A_1"], m["A_2"], m["B"], m["u0"], tspan, C_0=m["C_0"], C_1=m["C_1"],
        C_2=m["C_2"], observables_noise=m["R"], observables=m["y"], noise=m["noise"])
    sg, sp = solve(gen), solve(pruned)
    N = 3
    u, z = np_quadratic(m["A_0"], m["A_1"], m["A_2"], m["B"], m["C_0"], m["C_1"], m["C_2"],
                        m["u0"], m["noise"], 15, True)
    assert_close(sg.u[:, :N], u)
    assert_close(sg.z, z)
    assert_close(sg.logpdf, np_logpdf(m["y"], z, m["R"]))
    assert_close(sg.u[:, :N], sp.u)
    assert_close(sg.z, sp.z)
    assert_close(sg.logpdf, sp.logpdf)


def _tv_transition(x, w, p, t):
    return p["A"] @ x + p["B"] @ w + p["c"] * jnp.sin(0.3 * t)


def _tv_observation(x, p, t):
    return p["C"] @ x + 0.05 * t


@pytest.mark.parametrize("t0", [0, 6])
def test_generic_time_dependent(t0):
    """The callbacks receive t = t0..T-1 (transition) and t0..T (observation)."""
    m = random_linear(22)
    rng = np.random.default_rng(22)
    p = {"A": jnp.asarray(m["A"]), "B": jnp.asarray(m["B"]), "C": jnp.asarray(m["C"]),
         "c": jnp.asarray(rng.standard_normal(4))}
    T = 20
    prob = nss.StateSpaceProblem(_tv_transition, _tv_observation, m["u0"], (t0, t0 + T), p,
                                 n_shocks=2, observables_noise=m["R"], observables=m["y"],
                                 noise=m["noise"])
    sol = solve(prob)
    pn = {k: np.asarray(v) for k, v in p.items()}
    u = np.zeros((T + 1, 4))
    u[0] = m["u0"]
    for n in range(T):
        t = t0 + n
        u[n + 1] = pn["A"] @ u[n] + pn["B"] @ m["noise"][n] + pn["c"] * np.sin(0.3 * t)
    z = np.array([pn["C"] @ u[n] + 0.05 * (t0 + n) for n in range(T + 1)])
    assert_path(sol, u, z, m["y"], m["R"])
    np.testing.assert_array_equal(np.asarray(sol.t), np.arange(t0, t0 + T + 1))


def test_generic_no_shocks_no_observation():
    m = random_linear(23)
    prob = nss.StateSpaceProblem(lambda x, w, p, t: p @ x, None, m["u0"], (3, 23),
                                 jnp.asarray(m["A"]), n_shocks=0)
    sol = solve(prob)
    u, _ = np_linear(m["A"], None, None, m["u0"], None, 20)
    assert sol.W is None
    assert_path(sol, u, None)


def test_generic_nonlinear():
    """A genuinely nonlinear model (tanh transition, exp observation)."""
    rng = np.random.default_rng(24)
    N, K, M, T, t0 = 3, 2, 2, 25, 2
    A = rng.standard_normal((N, N))
    B = 0.5 * rng.standard_normal((N, K))
    C = 0.5 * rng.standard_normal((M, N))
    R = spd(rng, M)
    noise = rng.standard_normal((T, K))
    y = rng.standard_normal((T, M))
    u0 = rng.standard_normal(N)
    prob = nss.StateSpaceProblem(
        lambda x, w, p, t: jnp.tanh(p[0] @ x) + p[1] @ w,
        lambda x, p, t: jnp.exp(p[2] @ x),
        u0, (t0, t0 + T), (jnp.asarray(A), jnp.asarray(B), jnp.asarray(C)), n_shocks=K,
        observables_noise=R, observables=y, noise=noise)
    sol = solve(prob)
    u = np.zeros((T + 1, N))
    u[0] = u0
    for t in range(T):
        u[t + 1] = np.tanh(A @ u[t]) + B @ noise[t]
    z = np.exp(u @ C.T)
    assert_path(sol, u, z, y, R)


# --------------------------------------------------------------------------------------------
# ConditionalLikelihood
# --------------------------------------------------------------------------------------------

def _check_conditional(sol, u0, y, z_pred, ll, z0=None):
    assert_close(sol.logpdf, ll)
    assert_close(sol.u, np.vstack([u0[None], y]))
    if z0 is None:
        assert sol.z is None
    else:
        assert_close(sol.z, np.vstack([z0[None], z_pred]))


@pytest.mark.parametrize("tspan", [(0, 20), (5, 25)])
def test_conditional_linear_C_none(tspan):
    m = random_linear(30, N=3, K=2, T=20)
    rng = np.random.default_rng(30)
    y, R = rng.standard_normal((20, 3)), spd(rng, 3)
    prob = nss.LinearStateSpaceProblem(m["A"], m["B"], m["u0"], tspan, observables_noise=R,
                                       observables=y, noise=m["noise"])
    sol = solve(prob, nss.ConditionalLikelihood())
    z, ll = np_conditional(lambda x, w, t: m["A"] @ x + m["B"] @ w, m["u0"], y, m["noise"], R)
    _check_conditional(sol, m["u0"], y, z, ll)
    np.testing.assert_array_equal(np.asarray(sol.W), m["noise"])
    np.testing.assert_array_equal(np.asarray(sol.t), np.arange(tspan[0], tspan[1] + 1))


def test_conditional_linear_B_none():
    m = random_linear(31, N=3, T=20)
    rng = np.random.default_rng(31)
    y, R = rng.standard_normal((20, 3)), np.diag(rng.uniform(0.1, 0.5, 3))
    prob = nss.LinearStateSpaceProblem(m["A"], None, m["u0"], 20, observables_noise=np.diag(R),
                                       observables=y)
    sol = solve(prob, nss.ConditionalLikelihood())
    z, ll = np_conditional(lambda x, w, t: m["A"] @ x, m["u0"], y, None, R)
    _check_conditional(sol, m["u0"], y, z, ll)
    assert sol.W is None


def test_conditional_linear_square_C():
    # With an observation equation the prediction is C (A y_{t-1} + B w_t) (M = N).
    m = random_linear(32, N=3, K=1, M=3, T=20)
    y = np.random.default_rng(32).standard_normal((20, 3))
    prob = nss.LinearStateSpaceProblem(m["A"], m["B"], m["u0"], 20, C=m["C"],
                                       observables_noise=m["R"], observables=y, noise=m["noise"])
    sol = solve(prob, nss.ConditionalLikelihood())
    z, ll = np_conditional(lambda x, w, t: m["C"] @ (m["A"] @ x + m["B"] @ w), m["u0"], y,
                           m["noise"], m["R"])
    _check_conditional(sol, m["u0"], y, z, ll, z0=m["C"] @ m["u0"])


def test_conditional_quadratic_C_none():
    m = random_quadratic(33, N=3, K=2, T=15)
    rng = np.random.default_rng(33)
    y, R = 0.5 * rng.standard_normal((15, 3)), spd(rng, 3)
    prob = nss.QuadraticStateSpaceProblem(m["A_0"], m["A_1"], m["A_2"], m["B"], m["u0"], (2, 17),
                                          observables_noise=R, observables=y, noise=m["noise"])
    sol = solve(prob, nss.ConditionalLikelihood())
    z, ll = np_conditional(
        lambda x, w, t: m["A_0"] + m["A_1"] @ x + np_quad(m["A_2"], x) + m["B"] @ w,
        m["u0"], y, m["noise"], R)
    _check_conditional(sol, m["u0"], y, z, ll)


def test_conditional_quadratic_square_C_B_none():
    m = random_quadratic(34, N=3, M=3, T=15)
    y = 0.5 * np.random.default_rng(34).standard_normal((15, 3))

    def g(x):
        return m["C_0"] + m["C_1"] @ x + np_quad(m["C_2"], x)

    prob = nss.QuadraticStateSpaceProblem(m["A_0"], m["A_1"], m["A_2"], None, m["u0"], 15,
                                          C_0=m["C_0"], C_1=m["C_1"], C_2=m["C_2"],
                                          observables_noise=m["R"], observables=y)
    sol = solve(prob, nss.ConditionalLikelihood())
    z, ll = np_conditional(lambda x, w, t: g(m["A_0"] + m["A_1"] @ x + np_quad(m["A_2"], x)),
                           m["u0"], y, None, m["R"])
    _check_conditional(sol, m["u0"], y, z, ll, z0=g(m["u0"]))


def test_conditional_pruned_observation_uses_the_first_order_state():
    """Pruned, clamped at the data: ``uf_{t-1} = y_{t-1}``, so the observation's quadratic term
    takes ``uf_t = A_1 y_{t-1} + B w_t`` (it took the second-order state, the unpruned value)."""
    m = random_quadratic(38, N=3, M=3, K=2, T=15)
    y = 0.5 * np.random.default_rng(38).standard_normal((15, 3))

    def z_next(x, w, t):
        u = m["A_0"] + m["A_1"] @ x + np_quad(m["A_2"], x) + m["B"] @ w
        return m["C_0"] + m["C_1"] @ u + np_quad(m["C_2"], m["A_1"] @ x + m["B"] @ w)

    prob = nss.PrunedQuadraticStateSpaceProblem(
        m["A_0"], m["A_1"], m["A_2"], m["B"], m["u0"], 15, C_0=m["C_0"], C_1=m["C_1"],
        C_2=m["C_2"], observables_noise=m["R"], observables=y, noise=m["noise"])
    sol = solve(prob, nss.ConditionalLikelihood())
    z, ll = np_conditional(z_next, m["u0"], y, m["noise"], m["R"])
    _check_conditional(sol, m["u0"], y, z, ll,
                       z0=m["C_0"] + m["C_1"] @ m["u0"] + np_quad(m["C_2"], m["u0"]))


@pytest.mark.parametrize("t0", [0, 4])
def test_conditional_generic(t0):
    rng = np.random.default_rng(35)
    N, K, T = 3, 2, 18
    A = stable_matrix(rng, N, 0.8)
    B = rng.standard_normal((N, K))
    c = rng.standard_normal(N)
    R = spd(rng, N)
    u0 = rng.standard_normal(N)
    y = rng.standard_normal((T, N))
    noise = rng.standard_normal((T, K))
    p = (jnp.asarray(A), jnp.asarray(B), jnp.asarray(c))
    prob = nss.StateSpaceProblem(
        lambda x, w, p, t: jnp.tanh(p[0] @ x) + p[1] @ w + p[2] * jnp.cos(0.5 * t), None,
        u0, (t0, t0 + T), p, n_shocks=K, observables_noise=R, observables=y, noise=noise)
    sol = solve(prob, nss.ConditionalLikelihood())
    z, ll = np_conditional(
        lambda x, w, t: np.tanh(A @ x) + B @ w + c * np.cos(0.5 * (t0 + t)), u0, y, noise, R)
    _check_conditional(sol, u0, y, z, ll)


def test_conditional_generic_with_observation():
    # observation(x, p, t) with M = N, time-dependent: z_t = g(f(y_{t-1}, w_t, t-1), t)
    rng = np.random.default_rng(36)
    N, K, T, t0 = 2, 1, 12, 3
    A = stable_matrix(rng, N, 0.8)
    B = rng.standard_normal((N, K))
    C = rng.standard_normal((N, N))
    R = spd(rng, N)
    u0 = rng.standard_normal(N)
    y = rng.standard_normal((T, N))
    noise = rng.standard_normal((T, K))
    p = (jnp.asarray(A), jnp.asarray(B), jnp.asarray(C))
    prob = nss.StateSpaceProblem(
        lambda x, w, p, t: p[0] @ x + p[1] @ w, lambda x, p, t: p[2] @ x + 0.1 * t,
        u0, (t0, t0 + T), p, n_shocks=K, observables_noise=R, observables=y, noise=noise)
    sol = solve(prob, nss.ConditionalLikelihood())
    z, ll = np_conditional(lambda x, w, t: C @ (A @ x + B @ w) + 0.1 * (t0 + t + 1),
                           u0, y, noise, R)
    _check_conditional(sol, u0, y, z, ll, z0=C @ u0 + 0.1 * t0)


def test_conditional_generic_matches_linear():
    m = random_linear(37, N=3, K=2, T=20)
    rng = np.random.default_rng(37)
    y = rng.standard_normal((20, 3))
    R = spd(rng, 3)
    kw = dict(observables_noise=R, observables=y, noise=m["noise"])
    lin = nss.LinearStateSpaceProblem(m["A"], m["B"], m["u0"], 20, **kw)
    gen = nss.StateSpaceProblem(linear_transition, None, m["u0"], 20,
                                {"A": jnp.asarray(m["A"]), "B": jnp.asarray(m["B"])},
                                n_shocks=2, **kw)
    a = solve(lin, nss.ConditionalLikelihood())
    b = solve(gen, nss.ConditionalLikelihood())
    assert_close(a.logpdf, b.logpdf)
    assert_close(a.u, b.u)


@pytest.mark.parametrize("family", ["linear", "quadratic", "generic"])
def test_overflowing_path_is_nan_from_the_overflow_on(family):
    """An explosive simulation: the states up to the overflow bound sqrt(max float) (1e154)
    equal a NumPy loop's, from the first state beyond it on u and z are NaN (the kernels
    continue from zeros there to keep gradients finite; that restart must not be reported as
    a path), and the log-likelihood is -inf."""
    T, a = 400, 3.0
    ref = a ** np.arange(T + 1.0)  # u_t = 3 u_{t-1}, u_0 = 1
    y = np.zeros((T, 1))
    if family == "linear":
        prob = nss.LinearStateSpaceProblem(np.array([[a]]), np.zeros((1, 1)), np.ones(1), T,
                                           C=np.eye(1), observables_noise=np.eye(1),
                                           observables=y, noise=np.zeros((T, 1)))
    elif family == "quadratic":  # A_2 = 0: the same recursion through the quadratic kernel
        prob = nss.QuadraticStateSpaceProblem(np.zeros(1), np.array([[a]]), np.zeros((1, 1, 1)),
                                              np.zeros((1, 1)), np.ones(1), T, C_1=np.eye(1),
                                              observables_noise=np.eye(1), observables=y,
                                              noise=np.zeros((T, 1)))
    else:
        prob = nss.StateSpaceProblem(lambda x, w, p, t: p * x, lambda x, p, t: x, np.ones(1), T,
                                     np.float64(a), n_shocks=1, observables_noise=np.eye(1),
                                     observables=y, noise=np.zeros((T, 1)))
    sol = nss.solve(prob, nss.DirectIteration())
    u, z = np.asarray(sol.u[:, 0]), np.asarray(sol.z[:, 0])
    bounded = ref < np.sqrt(np.finfo(np.float64).max)
    assert 0 < bounded.sum() < T + 1
    assert_close(u[bounded], ref[bounded])
    assert_close(z[bounded], ref[bounded])
    assert np.all(np.isnan(u[~bounded])) and np.all(np.isnan(z[~bounded]))
    assert float(sol.logpdf) == -np.inf


def test_sampled_paths_of_an_explosive_model_are_nan_after_the_overflow():
    T = 400
    d = nss.JointLGSS(np.array([[3.0]]), np.zeros((1, 1)), np.eye(1), np.zeros((1, 1)),
                      np.ones(1), np.zeros((T, 1)))
    z = np.asarray(d.mean_path()[:, 0])
    ref = 3.0 ** np.arange(1, T + 1.0)
    bounded = ref < np.sqrt(np.finfo(np.float64).max)
    assert_close(z[bounded], ref[bounded])
    assert np.all(np.isnan(z[~bounded]))
    u = np.asarray(nss.KalmanLGSS(np.array([[3.0]]), np.zeros((1, 1)), np.eye(1), np.eye(1),
                                  np.ones(1), np.zeros((1, 1)), T).sample(
        jax.random.key(0))[:, 0])
    assert np.all(np.isfinite(u[:300])) and np.all(np.isnan(u[-50:]))
