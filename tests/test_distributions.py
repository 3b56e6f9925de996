"""The NumPyro distributions (``numpyro_statespace/distributions/``), each against an
independent reference: statsmodels' Kalman filter, SciPy's Lyapunov solver, NumPy loops,
analytic moments and the DifferenceEquations.jl reference values.

statsmodels' timing (its initial state is our ``u_1``): ``_reference.statsmodels_filter``.

Tolerances: likelihood values against statsmodels ``rtol 1e-8``; against reference values, the
solver layer and NumPy loops ``1e-10``; AD vs AD ``1e-10``; AD vs central finite differences
``1e-5`` (plus an absolute floor of ``FD_ATOL_REL`` times the largest gradient component, see
there); Monte Carlo moments within ``MC_SE`` standard errors computed from the number of draws.

Numerical failure (``-inf`` with finite gradients) is tested for every class in
``test_fuzz.py`` (its table ``NAMED`` and the fuzz).

Almost every ``log_prob`` is evaluated through the module-level jitted ``LOG_PROB`` (the
distributions are pytrees), so each shape compiles once.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro import handlers
from scipy.linalg import solve_discrete_lyapunov
from scipy.stats import multivariate_normal, norm

import numpyro_statespace as nss
from models import reference_data
from _reference import (central_difference, dsge_singular, input_shapes, linear_observation,
                        linear_transition, np_conditional, np_linear, np_logpdf, np_quadratic,
                        numpy_kalman_loglik, random_model, spd, stable_matrix, statsmodels_loglik)

SM_RTOL = 1e-8       # against statsmodels (an independent implementation)
REF_RTOL = 1e-10     # against reference values, the solver layer, NumPy loops, AD vs AD
FD_RTOL = 1e-5       # AD vs central finite differences
FD_REL_STEP = 1e-6
# FD's absolute slack relative to the gradient's largest component: the rounding error of a
# central difference is ~ eps |f| / h, not proportional to the component checked. 1e-7 of the
# largest component is 100x tighter than FD_RTOL.
FD_ATOL_REL = 1e-7
MC_SE = 5.0          # Monte Carlo checks: within 5 standard errors
RBC_LINEAR_JOINT = -690.9407412360038
RBC_PRUNED_JOINT = -690.81094364573

LOG_PROB = jax.jit(lambda d, y: d.log_prob(y))
SAMPLE = jax.jit(lambda d, key, shape: d.sample(key, shape), static_argnums=2)
SOLVE = jax.jit(lambda prob, alg: nss.solve(prob, alg), static_argnums=1)  # problems are pytrees


def KEY(seed):
    """A sampling key. The "rbg" implementation (XLA's RngBitGenerator) compiles about a second
    faster per sampling function than the default threefry on CPU; the distributions take any
    key (the default implementation is exercised through ``handlers.seed`` in
    :func:`test_sample_noise_site`)."""
    return jax.random.key(seed, impl="rbg")


# ----------------------------------------------------------------------------------------------
# helpers: random models, statsmodels, NumPy references
# ----------------------------------------------------------------------------------------------


def kalman(m, **kw):
    return nss.KalmanLGSS(m["A"], m["B"], m["C"], m["R"], m["m0"], m["P0"], m["y"].shape[0], **kw)


def np_joint_linear(A, B, C, R, u0, noise, y):
    return np_logpdf(y, np_linear(A, B, C, u0, noise, len(y))[1], R)


def np_joint_quadratic(A_0, A_1, A_2, B, C_0, C_1, C_2, R, u0, noise, y, pruned):
    z = np_quadratic(A_0, A_1, A_2, B, C_0, C_1, C_2, u0, noise, len(y), pruned)[1]
    return np_logpdf(y, z, R)


# ----------------------------------------------------------------------------------------------
# 1. KalmanLGSS gradients over a problem (statsmodels' values, with missing data, mask= and R
#    as variances, are in test_kalman_statsmodels.py)
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("T", [10, 60])  # JAX's derivative of the unrolled filter; the adjoint
def test_grad_over_a_problem_keeps_off_diagonal_R(T):
    """A full R that happens to be diagonal: jax.grad over the problem pytree must give the
    off-diagonal derivative (once a static flag read from R's values sent it to the univariate
    update, whose gradient has no off-diagonal entries: 0 against -286 by finite differences)."""
    m = random_model(4, 3, 2, 2, T)
    R = np.diag([0.2, 0.4])
    prob = nss.LinearStateSpaceProblem(m["A"], m["B"], m["m0"], T, C=m["C"], observables_noise=R,
                                       observables=m["y"], u0_prior_mean=m["m0"],
                                       u0_prior_var=m["P0"])
    g = jax.jit(jax.grad(lambda p: nss.solve(p).logpdf))(prob).observables_noise
    E = np.array([[0.0, 1.0], [1.0, 0.0]])
    fd = central_difference(lambda h: SOLVE(prob.replace(observables_noise=R + h * E),
                                            nss.KalmanFilter()).logpdf, 0.0, h=FD_REL_STEP)
    np.testing.assert_allclose(float(g[0, 1] + g[1, 0]), float(fd), rtol=FD_RTOL)
    assert abs(float(fd)) > 1e-3  # the direction matters


# ----------------------------------------------------------------------------------------------
# 2. DSGE-style singular model: gradients
# ----------------------------------------------------------------------------------------------


def test_dsge_singular_value_and_gradients():
    """The value of this singular model is statsmodels' in test_kalman_statsmodels.py."""
    m = dsge_singular(11, 60)
    T = m["y"].shape[0]

    def f(A, B):
        return nss.KalmanLGSS(A, B, m["C"], m["R"], m["m0"], m["P0"], T).log_prob(m["y"])

    A, B = jnp.asarray(m["A"]), jnp.asarray(m["B"])
    (gA, gB), (fA, fB) = jax.jit(lambda A, B: (jax.grad(f, argnums=(0, 1))(A, B),
                                               jax.jacfwd(f, argnums=(0, 1))(A, B)))(A, B)
    fd_A, fd_B = (central_difference(lambda x, k=k: LOG_PROB(kalman({**m, k: x}), m["y"]), m[k],
                                     h=FD_REL_STEP * np.maximum(1.0, np.abs(m[k])))
                  for k in ("A", "B"))
    for name, ad, fwd, fd in (("A", gA, fA, fd_A), ("B", gB, fB, fd_B)):
        ad = np.asarray(ad)
        assert np.all(np.isfinite(ad)), name
        np.testing.assert_allclose(np.asarray(fwd), ad, rtol=REF_RTOL,
                                   atol=1e-12 * np.max(np.abs(ad)), err_msg=f"jacfwd {name}")
        np.testing.assert_allclose(fd, ad, rtol=FD_RTOL,
                                   atol=FD_ATOL_REL * max(1.0, np.max(np.abs(ad))),
                                   err_msg=f"finite differences {name}")


# ----------------------------------------------------------------------------------------------
# 3. batching, and the contract table: every kind x shapes, moments, jit, pytree, gradient
# ----------------------------------------------------------------------------------------------


def test_kalman_batched_equals_loop():
    N, K, M, T, nb = 3, 2, 2, 60, 3
    ms = [random_model(50 + b, N, K, M, T) for b in range(nb)]
    base = ms[0]
    A = np.stack([mb["A"] for mb in ms])
    R = np.stack([mb["R"] for mb in ms])
    y = np.stack([mb["y"] for mb in ms])
    d = nss.KalmanLGSS(A, base["B"], base["C"], R, base["m0"], base["P0"], T)
    assert d.batch_shape == (nb,)
    assert d.event_shape == (T, M)
    lp = np.asarray(LOG_PROB(d, y))
    assert lp.shape == (nb,)
    loop = [float(LOG_PROB(nss.KalmanLGSS(A[b], base["B"], base["C"], R[b], base["m0"],
                                          base["P0"], T), y[b])) for b in range(nb)]
    # each batch member is the NumPy filter's value (the unbatched filter is statsmodels' in
    # test_kalman_statsmodels.py)
    np.testing.assert_allclose(lp, loop, rtol=REF_RTOL)
    np.testing.assert_allclose(lp, [numpy_kalman_loglik(A[b], base["B"], base["C"], R[b],
                                                        base["m0"], base["P0"], y[b])
                                    for b in range(nb)], rtol=REF_RTOL)
    # unbatched data broadcasts against the batch; extra leading dims of data are sample dims
    assert jax.eval_shape(d.log_prob, y[0]).shape == (nb,)
    assert jax.eval_shape(d.log_prob, np.stack([y, y])).shape == (2, nb)


def test_joint_lgss_batched_equals_loop():
    d_ = reference_data.rbc()
    T, nb = 5, 3
    scale = np.array([1.0, 0.9, 1.1])
    A = scale[:, None, None] * d_["A"]
    R = np.stack([s * d_["R"] for s in scale])
    y = np.stack([d_["observables"][:T] * s for s in scale])
    d = nss.JointLGSS(A, d_["B"], d_["C"], R, d_["u0"], d_["noise"][:T])
    assert d.batch_shape == (nb,) and d.event_shape == (T, 2)
    lp = np.asarray(LOG_PROB(d, y))
    loop = [np_joint_linear(A[b], d_["B"], d_["C"], R[b], d_["u0"], d_["noise"][:T], y[b])
            for b in range(nb)]
    np.testing.assert_allclose(lp, loop, rtol=REF_RTOL)


# Small models for the generic checks, batch (3,), T = 6.
_T, _N, _K, _M, _NB = 6, 3, 2, 2, 3


def _small_linear(seed=0):
    rng = np.random.default_rng(seed)
    return dict(A=stable_matrix(rng, _N, 0.8), B=rng.standard_normal((_N, _K)),
                C=rng.standard_normal((_M, _N)), R=spd(rng, _M, 0.3), m0=rng.standard_normal(_N),
                P0=spd(rng, _N), u0=rng.standard_normal(_N),
                noise=rng.standard_normal((_T, _K)), y=rng.standard_normal((_T, _M)),
                A_0=0.01 * rng.standard_normal(_N), A_2=0.05 * rng.standard_normal((_N, _N, _N)),
                C_0=0.01 * rng.standard_normal(_M), C_2=0.05 * rng.standard_normal((_M, _N, _N)),
                yN=rng.standard_normal((_T, _N)), RN=spd(rng, _N, 0.3))


def _batched(x, nb=_NB):
    return np.stack([x * (1.0 + 0.05 * b) for b in range(nb)])


_MASK = np.ones((_T, _M), bool)
_MASK[2, 0] = _MASK[4] = False


@functools.lru_cache(maxsize=None)
def make_dist(kind, batched):
    """One distribution of each class; ``batched`` gives batch_shape (3,). Cached: the
    distributions are immutable and building the stationary ones costs a compilation."""
    s = _small_linear()
    bt = _batched if batched else (lambda x: x)
    if kind == "kalman":
        return nss.KalmanLGSS(bt(s["A"]), s["B"], s["C"], s["R"], s["m0"], s["P0"], _T)
    if kind == "kalman_stationary":
        return nss.KalmanLGSS(bt(s["A"]), s["B"], s["C"], s["R"], s["m0"], "stationary", _T,
                              method="sequential")
    if kind == "kalman_mask":
        return nss.KalmanLGSS(bt(s["A"]), s["B"], s["C"], s["R"], s["m0"], s["P0"],
                              mask=jnp.asarray(_MASK))
    if kind == "joint_lgss":
        return nss.JointLGSS(bt(s["A"]), s["B"], s["C"], s["R"], s["u0"], s["noise"])
    if kind in ("joint_quadratic", "joint_pruned"):
        return nss.JointQuadraticSS(s["A_0"], bt(s["A"]), s["A_2"], s["B"], s["C_0"], s["C"],
                                    s["C_2"], s["R"], s["u0"], s["noise"],
                                    pruned=kind == "joint_pruned")
    if kind == "joint_generic":
        p = dict(A=s["A"], B=s["B"], C=s["C"])
        return nss.JointStateSpace(linear_transition, linear_observation, p, s["R"], bt(s["u0"]),
                                   s["noise"])
    if kind == "conditional":
        return nss.ConditionalSS(bt(s["A"]), s["B"], s["RN"], s["u0"], num_timesteps=_T)
    if kind == "conditional_noB":
        return nss.ConditionalSS(bt(s["A"]), None, s["RN"], s["u0"], num_timesteps=_T)
    raise AssertionError(kind)


KINDS = ["kalman", "kalman_stationary", "kalman_mask", "joint_lgss", "joint_quadratic",
         "joint_pruned", "joint_generic", "conditional", "conditional_noB"]


def _data_for(kind):
    s = _small_linear()
    return s["yN"] if kind.startswith("conditional") else s["y"]


_AUX = ("num_timesteps", "method", "stationary", "pruned", "transition", "observation",
        "batch_shape", "event_shape")


def _same_attributes(d1, d2):
    for attr in _AUX:
        if hasattr(d1, attr):
            assert getattr(d2, attr) == getattr(d1, attr), attr


def _np_moments(kind, b):
    """Means and entrywise variances of ``y_1..y_T`` of batch member ``b`` in NumPy: the moment
    recursion (Kalman, conditional) or the path given the noise with ``R``'s diagonal (joint)."""
    s = _small_linear()
    A = _batched(s["A"])[b]
    if kind.startswith("joint"):
        u0 = _batched(s["u0"])[b] if kind == "joint_generic" else s["u0"]
        if kind in ("joint_quadratic", "joint_pruned"):
            z = np_quadratic(s["A_0"], A, s["A_2"], s["B"], s["C_0"], s["C"], s["C_2"], u0,
                             s["noise"], _T, kind == "joint_pruned")[1]
        else:
            z = np_linear(s["A"] if kind == "joint_generic" else A, s["B"], s["C"], u0,
                          s["noise"], _T)[1]
        return z[1:], np.broadcast_to(np.diag(s["R"]), (_T, _M))
    BB = s["B"] @ s["B"].T
    if kind.startswith("kalman"):
        m, P, Q, C, R = s["m0"], s["P0"], BB, s["C"], s["R"]
        if kind == "kalman_stationary":
            P = solve_discrete_lyapunov(A, BB)
    else:
        m, P, C, R = s["u0"], np.zeros((_N, _N)), np.eye(_N), 0.0
        Q = s["RN"] + (BB if kind == "conditional" else 0.0)
    means, var = [], []
    for _ in range(_T):
        m, P = A @ m, A @ P @ A.T + Q
        means.append(C @ m)
        var.append(np.diag(C @ P @ C.T + R))
    return np.array(means), np.array(var)


# one kind per class is also evaluated eagerly (its own compilation of the log_prob program)
EAGER_KINDS = {"kalman", "joint_lgss", "joint_pruned", "joint_generic", "conditional"}
# jax.grad over the distribution object (a pytree of float leaves, A among them)
GRAD_KINDS = {"kalman", "kalman_stationary", "joint_lgss"}
N_CONTRACT_DRAWS = 1000


@pytest.mark.parametrize("kind", KINDS)
def test_contract(kind):
    """What every distribution promises, kind by kind:

    * shapes: ``batch_shape`` from broadcasting the parameters, ``event_shape (T, M)``, samples
      ``sample_shape + batch_shape + event_shape`` (NaN exactly at masked entries), ``log_prob``
      ``sample_shape + batch_shape``; unbatched parameters give ``batch_shape ()``;
    * ``mean`` and ``variance`` equal the NumPy moments (``REF_RTOL``) and the draws' mean and
      variance agree with them within ``MC_SE`` standard errors; for the joint classes the
      residual at the mean is zero, so ``log_prob(mean)`` is ``T log N(0; 0, R)``;
    * ``log_prob`` is finite, jitted equals eager, and a flatten/unflatten or a jit round trip
      keeps every option and the value;
    * for ``GRAD_KINDS``: ``jax.grad`` over the distribution object, the leaf ``A``'s gradient
      against central differences of ``log_prob`` with every other leaf (the stored stationary
      ``u0_cov`` included) held fixed.
    """
    d = make_dist(kind, batched=True)
    M = _N if kind.startswith("conditional") else _M
    assert d.batch_shape == (_NB,) and d.event_shape == (_T, M)
    key = KEY(1)
    n = N_CONTRACT_DRAWS
    x = np.asarray(SAMPLE(d, key, (n,)))
    assert x.shape == (n, _NB, _T, M)
    observed = _MASK if kind == "kalman_mask" else np.ones((_T, M), bool)
    assert np.all(np.isnan(x[..., ~observed])) and np.all(np.isfinite(x[..., observed]))
    for shape in [(), (2, 4)]:  # abstract evaluation: no compilation
        out = jax.eval_shape(lambda k: d.sample(k, shape), key)
        assert out.shape == shape + (_NB, _T, M)
        assert jax.eval_shape(d.log_prob, out).shape == shape + (_NB,)
    d1 = make_dist(kind, batched=False)
    assert d1.batch_shape == ()
    assert jax.eval_shape(lambda k: d1.sample(k, (5,)), key).shape == (5, _T, M)

    # moments: NumPy, and the draws
    mean, var = np.asarray(d.mean), np.asarray(d.variance)
    assert mean.shape == var.shape == d.batch_shape + d.event_shape
    for b in range(_NB):
        ref_mean, ref_var = _np_moments(kind, b)
        np.testing.assert_allclose(mean[b], ref_mean, rtol=REF_RTOL, atol=1e-12)
        np.testing.assert_allclose(var[b], ref_var, rtol=REF_RTOL)
    xo, mo, vo = x[..., observed], mean[..., observed], var[..., observed]
    assert np.all(np.abs(xo.mean(0) - mo) <= MC_SE * np.sqrt(vo / n)), kind
    assert np.all(np.abs(xo.var(0, ddof=1) - vo) <= MC_SE * vo * np.sqrt(2 / (n - 1))), kind
    if kind.startswith("joint"):
        ld = _T * multivariate_normal.logpdf(np.zeros(_M), np.zeros(_M), _small_linear()["R"])
        np.testing.assert_allclose(np.asarray(LOG_PROB(d, mean)), np.full(_NB, ld),
                                   rtol=REF_RTOL)

    # log_prob: finite, jit == eager, pytree round trips
    y = _data_for(kind)
    jitted = np.asarray(LOG_PROB(d1, y))
    assert np.isfinite(jitted)
    if kind in EAGER_KINDS:
        np.testing.assert_allclose(jitted, np.asarray(d1.log_prob(y)), rtol=1e-12)
    leaves, treedef = jax.tree_util.tree_flatten(d1)
    for d2 in (jax.tree_util.tree_unflatten(treedef, leaves), jax.jit(lambda d: d)(d1)):
        assert type(d2) is type(d1)
        _same_attributes(d1, d2)
        np.testing.assert_allclose(np.asarray(LOG_PROB(d2, y)), jitted, rtol=1e-12)

    if kind in GRAD_KINDS:
        g = jax.jit(jax.grad(lambda d: d.log_prob(y)))(d1)
        assert type(g) is type(d1)

        def with_A(A):
            shifted = jax.tree_util.tree_map(lambda x: x, d1)
            shifted.A = A
            return LOG_PROB(shifted, y)

        fd = central_difference(with_A, d1.A, h=FD_REL_STEP)
        np.testing.assert_allclose(np.asarray(g.A), fd, rtol=FD_RTOL,
                                   atol=FD_ATOL_REL * np.abs(fd).max() + 1e-7)


def test_numpyro_mask_method_still_works():
    """``Distribution.mask`` (used by ``numpyro.handlers.mask``) is not shadowed by the
    ``mask=`` option of KalmanLGSS."""
    d = make_dist("kalman_mask", batched=False)
    masked = d.mask(False)
    assert isinstance(masked, dist.MaskedDistribution)
    assert float(masked.log_prob(_small_linear()["y"])) == 0.0


# ----------------------------------------------------------------------------------------------
# 4. sample moments against analytic ones
# ----------------------------------------------------------------------------------------------

N_DRAWS = 20000


def assert_moments(x, mean, cov, what):
    """Sample mean and covariance of draws ``x (n, M)`` within ``MC_SE`` standard errors.

    SE of a mean entry: ``sqrt(S_ii / n)``; of a covariance entry (Gaussian draws):
    ``sqrt((S_ii S_jj + S_ij^2) / n)``.
    """
    n = x.shape[0]
    x = np.asarray(x)
    d = np.sqrt(np.diag(cov))
    se_mean = d / np.sqrt(n)
    assert np.all(np.abs(x.mean(0) - mean) <= MC_SE * se_mean), (what, x.mean(0), mean)
    se_cov = np.sqrt((np.outer(d**2, d**2) + cov**2) / n)
    emp = np.cov(x, rowvar=False).reshape(cov.shape)
    assert np.all(np.abs(emp - cov) <= MC_SE * se_cov), (what, emp, cov)


@pytest.mark.parametrize("kind", ["kalman", "joint_lgss", "conditional"])
def test_sample_moments(kind):
    """The Kalman ``(y_1, y_2)`` jointly (their cross-covariance is ``C A P_1 C'``); the joint
    ``y_t ~ N(z_t, R)`` about the NumPy path; the conditional ``y_1`` and the residual
    ``y_2 - A y_1``, ``N(0, S)`` given ``y_1``."""
    seed = {"kalman": 3, "joint_lgss": 4, "conditional": 5}[kind]
    s = _small_linear(seed)
    A, B, C, R = s["A"], s["B"], s["C"], s["R"]
    if kind == "kalman":
        d = nss.KalmanLGSS(A, B, C, R, s["m0"], s["P0"], 2)
        P1 = A @ s["P0"] @ A.T + B @ B.T
        S1, S2, X = C @ P1 @ C.T + R, C @ (A @ P1 @ A.T + B @ B.T) @ C.T + R, C @ A @ P1 @ C.T
        checks = [("(y_1, y_2)", lambda y: y.reshape(N_DRAWS, -1),
                   np.r_[C @ A @ s["m0"], C @ A @ A @ s["m0"]], np.block([[S1, X.T], [X, S2]]))]
    elif kind == "joint_lgss":
        d = nss.JointLGSS(A, B, C, R, s["u0"], s["noise"])
        path = np_linear(A, B, C, s["u0"], s["noise"], _T)[1][1:]
        np.testing.assert_allclose(np.asarray(d.mean_path()), path, rtol=REF_RTOL, atol=1e-13)
        checks = [(f"y_{t + 1}", lambda y, t=t: y[:, t], path[t], R) for t in range(_T)]
    else:
        d = nss.ConditionalSS(A, B, s["RN"], s["u0"], num_timesteps=2)
        S = B @ B.T + s["RN"]
        checks = [("y_1", lambda y: y[:, 0], A @ s["u0"], S),
                  ("y_2 - A y_1", lambda y: y[:, 1] - y[:, 0] @ A.T, np.zeros(_N), S)]
    y = np.asarray(SAMPLE(d, KEY(seed - 1), (N_DRAWS,)))
    assert y.shape == (N_DRAWS,) + d.event_shape
    for what, draws, mean, cov in checks:
        assert_moments(draws(y), mean, cov, what)


# ----------------------------------------------------------------------------------------------
# 5. stationary prior
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["full_noise", "dsge_singular", "near_unit_root", "batched"])
def test_stationary_covariance_matches_scipy(case):
    m = {"full_noise": lambda: random_model(21, 4, 4, 2, 50),
         "dsge_singular": lambda: dsge_singular(12, 50),
         "near_unit_root": lambda: random_model(22, 3, 2, 2, 50, radius=0.995),
         "batched": lambda: random_model(30, 3, 2, 2, 20)}[case]()
    A, B = m["A"], m["B"]
    if case == "batched":
        A = np.stack([random_model(30 + b, 3, 2, 2, 20)["A"] for b in range(3)])
    d = nss.KalmanLGSS(A, B, m["C"], m["R"], np.zeros(B.shape[0]), "stationary", 50)
    assert d.stationary and d.batch_shape == A.shape[:-2]
    assert d.u0_cov.shape == A.shape
    for b in np.ndindex(A.shape[:-2]):
        expected = solve_discrete_lyapunov(A[b], B @ B.T)
        np.testing.assert_allclose(np.asarray(d.u0_cov[b]), expected, rtol=1e-10,
                                   atol=1e-12 * np.max(np.abs(expected)))


