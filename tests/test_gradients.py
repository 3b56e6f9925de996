"""Gradients of every ``logpdf``: reverse mode vs forward mode vs central finite differences.

Requirement: gradients of every logpdf (with respect to the matrices, ``u0``, the prior moments,
the noise and ``observables_noise``) by ``jax.grad`` and by ``jax.jacfwd`` agree with each other
to 1e-10 and with central finite differences to 1e-5; the same under ``jax.jit`` and under
``jax.vmap`` over a batch of parameter sets.

Every case writes ``logpdf_fn(theta)``, which builds the problem *inside* the function from a
dict ``theta`` of arrays and returns ``nss.solve(prob, alg).logpdf``. :func:`check_gradients`
flattens ``theta`` with ``ravel_pytree`` into one vector and runs all comparisons on it.

Tolerances (see :func:`assert_ad_close` / :func:`assert_fd_close`):

* AD vs AD (grad, jacfwd, jit, vmap): ``|a - b| <= 1e-10 |b| + 1e-10 * scale``, where
  ``scale = max(1, ||b||_inf)``. The tiny absolute part only absorbs round-off on components
  that cancel to ~0.
* AD vs central FD (step ``h_i = 1e-6 max(1, |theta_i|)``, float64):
  ``|fd - ad| <= 1e-5 |ad| + 1e-7 * scale`` with ``scale = max(1, ||ad||_inf)`` (see
  ``FD_ATOL_REL``: one fixed value for every case, never tuned per case).

Symmetric covariance arguments (``observables_noise`` as a matrix and ``u0_prior_var``) are
differentiated through the parameterisation ``R = (S + S') / 2``, so a finite-difference step
in one entry of ``S`` is a symmetric perturbation of ``R``, exactly what AD differentiates.

Runtime: XLA compilation dominates (the FD loops themselves take milliseconds), so each case
compiles ``grad``, ``jacfwd`` and ``vmap(value_and_grad)`` together in one ``jit`` plus ``jit(f)``
for the FD loop; the un-jitted ``jax.grad`` is compared with the compiled one in one case (the
singular Kalman filter). The failure tests (``-inf`` with finite gradients, also inside a
vmapped batch next to good members) share one compiled program per model.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _reference import central_difference, np_linear, stable_matrix
from jax.flatten_util import ravel_pytree
from scipy.linalg import solve_discrete_lyapunov

import numpyro_statespace as nss
from models import reference_data

AD_RTOL = 1e-10
FD_RTOL = 1e-5
FD_REL_STEP = 1e-6
# FD's absolute slack, relative to the gradient's largest component: a central difference of a
# function of size |f| carries a rounding error ~ eps |f| / h, which is not proportional to the
# component being checked. 1e-7 of the largest component is 100x tighter than FD_RTOL.
FD_ATOL_REL = 1e-7
BATCH = 3


def sym(S):
    """The symmetric matrix a covariance parameter ``S`` stands for."""
    return 0.5 * (S + S.T)


# ---------------------------------------------------------------------------------------------
# comparison machinery
# ---------------------------------------------------------------------------------------------


def _scale(x):
    return max(1.0, float(np.max(np.abs(x)))) if np.size(x) else 1.0


def assert_ad_close(actual, desired, what):
    actual, desired = np.asarray(actual), np.asarray(desired)
    assert np.all(np.isfinite(actual)), f"{what}: non-finite gradient {actual}"
    np.testing.assert_allclose(actual, desired, rtol=AD_RTOL, atol=AD_RTOL * _scale(desired),
                               err_msg=what)


def assert_fd_close(ad, fd, what):
    ad, fd = np.asarray(ad), np.asarray(fd)
    assert np.all(np.isfinite(fd)), f"{what}: non-finite finite difference {fd}"
    np.testing.assert_allclose(ad, fd, rtol=FD_RTOL, atol=FD_ATOL_REL * _scale(ad),
                               err_msg=what)


def central_fd(f, x):
    """Central differences of a scalar ``f`` at the float64 vector ``x``, steps
    ``FD_REL_STEP * max(1, |x_i|)``."""
    x = np.asarray(x, dtype=np.float64)
    return central_difference(lambda v: float(f(v)), x, h=FD_REL_STEP * np.maximum(1.0, np.abs(x)))


def batch_of(flat, seed):
    """``BATCH`` parameter vectors near ``flat``: a 2% multiplicative jitter per coordinate, so
    zeros (e.g. a singular ``R = 0``, zero tensor entries) stay zeros and covariances stay PD."""
    rng = np.random.default_rng(seed)
    flat = np.asarray(flat)
    out = [flat]
    for _ in range(BATCH - 1):
        out.append(flat * (1.0 + 0.02 * rng.standard_normal(flat.shape)))
    return jnp.asarray(np.stack(out))


def _compiled_transforms(f):
    """One jitted program with every transformation the requirement names, so that XLA compiles
    once per case (compilation, not execution, is the cost of this file)."""

    @jax.jit
    def transformed(v, vs):
        value, g_rev = jax.value_and_grad(f)(v)
        v_vmap, g_vmap = jax.vmap(jax.value_and_grad(f))(vs)
        return value, g_rev, jax.jacfwd(f)(v), v_vmap, g_vmap

    return transformed


def check_gradients(logpdf_fn, theta, *, seed=0, eager=False):
    """All gradient checks of the requirement for ``logpdf_fn`` at the pytree ``theta``;
    returns the value and the flat gradient there.

    Under ``jax.jit``: ``jax.grad`` vs ``jax.jacfwd`` (1e-10) and both vs central FD (1e-5); and
    ``jax.vmap(jax.grad)`` over a batch of ``BATCH`` parameter sets vs a Python loop of single
    gradients (1e-10) and vs FD at every batch member (1e-5). The FD loop calls ``jit(f)``.

    With ``eager=True`` also without ``jit``: ``jax.grad`` executed op by op agrees with the
    compiled gradient (1e-10). Eager execution is slow (every primitive and every scan is
    compiled on its own: ~6 s of CPU per gradient), so only the most delicate case, the singular
    Kalman filter, does this.
    """
    theta = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype=jnp.float64), theta)
    flat, unravel = ravel_pytree(theta)
    f = lambda v: logpdf_fn(unravel(v))  # noqa: E731
    transformed = _compiled_transforms(f)
    thetas = batch_of(flat, seed)
    f_value = jax.jit(f)

    value, g_rev, g_fwd, v_vmap, g_vrev = transformed(flat, thetas)
    assert np.isfinite(value), f"logpdf is not finite at the test point: {value}"

    # reverse vs forward mode, both vs central finite differences
    assert np.all(np.isfinite(g_rev)), f"jax.grad gave a non-finite gradient {g_rev}"
    assert np.all(np.isfinite(g_fwd)), f"jax.jacfwd gave a non-finite gradient {g_fwd}"
    assert_ad_close(g_fwd, g_rev, "jacfwd vs grad")
    fd = central_fd(f_value, flat)
    assert_fd_close(g_rev, fd, "grad vs central FD")
    assert_fd_close(g_fwd, fd, "jacfwd vs central FD")

    # vmap over a batch of parameter sets vs a Python loop of single evaluations / gradients
    for b in range(BATCH):
        v_b, g_b, gf_b = transformed(thetas[b], thetas)[:3]
        assert np.isfinite(v_b), f"batch member {b} has a non-finite logpdf {v_b}"
        np.testing.assert_allclose(v_vmap[b], v_b, rtol=1e-12, err_msg=f"vmap(f)[{b}]")
        assert_ad_close(gf_b, g_b, f"jacfwd vs grad at batch member {b}")
        assert_ad_close(g_vrev[b], g_b, f"vmap(grad)[{b}] vs loop of grad")
        if b > 0:  # member 0 is the base point, already checked against FD
            assert_fd_close(g_vrev[b], central_fd(f_value, thetas[b]), f"vmap(grad)[{b}] vs FD")

    if eager:
        np.testing.assert_allclose(f(flat), value, rtol=1e-12, err_msg="eager vs jit value")
        assert_ad_close(jax.grad(f)(flat), g_rev, "eager grad vs jit(grad)")
    return value, g_rev


_TRANSFORMS = {}


def all_transforms(logpdf_fn, theta):
    """``(program, flat, unravel)``: :func:`_compiled_transforms` of ``logpdf_fn`` at the flat
    parameter vector of ``theta``, cached per (model, shapes), so that the failure modes (and
    other checks) of one model share one compilation."""
    theta = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype=jnp.float64), theta)
    flat, unravel = ravel_pytree(theta)
    key = (logpdf_fn, jax.tree_util.tree_structure(theta),
           tuple(x.shape for x in jax.tree_util.tree_leaves(theta)))
    if key not in _TRANSFORMS:
        _TRANSFORMS[key] = _compiled_transforms(lambda v: logpdf_fn(unravel(v)))
    return _TRANSFORMS[key], flat, unravel


def failure_check(logpdf_fn, theta, batch_with=None):
    """``logpdf == -inf`` with finite gradients by grad, jacfwd and vmap(grad).

    Runs under ``jit``, as inside a NumPyro model: a covariance with a negative diagonal is
    refused at construction when concrete, but when traced it must fail softly. The compiled
    program is cached per (model, shapes), so the failure modes of one model compile once.

    ``batch_with``: a good parameter set; then ``vmap`` runs over ``[good, bad, good]`` and the
    good members must equal their single evaluations (a failing member must not leak).
    """
    transformed, flat, unravel = all_transforms(logpdf_fn, theta)
    good = flat if batch_with is None else ravel_pytree(
        jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype=jnp.float64), batch_with))[0]
    value, g_rev, g_fwd, v_vmap, g_vmap = transformed(flat, jnp.stack([good, flat, good]))
    assert value == -np.inf, f"expected -inf on numerical failure, got {value}"
    assert v_vmap[1] == -np.inf, f"expected -inf on numerical failure under vmap, got {v_vmap[1]}"
    for name, g in [("grad", g_rev), ("jacfwd", g_fwd), ("vmap(grad)", g_vmap[1])]:
        bad = {k: np.asarray(x) for k, x in unravel(g).items() if not np.all(np.isfinite(x))}
        assert not bad, f"{name} is not finite on numerical failure: {bad}"
    if batch_with is not None:
        v_good, g_good = transformed(good, jnp.stack([good, good, good]))[:2]
        assert np.isfinite(v_good)
        for b in (0, 2):
            np.testing.assert_allclose(v_vmap[b], v_good, rtol=1e-12)
            assert_ad_close(g_vmap[b], g_good, f"good vmap member {b} next to a failing one")


# ---------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------


def rbc_data(T):
    d = reference_data.rbc()
    return d, d["observables"][:T], d["noise"][:T]


def random_linear(seed, N=3, K=2, M=2, T=12, rho=0.8):
    """A stable random linear model with data simulated from it (seeded numpy)."""
    rng = np.random.default_rng(seed)
    A = stable_matrix(rng, N, rho)
    B, C = 0.5 * rng.standard_normal((N, K)), rng.standard_normal((M, N))
    L = 0.3 * rng.standard_normal((M, M))
    R = L @ L.T + 0.1 * np.eye(M)
    u0, noise = 0.3 * rng.standard_normal(N), rng.standard_normal((T, K))
    v = rng.standard_normal((T, M)) @ np.linalg.cholesky(R).T  # measurement errors
    y = np_linear(A, B, C, u0, noise, T)[1][1:] + v
    return dict(A=A, B=B, C=C, R=R, u0=u0, noise=noise, y=y, rng=rng)


def random_quadratic(seed, N=3, K=2, M=2, T=10):
    m = random_linear(seed, N, K, M, T, rho=0.7)
    rng = m["rng"]
    m.update(A_0=0.05 * rng.standard_normal(N), A_2=0.05 * rng.standard_normal((N, N, N)),
             C_0=0.1 * rng.standard_normal(M), C_2=0.05 * rng.standard_normal((M, N, N)))
    return m


# ---------------------------------------------------------------------------------------------
# (a) DirectIteration, linear: A, B, C, u0, noise, observables_noise
# ---------------------------------------------------------------------------------------------


def _direct_logpdf_fn(y):
    def logpdf_fn(th):  # (sym of a vector of variances is the vector)
        prob = nss.LinearStateSpaceProblem(
            th["A"], th["B"], th["u0"], (0, y.shape[0]), C=th["C"],
            observables_noise=sym(th["R"]), observables=y, noise=th["noise"])
        return nss.solve(prob, nss.DirectIteration()).logpdf
    return logpdf_fn


def test_direct_linear_rbc():
    d, y, w = rbc_data(20)
    theta = dict(A=d["A"], B=d["B"], C=d["C"], u0=d["u0"] + 0.01, noise=w, R=d["R"])
    check_gradients(_direct_logpdf_fn(y), theta)


def test_direct_linear_random_diagonal_R():
    """A random model, with ``observables_noise`` given as a vector of variances."""
    m = random_linear(1, T=15)
    theta = dict(A=m["A"], B=m["B"], C=m["C"], u0=m["u0"], noise=m["noise"],
                 R=np.diag(m["R"]).copy())
    check_gradients(_direct_logpdf_fn(m["y"]), theta, seed=2)


# ---------------------------------------------------------------------------------------------
# (b) DirectIteration, quadratic and pruned quadratic:
#     A_0, A_1, A_2, B, C_0, C_1, C_2, u0, noise, observables_noise
# ---------------------------------------------------------------------------------------------

QUAD_PROBLEMS = [nss.QuadraticStateSpaceProblem, nss.PrunedQuadraticStateSpaceProblem]


def _quadratic_logpdf_fn(cls, y):
    def logpdf_fn(th):
        prob = cls(th["A_0"], th["A_1"], th["A_2"], th["B"], th["u0"], y.shape[0],
                   C_0=th["C_0"], C_1=th["C_1"], C_2=th["C_2"],
                   observables_noise=sym(th["R"]), observables=y, noise=th["noise"])
        return nss.solve(prob, nss.DirectIteration()).logpdf
    return logpdf_fn


@pytest.mark.parametrize("cls", QUAD_PROBLEMS, ids=lambda c: c.__name__)
def test_direct_quadratic_rbc(cls):
    d, y, w = rbc_data(15)
    theta = {k: d[k] for k in ("A_0", "A_1", "A_2", "B", "C_0", "C_1", "C_2", "R")}
    # A non-zero u0 so that the quadratic terms in u0 have non-trivial derivatives.
    theta.update(u0=np.array([0.02, -0.01]), noise=w)
    check_gradients(_quadratic_logpdf_fn(cls, y), theta)


def test_direct_pruned_quadratic_random():
    m = random_quadratic(3, T=10)
    theta = dict(A_0=m["A_0"], A_1=m["A"], A_2=m["A_2"], B=m["B"], C_0=m["C_0"], C_1=m["C"],
                 C_2=m["C_2"], u0=m["u0"], noise=m["noise"], R=m["R"])
    _, g = check_gradients(_quadratic_logpdf_fn(nss.PrunedQuadraticStateSpaceProblem, m["y"]),
                           theta, seed=4)
    assert np.all(g != 0.0)  # every coordinate enters the logpdf


# ---------------------------------------------------------------------------------------------
# (c) StateSpaceProblem with generic callbacks: p (a dict of arrays), noise, u0, R
# ---------------------------------------------------------------------------------------------


def _generic_transition(x, w, p, t):
    return p["A"] @ jnp.tanh(x) + p["B"] @ w * jnp.exp(p["log_scale"]) + p["drift"] * jnp.cos(t)


def _generic_observation(x, p, t):
    return p["C"] @ x + p["c"] * jnp.sin(x[0])


def test_generic_state_space():
    m = random_linear(5, N=3, K=2, M=2, T=12)
    y = m["y"]
    T = y.shape[0]
    rng = np.random.default_rng(50)

    def logpdf_fn(th):
        prob = nss.StateSpaceProblem(_generic_transition, _generic_observation, th["u0"],
                                     (1, T + 1), th["p"], n_shocks=2,
                                     observables_noise=sym(th["R"]), observables=y,
                                     noise=th["noise"])
        return nss.solve(prob, nss.DirectIteration()).logpdf

    p = dict(A=m["A"], B=m["B"], C=m["C"], c=0.3 * rng.standard_normal(2),
             drift=0.1 * rng.standard_normal(3), log_scale=np.array(-0.2))
    theta = dict(p=p, noise=m["noise"], u0=m["u0"], R=m["R"])
    _, g = check_gradients(logpdf_fn, theta, seed=6)
    assert np.all(g != 0.0)  # every coordinate of p, the noise, u0 and R enters the logpdf


# ---------------------------------------------------------------------------------------------
# (d) KalmanFilter: A, B, C, R, u0_prior_mean, u0_prior_var
# ---------------------------------------------------------------------------------------------


def _kalman_logpdf_fn(y):
    def logpdf_fn(th):
        prob = nss.LinearStateSpaceProblem(
            th["A"], th["B"], jnp.zeros(th["A"].shape[0]), y.shape[0], C=th["C"],
            observables_noise=sym(th["R"]), observables=y, u0_prior_mean=th["m0"],
            u0_prior_var=sym(th["P0"]))
        return nss.solve(prob, nss.KalmanFilter()).logpdf
    return logpdf_fn


def test_kalman_rbc():
    d, y, _ = rbc_data(20)
    P0 = solve_discrete_lyapunov(d["A"], d["B"] @ d["B"].T) + 1e-4 * np.eye(2)
    theta = dict(A=d["A"], B=d["B"], C=d["C"], R=d["R"], m0=np.array([0.01, -0.02]), P0=P0)
    check_gradients(_kalman_logpdf_fn(y), theta)


def test_kalman_dsge_singular():
    """K = 1 shock, N = 3 states, M = 1 observable and R = 0: the innovation variance comes from
    the state alone and every filtered covariance is singular."""
    rng = np.random.default_rng(9)
    N, T = 3, 20
    A, B, C = stable_matrix(rng, N, 0.9), rng.standard_normal((N, 1)), rng.standard_normal((1, N))
    y = np_linear(A, B, C, np.zeros(N), rng.standard_normal((T, 1)), T)[1][1:]  # R = 0: exact
    P0 = solve_discrete_lyapunov(A, B @ B.T)
    theta = dict(A=A, B=B, C=C, R=np.zeros((1, 1)), m0=np.zeros(N), P0=P0)
    _, g = check_gradients(_kalman_logpdf_fn(y), theta, seed=10, eager=True)
    # The derivative with respect to R at R = 0 exists and is not trivially zero.
    flat, unravel = ravel_pytree(jax.tree_util.tree_map(jnp.asarray, theta))
    assert unravel(g)["R"][0, 0] != 0.0


def test_kalman_missing_observations():
    """NaN entries are missing observations, including a step where everything is missing."""
    m = random_linear(11, N=3, K=2, M=3, T=20)
    y = m["y"].copy()
    y[2, 0] = np.nan
    y[5, :] = np.nan
    y[7, 1:] = np.nan
    y[13, 2] = np.nan
    rng = m["rng"]
    L = rng.standard_normal((3, 3))
    theta = dict(A=m["A"], B=m["B"], C=m["C"], R=m["R"], m0=0.2 * rng.standard_normal(3),
                 P0=0.3 * L @ L.T + 0.2 * np.eye(3))
    check_gradients(_kalman_logpdf_fn(y), theta, seed=12)

    # The data's gradient: finite everywhere, zero exactly at the missing entries.
    th = jax.tree_util.tree_map(jnp.asarray, theta)
    gy = np.asarray(jax.jit(jax.grad(lambda yy: _kalman_logpdf_fn(yy)(th)))(jnp.asarray(y)))
    assert np.all(np.isfinite(gy)), gy
    assert np.all(gy[np.isnan(y)] == 0.0)
    assert np.all(gy[~np.isnan(y)] != 0.0)


def _conditional_logpdf_fn(y):
    def logpdf_fn(th):
        prob = nss.LinearStateSpaceProblem(th["A"], th["B"], th["u0"], y.shape[0],
                                           observables_noise=sym(th["R"]), observables=y,
                                           noise=th["noise"])
        return nss.solve(prob, nss.ConditionalLikelihood()).logpdf
    return logpdf_fn


# ---------------------------------------------------------------------------------------------
# (e) ConditionalLikelihood: A, observables_noise (and B, u0, noise)
# ---------------------------------------------------------------------------------------------


def test_conditional_linear():
    m = random_linear(13, N=3, K=2, M=3, T=15)
    rng = m["rng"]
    # Fully observed: the data are noisy states.
    u = np_linear(m["A"], m["B"], None, m["u0"], m["noise"], 15)[0][1:]
    u = u + 0.1 * rng.standard_normal((15, 3))
    R = np.diag([0.02, 0.03, 0.05]) + 0.005
    theta = dict(A=m["A"], B=m["B"], u0=m["u0"], noise=0.5 * m["noise"], R=R)
    check_gradients(_conditional_logpdf_fn(u), theta, seed=14)


def test_conditional_rbc_quadratic():
    d, y, w = rbc_data(10)
    # Fully observed RBC-sized data: the two (rescaled) RBC observables stand for the 2 states.
    y = 0.01 * y

    def logpdf_fn(th):
        prob = nss.QuadraticStateSpaceProblem(
            th["A_0"], th["A_1"], th["A_2"], th["B"], th["u0"], y.shape[0],
            observables_noise=th["R"], observables=y, noise=th["noise"])
        return nss.solve(prob, nss.ConditionalLikelihood()).logpdf

    theta = dict(A_0=d["A_0"], A_1=d["A_1"], A_2=d["A_2"], B=d["B"], u0=np.array([0.01, 0.0]),
                 noise=w, R=np.array([0.01, 0.02]))
    check_gradients(logpdf_fn, theta, seed=15)


# ---------------------------------------------------------------------------------------------
# numerical failure: logpdf == -inf with finite gradients (also inside a vmapped batch)
# ---------------------------------------------------------------------------------------------


def _fail_model(seed, T, N=3, K=2, M=2):
    m = random_linear(seed, N=N, K=K, M=M, T=T)
    return m["y"], {k: m[k] for k in ("A", "B", "C", "R", "u0", "noise")}


_KALMAN_Y, _KALMAN_GOOD = _fail_model(17, T=20)  # a rolled scan: compiles in a fraction
# Small C and B: C P C' < I, so that R = -I makes every innovation covariance negative definite.
_KALMAN_GOOD = dict(A=_KALMAN_GOOD["A"], B=0.3 * _KALMAN_GOOD["B"], C=0.1 * _KALMAN_GOOD["C"],
                    R=_KALMAN_GOOD["R"], m0=np.zeros(3), P0=0.5 * np.eye(3))
_DIRECT_Y, _DIRECT_GOOD = _fail_model(19, T=8)
_COND_Y, _COND_GOOD = _fail_model(21, T=8, N=2, K=1)
_COND_GOOD.pop("C")
_QUAD_A_2 = np.stack([np.eye(2), np.eye(2)])
_QUAD_GOOD = dict(A_0=np.zeros(2), A_1=0.5 * np.eye(2), A_2=_QUAD_A_2, B=0.1 * np.ones((2, 1)),
                  C_1=np.eye(2), C_2=0.01 * _QUAD_A_2, u0=np.array([0.1, 0.1]),
                  noise=np.ones((12, 1)), R=0.1 * np.eye(2))


_kalman_raw_logpdf = _kalman_logpdf_fn(_KALMAN_Y)  # (the failures' covariances are symmetric)


def _quadratic_raw_logpdf(th):
    prob = nss.QuadraticStateSpaceProblem(
        th["A_0"], th["A_1"], th["A_2"], th["B"], th["u0"], 12, C_1=th["C_1"], C_2=th["C_2"],
        observables_noise=th["R"], observables=jnp.ones((12, 2)), noise=th["noise"])
    return nss.solve(prob, nss.DirectIteration()).logpdf


def _nan_at(x, idx):
    x = np.array(x, dtype=float)
    x[idx] = np.nan
    return x


MODELS = {"kalman": (_kalman_raw_logpdf, _KALMAN_GOOD),
          "direct": (_direct_logpdf_fn(_DIRECT_Y), _DIRECT_GOOD),
          "conditional": (_conditional_logpdf_fn(_COND_Y), _COND_GOOD),
          "quadratic": (_quadratic_raw_logpdf, _QUAD_GOOD)}
FAILURES = {  # "model: case": the change of the model's good parameters
    "kalman: R=-I": dict(R=-np.eye(2)),
    "kalman: R indefinite": dict(R=np.array([[1.0, 5.0], [5.0, 1.0]])),
    "kalman: NaN in A": dict(A=_nan_at(_KALMAN_GOOD["A"], (1, 2))),
    "kalman: NaN in u0_prior_mean": dict(m0=_nan_at(np.zeros(3), 1)),
    "kalman: NaN in u0_prior_var": dict(P0=_nan_at(0.5 * np.eye(3), (0, 0))),
    "direct: R=-I": dict(R=-np.eye(2)),
    "direct: R indefinite": dict(R=np.array([[1.0, 2.0], [2.0, 1.0]])),
    "direct: NaN in A": dict(A=_nan_at(_DIRECT_GOOD["A"], (0, 1))),
    # an explosive (unpruned) second-order model: u_t ~ u_{t-1}^2 overflows to inf within
    # T = 12 steps from u0 = 10; the direct iteration module promises -inf with finite gradients
    "quadratic: overflow": dict(u0=np.array([10.0, 10.0])),
    "conditional: R=-I": dict(R=-np.eye(2)),
    # A = 0 predicts 0 from any u_0, but the cotangent of u_0 = 1e300 overflowed (NaN in the
    # gradient of A; found by test_fuzz): states beyond 1e154 count as numerical failure.
    "conditional: huge u0": dict(A=np.zeros((2, 2)), u0=np.array([1e300, -1e300]),
                                 R=1e-4 * np.eye(2)),
}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_failure_gives_minus_inf(failure):
    logpdf_fn, good = MODELS[failure.split(":")[0]]
    failure_check(logpdf_fn, dict(good, **FAILURES[failure]), batch_with=good)


def test_kalman_indefinite_R_concrete():
    """Without any tracing (R concrete, non-negative diagonal): still -inf, not an error."""
    th = jax.tree_util.tree_map(jnp.asarray, dict(_KALMAN_GOOD, **FAILURES["kalman: R indefinite"]))
    assert _kalman_raw_logpdf(th) == -np.inf