# ----------------------------------------------------------------------------------------------
# 6. joint and conditional distributions against solve() and reference values
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rbc():
    return reference_data.rbc()


def _rbc_problem(rbc, cls, T=5, **kw):
    if cls is nss.LinearStateSpaceProblem:
        return cls(rbc["A"], rbc["B"], rbc["u0"], (0, T), C=rbc["C"], observables_noise=rbc["R"],
                   observables=rbc["observables"][:T], noise=rbc["noise"][:T], **kw)
    return cls(rbc["A_0"], rbc["A_1"], rbc["A_2"], rbc["B"], rbc["u0"], (0, T), C_0=rbc["C_0"],
               C_1=rbc["C_1"], C_2=rbc["C_2"], observables_noise=rbc["R"],
               observables=rbc["observables"][:T], noise=rbc["noise"][:T], **kw)


def test_joint_lgss_rbc(rbc):
    T = 5
    y, w = rbc["observables"][:T], rbc["noise"][:T]
    d = nss.JointLGSS(rbc["A"], rbc["B"], rbc["C"], rbc["R"], rbc["u0"], w)
    lp = float(LOG_PROB(d, y))
    np.testing.assert_allclose(lp, RBC_LINEAR_JOINT, rtol=REF_RTOL)
    prob = _rbc_problem(rbc, nss.LinearStateSpaceProblem)
    np.testing.assert_allclose(lp, float(SOLVE(prob, None).logpdf), rtol=REF_RTOL)
    np.testing.assert_allclose(lp, np_joint_linear(rbc["A"], rbc["B"], rbc["C"], rbc["R"],
                                                   rbc["u0"], w, y), rtol=REF_RTOL)
    # R as a vector of variances
    d_vec = nss.JointLGSS(rbc["A"], rbc["B"], rbc["C"], np.diag(rbc["R"]), rbc["u0"], w)
    np.testing.assert_allclose(float(LOG_PROB(d_vec, y)), RBC_LINEAR_JOINT, rtol=REF_RTOL)


@pytest.mark.parametrize("pruned", [True, False])
def test_joint_quadratic_rbc(rbc, pruned):
    T = 5
    y, w = rbc["observables"][:T], rbc["noise"][:T]
    d = nss.JointQuadraticSS(rbc["A_0"], rbc["A_1"], rbc["A_2"], rbc["B"], rbc["C_0"],
                             rbc["C_1"], rbc["C_2"], rbc["R"], rbc["u0"], w, pruned=pruned)
    assert d.pruned is pruned
    lp = float(LOG_PROB(d, y))
    cls = nss.PrunedQuadraticStateSpaceProblem if pruned else nss.QuadraticStateSpaceProblem
    np.testing.assert_allclose(lp, float(SOLVE(_rbc_problem(rbc, cls), None).logpdf),
                               rtol=REF_RTOL)
    ref_np = np_joint_quadratic(rbc["A_0"], rbc["A_1"], rbc["A_2"], rbc["B"], rbc["C_0"],
                                rbc["C_1"], rbc["C_2"], rbc["R"], rbc["u0"], w, y, pruned)
    np.testing.assert_allclose(lp, ref_np, rtol=REF_RTOL)
    if pruned:
        np.testing.assert_allclose(lp, RBC_PRUNED_JOINT, rtol=REF_RTOL)


def test_joint_quadratic_random_pruned_differs_from_unpruned():
    """A model where pruning matters: both match their NumPy loops and differ from each other."""
    s = _small_linear(6)
    args = (s["A_0"], s["A"], 5 * s["A_2"], s["B"], s["C_0"], s["C"], 5 * s["C_2"], s["R"],
            s["u0"], s["noise"])
    vals = {}
    for pruned in (True, False):
        d = nss.JointQuadraticSS(*args, pruned=pruned)
        vals[pruned] = float(LOG_PROB(d, s["y"]))
        ref = np_joint_quadratic(*args[:-1], args[-1], s["y"], pruned)
        np.testing.assert_allclose(vals[pruned], ref, rtol=REF_RTOL)
    assert abs(vals[True] - vals[False]) > 1e-6 * abs(vals[True])


def test_joint_state_space_rbc(rbc):
    T = 5
    y, w = rbc["observables"][:T], rbc["noise"][:T]
    p = dict(A=jnp.asarray(rbc["A"]), B=jnp.asarray(rbc["B"]), C=jnp.asarray(rbc["C"]))
    d = nss.JointStateSpace(linear_transition, linear_observation, p, rbc["R"], rbc["u0"], w)
    lp = float(LOG_PROB(d, y))
    np.testing.assert_allclose(lp, RBC_LINEAR_JOINT, rtol=REF_RTOL)
    prob = nss.StateSpaceProblem(linear_transition, linear_observation, rbc["u0"], T, p, n_shocks=1,
                                 observables_noise=rbc["R"], observables=y, noise=w)
    np.testing.assert_allclose(lp, float(SOLVE(prob, None).logpdf), rtol=REF_RTOL)


def _from_problem_cases(rbc):
    """``(id, problem, alg, expected class, extra check)``."""
    T = 5
    y, w = rbc["observables"][:T], rbc["noise"][:T]

    def tr(x, w, p, t):  # time-dependent, to check that tspan's t0 reaches the callbacks
        return p["A"] @ x + (1.0 + 0.1 * t) * (p["B"] @ w)

    def ob(x, p, t):
        return p["C"] @ x + 0.01 * t

    p = dict(A=jnp.asarray(rbc["A"]), B=jnp.asarray(rbc["B"]), C=jnp.asarray(rbc["C"]))
    kal = nss.LinearStateSpaceProblem(rbc["A"], rbc["B"], rbc["u0"], T, C=rbc["C"],
                                      observables_noise=rbc["R"], observables=y,
                                      u0_prior_mean=np.zeros(2), u0_prior_var=np.eye(2))
    yN = y[:, ::-1].copy()
    return [
        ("linear_joint", _rbc_problem(rbc, nss.LinearStateSpaceProblem), None, nss.JointLGSS),
        ("kalman", kal, None, nss.KalmanLGSS),
        ("quadratic", _rbc_problem(rbc, nss.QuadraticStateSpaceProblem), None,
         nss.JointQuadraticSS),
        ("pruned", _rbc_problem(rbc, nss.PrunedQuadraticStateSpaceProblem), None,
         nss.JointQuadraticSS),
        ("generic_t0", nss.StateSpaceProblem(tr, ob, rbc["u0"], (2, 2 + T), p, n_shocks=1,
                                             observables_noise=rbc["R"], observables=y, noise=w),
         None, nss.JointStateSpace),
        ("conditional", nss.LinearStateSpaceProblem(rbc["A"], None, rbc["u0"], T,
                                                    observables_noise=rbc["R"], observables=yN),
         nss.ConditionalLikelihood(), nss.ConditionalSS),
        ("conditional_C", nss.LinearStateSpaceProblem(rbc["A"], None, rbc["u0"], T, C=rbc["C"],
                                                      observables_noise=rbc["R"], observables=yN),
         nss.ConditionalLikelihood(), nss.ConditionalSS),
    ]


@pytest.mark.parametrize("case", range(7), ids=["linear_joint", "kalman", "quadratic", "pruned",
                                                "generic_t0", "conditional", "conditional_C"])
def test_from_problem(rbc, case):
    name, prob, alg, cls = _from_problem_cases(rbc)[case]
    d = nss.from_problem(prob, alg)
    assert type(d) is cls, name
    if name == "pruned":
        assert d.pruned is True
    if name == "quadratic":
        assert d.pruned is False
    expected = float(SOLVE(prob, alg).logpdf)
    assert np.isfinite(expected)
    np.testing.assert_allclose(float(LOG_PROB(d, prob.observables)), expected, rtol=REF_RTOL)
    if name == "generic_t0":  # NumPy loop with times 2..6 (transition) and 3..7 (observation)
        y, w = np.asarray(prob.observables), np.asarray(prob.noise)
        u, ll = rbc["u0"].copy(), 0.0
        for i in range(y.shape[0]):
            t = 2 + i
            u = rbc["A"] @ u + (1.0 + 0.1 * t) * (rbc["B"] @ w[i])
            ll += multivariate_normal.logpdf(y[i], rbc["C"] @ u + 0.01 * (t + 1), rbc["R"])
        np.testing.assert_allclose(expected, ll, rtol=REF_RTOL)
    if name == "kalman":
        ref = statsmodels_loglik(rbc["A"], rbc["B"], rbc["C"], rbc["R"], np.zeros(2), np.eye(2),
                                 np.asarray(prob.observables))
        np.testing.assert_allclose(expected, ref, rtol=SM_RTOL)


def test_from_problem_kalman_keeps_declared_variances_and_refuses_noise():
    """Variances ``(M,)`` on the problem stay variances on the distribution (the filter's
    univariate update, as ``solve`` takes), and a problem carrying a noise sequence is refused as
    ``solve(prob, KalmanFilter())`` refuses it."""
    s = _small_linear(10)
    var = np.array([0.2, 0.3])
    kw = dict(C=s["C"], observables_noise=var, observables=s["y"], u0_prior_mean=s["m0"],
              u0_prior_var=s["P0"])
    prob = nss.LinearStateSpaceProblem(s["A"], s["B"], s["u0"], _T, **kw)
    d = nss.from_problem(prob, nss.KalmanFilter())
    assert d._diagonal_R
    np.testing.assert_allclose(
        float(LOG_PROB(d, s["y"])),
        statsmodels_loglik(s["A"], s["B"], s["C"], np.diag(var), s["m0"], s["P0"], s["y"]),
        rtol=SM_RTOL)
    noisy = nss.LinearStateSpaceProblem(s["A"], s["B"], s["u0"], _T, noise=s["noise"], **kw)
    with pytest.raises(ValueError, match="integrates the noise out"):
        nss.from_problem(noisy, nss.KalmanFilter())


def test_from_problem_without_shocks():
    """A problem without shocks (``B=None``; ``n_shocks=0``) has a deterministic path: its joint
    likelihood is ``sum_t log N(y_t; C A^t u0, R)`` (from_problem asked for noise the problem
    refuses), and a problem with shocks but no noise gets a message that says so."""
    s = _small_linear(9)
    A, C, R, u0, y = s["A"], s["C"], s["R"], s["u0"], s["y"]
    ref = np_logpdf(y, np_linear(A, None, C, u0, None, _T)[1], R)
    linear = nss.LinearStateSpaceProblem(A, None, u0, _T, C=C, observables_noise=R, observables=y)
    generic = nss.StateSpaceProblem(lambda x, w, p, t: p @ x, lambda x, p, t: C @ x, u0, _T,
                                    jnp.asarray(A), n_shocks=0, observables_noise=R,
                                    observables=y)
    for prob in (linear, generic):
        d = nss.from_problem(prob, nss.DirectIteration())
        np.testing.assert_allclose(float(d.log_prob(y)), ref, rtol=REF_RTOL)
        np.testing.assert_allclose(float(SOLVE(prob, nss.DirectIteration()).logpdf), ref,
                                   rtol=REF_RTOL)
    with pytest.raises(ValueError, match="needs the problem's noise"):
        nss.from_problem(nss.LinearStateSpaceProblem(A, s["B"], u0, _T, C=C, observables_noise=R,
                                                     observables=y), nss.DirectIteration())


@pytest.mark.parametrize("with_B", [False, True])
@pytest.mark.parametrize("with_C", [False, True])
def test_conditional(with_B, with_C):
    s = _small_linear(9 if with_B else 7)
    C = spd(np.random.default_rng(10 if with_B else 8), _N) if with_C else None
    B = s["B"] if with_B else None
    d = nss.ConditionalSS(s["A"], B, s["RN"], s["u0"], C, num_timesteps=_T)
    lp = float(LOG_PROB(d, s["yN"]))
    Cm = np.eye(_N) if C is None else C
    S = Cm @ B @ B.T @ Cm.T + s["RN"] if with_B else s["RN"]
    ref = np_conditional(lambda x, w, t: Cm @ s["A"] @ x, s["u0"], s["yN"], None, S)[1]
    np.testing.assert_allclose(lp, ref, rtol=REF_RTOL)
    if not with_B:  # solve's ConditionalLikelihood: problems without shocks
        prob = nss.LinearStateSpaceProblem(s["A"], None, s["u0"], _T, C=C,
                                           observables_noise=s["RN"], observables=s["yN"])
        np.testing.assert_allclose(lp, float(SOLVE(prob, nss.ConditionalLikelihood()).logpdf),
                                   rtol=REF_RTOL)


# ----------------------------------------------------------------------------------------------
# 7. pytree behaviour: one program, options under jit, vmap
# ----------------------------------------------------------------------------------------------

def test_log_prob_is_one_program_that_keeps_the_complete_data_path():
    """An eager ``log_prob`` runs one compiled program, reused for new parameter values, and the
    concrete data still select the complete-data path: ``R`` factorised once for a NaN-free
    ``y``, per step with a NaN. The same for the whitened noise of :func:`nss.sample_noise`."""
    from numpyro_statespace.distributions import _compiled_log_prob

    s = _small_linear(15)
    A = jnp.asarray(s["A"])

    def build(A):
        return nss.JointLGSS(A, s["B"], s["C"], s["R"], s["u0"], s["noise"])

    sizes = []
    for f in (1.0, 0.9):
        np.testing.assert_allclose(
            float(build(f * A).log_prob(s["y"])),
            np_joint_linear(f * s["A"], s["B"], s["C"], s["R"], s["u0"], s["noise"], s["y"]),
            rtol=REF_RTOL)
        sizes.append(_compiled_log_prob._cache_size())
    assert sizes[1] == sizes[0] > 0

    def whitened(A, y):
        with handlers.seed(rng_seed=0):
            return nss.sample_noise("w", _T, _K, whiten=nss.Whitening(
                A, s["B"], s["C"], s["R"], y, s["u0"]))

    y_nan = np.array(s["y"])
    y_nan[3, 0] = np.nan
    for y, per_step in ((s["y"], False), (y_nan, True)):
        for f in (lambda A: build(A).log_prob(y), lambda A: whitened(A, y)):
            shapes = input_shapes(jax.make_jaxpr(f)(A).jaxpr, "cholesky")
            assert shapes and ((_T, _M, _M) in shapes) == per_step, shapes


def test_options_survive_jit_inside_and_out():
    """Options set when the distribution is built inside jit: ``stationary``, ``method``,
    ``num_timesteps`` and ``pruned`` come back intact and give the eager value."""
    s = _small_linear(13)
    y = s["y"]

    @jax.jit
    def build_kalman(A):
        return nss.KalmanLGSS(A, s["B"], s["C"], s["R"], s["m0"], "stationary", _T,
                              method="sequential")

    d = build_kalman(jnp.asarray(s["A"]))
    assert isinstance(d, nss.KalmanLGSS)
    assert d.stationary is True and d.method == "sequential" and d.num_timesteps == _T
    assert d.event_shape == (_T, _M) and d.batch_shape == ()
    eager = nss.KalmanLGSS(s["A"], s["B"], s["C"], s["R"], s["m0"], "stationary", _T,
                           method="sequential")
    np.testing.assert_allclose(np.asarray(d.u0_cov), np.asarray(eager.u0_cov), rtol=1e-12)
    np.testing.assert_allclose(float(LOG_PROB(d, y)), float(LOG_PROB(eager, y)), rtol=1e-12)

    q = (s["A_0"], s["A"], 5 * s["A_2"], s["B"], s["C_0"], s["C"], 5 * s["C_2"], s["R"],
         s["u0"], s["noise"])
    for pruned in (True, False):
        dq = jax.jit(lambda *a, pruned=pruned: nss.JointQuadraticSS(*a, pruned=pruned))(*q)
        assert dq.pruned is pruned
        np.testing.assert_allclose(
            float(LOG_PROB(dq, y)),
            np_joint_quadratic(*q, y, pruned), rtol=REF_RTOL)

    # a jitted function that builds the distribution and returns log_prob
    lp = jax.jit(lambda A: nss.KalmanLGSS(A, s["B"], s["C"], s["R"], s["m0"], s["P0"],
                                          _T).log_prob(y))(jnp.asarray(s["A"]))
    ref = statsmodels_loglik(s["A"], s["B"], s["C"], s["R"], s["m0"], s["P0"], y)
    np.testing.assert_allclose(float(lp), ref, rtol=SM_RTOL)


def test_vmap_over_scalar_parameter_equals_loop():
    s = _small_linear(14)
    y = s["y"]
    m0 = np.zeros(_N)  # so that the stationary case is statsmodels' initialize_stationary

    def build(rho, stationary):
        return nss.KalmanLGSS(rho * jnp.asarray(s["A"]), s["B"], s["C"], s["R"], m0,
                              "stationary" if stationary else s["P0"], _T,
                              method="sequential" if stationary else "auto")

    rhos = np.array([0.3, 0.6, 0.9, 1.1])  # 1.1 * A is still stable (radius 0.88)
    for stationary in (False, True):
        vals = np.asarray(jax.jit(jax.vmap(lambda r: build(r, stationary).log_prob(y)))(rhos))
        assert vals.shape == rhos.shape
        if not stationary:  # (building stationary ones eagerly costs a compilation each)
            loop = [float(LOG_PROB(build(r, stationary), y)) for r in rhos]
            np.testing.assert_allclose(vals, loop, rtol=1e-12)
        for r, v in zip(rhos, vals):
            ref = statsmodels_loglik(r * s["A"], s["B"], s["C"], s["R"], m0, s["P0"], y,
                                     prior_of="stationary" if stationary else "u0")
            np.testing.assert_allclose(v, ref, rtol=SM_RTOL)


# ----------------------------------------------------------------------------------------------
# 8. sample_noise in a NumPyro model
# ----------------------------------------------------------------------------------------------


def test_sample_noise_site():
    rbc = reference_data.rbc()
    T, K = 5, 1
    y = rbc["observables"][:T]

    def model(y=None):
        w = nss.sample_noise("w", T, K)
        return numpyro.sample("y", nss.JointLGSS(rbc["A"], rbc["B"], rbc["C"], rbc["R"],
                                                  rbc["u0"], w), obs=y)

    with handlers.trace() as tr, handlers.seed(rng_seed=0):
        model(y)
    site = tr["w"]
    assert site["type"] == "sample" and not site["is_observed"]
    w = np.asarray(site["value"])
    assert w.shape == (T, K)
    assert site["fn"].event_shape == (T, K) and site["fn"].batch_shape == ()
    np.testing.assert_allclose(float(site["fn"].log_prob(w)), norm.logpdf(w).sum(), rtol=1e-12)
    assert tr["y"]["is_observed"]
    # the model's joint density = N(0, 1) prior of the noise + the joint likelihood
    w_ref = rbc["noise"][:T]
    logp = jax.jit(lambda w: numpyro.infer.util.log_density(model, (y,), {}, {"w": w})[0])(
        jnp.asarray(w_ref))
    np.testing.assert_allclose(float(logp), norm.logpdf(w_ref).sum() + RBC_LINEAR_JOINT,
                               rtol=REF_RTOL)
    # without data y is sampled with the event shape (T, M)
    y_sim = jax.jit(lambda k: handlers.seed(model, k)())(KEY(1))
    assert y_sim.shape == (T, 2) and np.all(np.isfinite(np.asarray(y_sim)))


# ----------------------------------------------------------------------------------------------
# 9. bad input
# ----------------------------------------------------------------------------------------------

_s = _small_linear(15)
_A, _B, _C, _R, _m0, _P0 = _s["A"], _s["B"], _s["C"], _s["R"], _s["m0"], _s["P0"]


def _kal(**kw):
    return nss.KalmanLGSS(**dict(A=_A, B=_B, C=_C, R=_R, u0_mean=_m0, u0_cov=_P0,
                                 num_timesteps=_T) | kw)


def _joint(**kw):
    return nss.JointLGSS(**dict(A=_A, B=_B, C=_C, R=_R, u0=_s["u0"], noise=_s["noise"]) | kw)


def _quad(**kw):
    return nss.JointQuadraticSS(**dict(A_0=_s["A_0"], A_1=_A, A_2=_s["A_2"], B=_B, C_0=_s["C_0"],
                                       C_1=_C, C_2=_s["C_2"], R=_R, u0=_s["u0"],
                                       noise=_s["noise"]) | kw)


def _whitened(**kw):
    args = dict(A=_A, B=_B, C=_C, R=_R, y=_s["y"], u0=_s["u0"]) | kw
    return handlers.seed(nss.sample_noise, 0)("w", _T, _K, whiten=nss.Whitening(**args))


# (id, builder, substrings the message must contain: the argument name, then shapes)
BAD_INPUT = [
    ("A_not_square", lambda: _kal(A=np.ones((3, 2))), ["A", "(3, 2)"]),
    ("B_wrong_N", lambda: _kal(B=np.ones((2, 2))), ["B", "N = 3", "(2, 2)"]),
    ("C_wrong_N", lambda: _kal(C=np.ones((2, 4))), ["C", "N = 3", "(2, 4)"]),
    ("R_wrong_M", lambda: _kal(R=np.eye(3)), ["R", "(..., 2, 2)", "(3, 3)"]),
    ("R_vector_wrong_M", lambda: _kal(R=np.ones(3)), ["R", "(..., 2)", "(3,)"]),
    ("R_scalar", lambda: _joint(R=0.1), ["R", "(M,) variances", "M = 2", "scalar"]),
    ("R_batched_variances", lambda: _kal(R=np.ones((3, 2))), ["R", "(..., 2, 2)", "(3, 2)",
                                                             "Variances (M,) take no batch"]),
    ("u0_mean_wrong_N", lambda: _kal(u0_mean=np.zeros(2)), ["u0_mean", "(..., 3)", "(2,)"]),
    ("u0_cov_wrong_N", lambda: _kal(u0_cov=np.eye(2)), ["u0_cov", "(..., 3, 3)", "(2, 2)"]),
    ("u0_cov_bad_string", lambda: _kal(u0_cov="ergodic"), ["u0_cov", "stationary", "ergodic"]),
    ("mask_wrong_M", lambda: _kal(mask=jnp.ones((_T, 3), bool)), ["mask", "M = 2", "(6, 3)"]),
    ("mask_not_bool", lambda: _kal(mask=jnp.ones((_T, 2))), ["mask", "bool", "float"]),
    ("mask_wrong_T", lambda: _kal(mask=jnp.ones((_T + 1, 2), bool)), ["mask", "(..., 6, 2)",
                                                                      "(7, 2)"]),
    ("num_timesteps_missing", lambda: _kal(num_timesteps=None), ["num_timesteps"]),
    ("num_timesteps_float", lambda: _kal(num_timesteps=6.0), ["num_timesteps", "6.0"]),
    ("num_timesteps_negative", lambda: nss.ConditionalSS(_A, _B, _s["RN"], _s["u0"],
                                                         num_timesteps=np.int64(-1)),
     ["num_timesteps", "-1"]),
    ("method_unknown", lambda: _kal(method="associative"), ["method", "'auto'", "'sequential'",
                                                          "'parallel'"]),
    ("batch_not_broadcasting", lambda: _kal(A=np.stack([_A] * 3), R=np.stack([_R] * 2)),
     ["batch shapes", "(3,)", "(2,)"]),
    ("joint_noise_wrong_K", lambda: _joint(noise=np.zeros((_T, 3))), ["noise", "K = 2",
                                                                      "(6, 3)"]),
    ("joint_u0_wrong_N", lambda: _joint(u0=np.zeros(4)), ["u0", "(..., 3)", "(4,)"]),
    ("quad_A_2_wrong", lambda: _quad(A_2=np.zeros((3, 3))), ["A_2", "(..., 3, 3, 3)", "(3, 3)"]),
    ("quad_C_2_wrong", lambda: _quad(C_2=np.zeros((3, 3, 3))), ["C_2", "(..., 2, 3, 3)",
                                                                 "(3, 3, 3)"]),
    ("quad_A_0_wrong", lambda: _quad(A_0=np.zeros(2)), ["A_0", "(..., 3)", "(2,)"]),
    ("conditional_C_wrong", lambda: nss.ConditionalSS(_A, _B, _s["RN"], _s["u0"],
                                                      np.ones((2, 3)), num_timesteps=_T),
     ["C", "(..., 3, 3)", "(2, 3)"]),
    ("conditional_R_wrong", lambda: nss.ConditionalSS(_A, _B, _R, _s["u0"], num_timesteps=_T),
     ["R", "(..., 3, 3)", "(2, 2)"]),
    ("generic_transition_shape",
     lambda: nss.JointStateSpace(lambda x, w, p, t: x[:2], linear_observation,
                                 dict(A=_A, B=_B, C=_C), _R, _s["u0"], _s["noise"]),
     ["transition", "(3,)", "(2,)"]),
    ("generic_batched_p",
     lambda: nss.JointStateSpace(linear_transition, linear_observation,
                                 dict(A=np.stack([_A] * 2), B=_B, C=_C), _R, _s["u0"], _s["noise"]),
     ["transition", "(3,)", "(2, 3)", "p takes no batch dimensions"]),
    ("whiten_C_wrong_N", lambda: _whitened(C=np.ones((2, 4))), ["whiten.C", "N = 3", "(2, 4)"]),
    ("whiten_R_wrong_M", lambda: _whitened(R=np.eye(3)), ["whiten.R", "(..., 2, 2)", "(3, 3)"]),
    ("whiten_y_wrong_M", lambda: _whitened(y=np.ones((_T, 3))), ["whiten.y", "(..., 6, 2)",
                                                                 "(6, 3)"]),
    ("whiten_u0_wrong_N", lambda: _whitened(u0=np.zeros(2)), ["whiten.u0", "(..., 3)", "(2,)"]),
    ("whiten_A_wrong_N", lambda: _whitened(A=np.eye(2)), ["whiten.B", "(..., 2, 2)", "(3, 2)"]),
    ("whiten_offset_wrong_N", lambda: _whitened(state_offset=np.zeros(4)),
     ["whiten.state_offset", "(..., 3)", "(4,)"]),
    ("whiten_obs_offset_wrong_M", lambda: _whitened(obs_offset=np.zeros(3)),
     ["whiten.obs_offset", "(..., 2)", "(3,)"]),
    ("whiten_mask_wrong_M", lambda: _whitened(mask=np.ones((_T, 3), bool)),
     ["whiten.mask", "(..., 6, 2)", "(6, 3)"]),
    ("whiten_batches_not_broadcasting",
     lambda: _whitened(A=np.stack([_A] * 3), y=np.stack([_s["y"]] * 2)),
     ["batch shapes", "(3,)", "(2,)"]),
]

BAD_VALUE = [
    ("kalman_T_wrong", lambda: _kal().log_prob(np.zeros((_T + 1, 2))), ["value", "(..., 6, 2)",
                                                                       "(7, 2)"]),
    ("kalman_M_wrong", lambda: _kal().log_prob(np.zeros((_T, 3))), ["value", "(6, 3)"]),
    ("joint_T_wrong", lambda: _joint().log_prob(np.zeros((_T - 1, 2))), ["value", "(5, 2)"]),
    ("quad_M_wrong", lambda: _quad().log_prob(np.zeros((_T, 1))), ["value", "(6, 1)"]),
    ("conditional_M_wrong",
     lambda: nss.ConditionalSS(_A, _B, _s["RN"], _s["u0"], num_timesteps=_T).log_prob(
         np.zeros((_T, 2))), ["value", "(..., 6, 3)", "(6, 2)"]),
    ("kalman_value_1d", lambda: _kal().log_prob(np.zeros(_T * 2)), ["value", "(12,)"]),
]


@pytest.mark.parametrize("build, contains", [c[1:] for c in BAD_INPUT + BAD_VALUE],
                         ids=[c[0] for c in BAD_INPUT + BAD_VALUE])
def test_bad_input_raises_value_error(build, contains):
    with pytest.raises(ValueError) as err:
        build()
    msg = str(err.value)
    for part in contains:
        assert part in msg, f"{part!r} not in {msg!r}"


# ----------------------------------------------------------------------------------------------
# 10. mixed float dtypes, singular covariances under NumPyro's argument validation
# ----------------------------------------------------------------------------------------------

def _rounded(p, names):
    """``p`` with the arrays ``names`` as float32 (``f32``) and, for the reference, the same
    float32 values back in float64 (``ref``)."""
    f32 = {k: jnp.asarray(v, jnp.float32) if k in names else jnp.asarray(v) for k, v in p.items()}
    ref = {k: jnp.asarray(v, jnp.float64) for k, v in f32.items()}
    return f32, ref


_DTYPE_CASES = {
    "kalman": (lambda p: nss.KalmanLGSS(p["A"], p["B"], p["C"], p["R"], p["m0"], p["P0"], _T),
               ("A", "B", "C", "R", "m0", "P0")),
    "kalman_stationary": (lambda p: nss.KalmanLGSS(p["A"], p["B"], p["C"], p["R"], p["m0"],
                                                   "stationary", _T), ("A", "B")),
    "joint_lgss": (lambda p: nss.JointLGSS(p["A"], p["B"], p["C"], p["R"], p["u0"], p["noise"]),
                   ("u0", "noise")),
    "joint_pruned": (lambda p: nss.JointQuadraticSS(p["A_0"], p["A"], p["A_2"], p["B"], p["C_0"],
                                                    p["C"], p["C_2"], p["R"], p["u0"],
                                                    p["noise"], pruned=True), ("u0",)),
    "conditional": (lambda p: nss.ConditionalSS(p["A"], p["B"], p["RN"], p["u0"],
                                                num_timesteps=_T), ("u0",)),
}


@pytest.mark.parametrize("kind", list(_DTYPE_CASES))
def test_one_float32_parameter_among_float64_is_promoted(kind):
    """A float32 array among float64 ones (or float32 parameters with float64 data) once
    failed inside lax.scan (carry dtype changed by the body); now everything is promoted:
    the value equals the float64 distribution's at the same (rounded) numbers."""
    build, names = _DTYPE_CASES[kind]
    s = _small_linear()
    y = _data_for(kind)
    for group in [(n,) for n in names] + [tuple(s)]:  # each alone, then every array
        f32, ref = _rounded(s, group)
        # all parameters float32: what the constructor derives (the stationary covariance)
        # is float32 too, so only float32 accuracy against the float64 reference
        every = len(group) > 1
        sample_dtype, rtol = (jnp.float32, 1e-6) if every else (jnp.float64, REF_RTOL)
        d = build(f32)
        lp = d.log_prob(np.asarray(y))
        assert lp.dtype == jnp.float64, (group, lp.dtype)
        np.testing.assert_allclose(float(lp), float(LOG_PROB(build(ref), y)), rtol=rtol,
                                   err_msg=str(group))
        draw = d.sample(KEY(0))
        assert draw.dtype == sample_dtype and np.all(np.isfinite(np.asarray(draw))), group


def test_kalman_workflow_methods_with_float32_parameters_and_float64_data():
    s = _small_linear()
    f32, ref = _rounded(s, tuple(s))
    build = _DTYPE_CASES["kalman"][0]
    d, d_ref = build(f32), build(ref)
    y = np.asarray(s["y"])
    pairs = [(d.filter(y).log_likelihood, d_ref.filter(y).log_likelihood),
             (d.smooth(y).smoothed_means, d_ref.smooth(y).smoothed_means),
             (d.forecast(y, 3).obs_means, d_ref.forecast(y, 3).obs_means),
             (d.posterior_sample(KEY(2), y, 2), d_ref.posterior_sample(KEY(2), y, 2))]
    for got, want in pairs:
        assert got.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=REF_RTOL, atol=1e-12)


@pytest.mark.parametrize("field", ["u0", "u0_prior_mean", "noise"])
def test_solve_promotes_a_float32_field(field):
    s = _small_linear()
    f32, ref = _rounded(dict(s, u0_prior_mean=s["m0"]), (field,))

    def problem(p, alg):
        if isinstance(alg, nss.KalmanFilter):
            given = dict(u0_prior_mean=p["u0_prior_mean"], u0_prior_var=p["P0"])
        else:
            given = dict(noise=p["noise"])
        return nss.LinearStateSpaceProblem(p["A"], p["B"], p["u0"], _T, C=p["C"],
                                           observables_noise=p["R"], observables=p["y"],
                                           **given)
    for alg in (nss.KalmanFilter(), nss.DirectIteration()):
        got = nss.solve(problem(f32, alg), alg).logpdf
        assert got.dtype == jnp.float64
        np.testing.assert_allclose(float(got), float(nss.solve(problem(ref, alg), alg).logpdf),
                                   rtol=REF_RTOL)


def test_singular_covariances_pass_argument_validation():
    """NumPyro's positive_semidefinite check (eigenvalues >= 0 exactly) refused B B', whose
    smallest eigenvalue is -1e-17 from round-off, and the computed stationary covariance of a
    model with an uncontrollable direction. Both are valid; a negative definite R still fails."""
    m = dsge_singular(11, 60)
    B = np.asarray(m["B"])
    P0 = B @ B.T
    assert np.linalg.eigvalsh(P0)[0] < 0  # the round-off the check must tolerate
    d = nss.KalmanLGSS(m["A"], m["B"], m["C"], m["R"], m["m0"], P0, m["y"].shape[0],
                       validate_args=True)
    np.testing.assert_allclose(
        float(d.log_prob(m["y"])),
        statsmodels_loglik(m["A"], m["B"], m["C"], m["R"], m["m0"], P0, m["y"]), rtol=SM_RTOL)
    # an uncontrollable direction: the stationary covariance is singular
    rng = np.random.default_rng(3)
    Q, _ = np.linalg.qr(rng.standard_normal((2, 2)))
    A = Q @ np.diag([0.9, 0.5]) @ Q.T
    y = rng.standard_normal((8, 2))
    d = nss.KalmanLGSS(A, Q[:, :1], np.eye(2), np.array([0.1, 0.2]), np.zeros(2), "stationary",
                       8, validate_args=True)
    P = solve_discrete_lyapunov(A, Q[:, :1] @ Q[:, :1].T)
    np.testing.assert_allclose(
        float(d.log_prob(y)),
        statsmodels_loglik(A, Q[:, :1], np.eye(2), np.diag([0.1, 0.2]), np.zeros(2), P, y),
        rtol=SM_RTOL)
    nss.JointLGSS(m["A"], m["B"], m["C"], np.zeros((1, 1)), m["m0"], np.zeros((60, 1)),
                  validate_args=True)
    with pytest.raises(ValueError, match="invalid R"):
        nss.JointLGSS(m["A"], m["B"], m["C"], -np.eye(1), m["m0"], np.zeros((60, 1)),
                      validate_args=True)


# ----------------------------------------------------------------------------------------------
# 11. the rest of NumPyro's Distribution protocol: latent series, vmap_over
# ----------------------------------------------------------------------------------------------

def test_series_as_latent_site_and_imputed_series():
    """A series can be a latent site (NumPyro needs a bijection to the support) and
    ``obs_mask`` imputes a whole unobserved series of a plate: the model's density is the sum of
    the series' statsmodels log-likelihoods, and NUTS runs on it."""
    from numpyro.distributions.transforms import biject_to
    from numpyro.infer import MCMC, NUTS
    from numpyro.infer.util import log_density

    for kind in KINDS:
        t = biject_to(make_dist(kind, batched=False).support)
        x = jnp.asarray(_data_for(kind))
        np.testing.assert_array_equal(np.asarray(t(x)), np.asarray(x))
        assert float(jnp.sum(t.log_abs_det_jacobian(x, t(x)))) == 0.0
    s = _small_linear(16)
    d = nss.KalmanLGSS(s["A"], s["B"], s["C"], s["R"], s["m0"], s["P0"], _T)
    y = np.stack([s["y"], 0.5 * s["y"][::-1]])
    observed = np.array([True, False])

    def model(y):
        with numpyro.plate("series", 2):
            numpyro.sample("y", d, obs=y, obs_mask=observed)

    ld, _ = log_density(model, (y,), {}, {"y_unobserved": y})
    ref = sum(statsmodels_loglik(s["A"], s["B"], s["C"], s["R"], s["m0"], s["P0"], yi) for yi in y)
    np.testing.assert_allclose(float(ld), ref, rtol=SM_RTOL)
    mcmc = MCMC(NUTS(model), num_warmup=10, num_samples=10, progress_bar=False)
    mcmc.run(jax.random.key(0), y)
    draws = np.asarray(mcmc.get_samples()["y_unobserved"])
    assert draws.shape == (10, 2, _T, _M) and np.all(np.isfinite(draws))


def test_no_stationary_distribution_samples_nan():
    """An unstable ``A`` with ``u0_cov="stationary"``: ``log_prob`` is -inf, and ``sample`` and
    ``mean`` are NaN for that member (they used a stand-in covariance and simulated a model
    that does not exist), the stable members of the batch unaffected."""
    s = _small_linear(17)
    A = np.stack([s["A"], 3.0 * s["A"] / np.max(np.abs(np.linalg.eigvals(s["A"])))])
    d = nss.KalmanLGSS(A, s["B"], s["C"], s["R"], s["m0"], "stationary", _T)
    draws = np.asarray(SAMPLE(d, KEY(0), (4,)))
    assert draws.shape == (4, 2, _T, _M)
    assert np.all(np.isfinite(draws[:, 0])) and np.all(np.isnan(draws[:, 1]))
    mean = np.asarray(d.mean)
    assert np.all(np.isfinite(mean[0])) and np.all(np.isnan(mean[1]))
    lp = np.asarray(LOG_PROB(d, s["y"]))
    assert np.isfinite(lp[0]) and lp[1] == -np.inf


def test_vmap_over_maps_the_stationary_covariance_with_A():
    """``vmap_over(d, A=0)`` gives ``in_axes`` for ``jax.vmap`` over a stationary
    ``KalmanLGSS``: the covariance computed from ``A`` is mapped with it (before, each member
    was evaluated with every member's covariance: shape (3, 3))."""
    from numpyro.distributions.batch_util import vmap_over

    s = _small_linear(18)
    m0 = np.zeros(_N)
    rhos = (0.5, 0.8, 1.1)
    d = nss.KalmanLGSS(np.stack([r * s["A"] for r in rhos]), s["B"], s["C"], s["R"], m0,
                       "stationary", _T)
    got = jax.vmap(lambda d: d.log_prob(s["y"]), in_axes=(vmap_over(d, A=0),))(d)
    ref = [statsmodels_loglik(r * s["A"], s["B"], s["C"], s["R"], m0, s["P0"], s["y"],
                              prior_of="stationary") for r in rhos]
    np.testing.assert_allclose(np.asarray(got), ref, rtol=SM_RTOL)


def test_numpy_integer_num_timesteps():
    s = _small_linear(19)
    for T in (np.int64(_T), np.int32(_T)):
        d = nss.KalmanLGSS(s["A"], s["B"], s["C"], s["R"], s["m0"], s["P0"], T)
        c = nss.ConditionalSS(s["A"], s["B"], s["RN"], s["u0"], num_timesteps=T)
        assert d.event_shape == (_T, _M) and c.event_shape == (_T, _N)
        assert all(type(n) is int for n in (d.num_timesteps, c.num_timesteps)
                   + d.event_shape + c.event_shape)
    np.testing.assert_allclose(
        float(LOG_PROB(d, s["y"])),
        numpy_kalman_loglik(s["A"], s["B"], s["C"], s["R"], s["m0"], s["P0"], s["y"]),
        rtol=REF_RTOL)
