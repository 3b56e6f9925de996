"""Under ``vmap`` the kernels' switches pick one branch for the whole batch (``kernels._batching``).

JAX turns a ``lax.cond`` on a batched predicate into a ``select`` that runs both branches for
every member, so NumPyro's vectorized chains would pay the full filter behind every
steady-state switch on every gradient. With the predicate reduced over the batch, the program
keeps its conditional; each member's value and gradient must still equal its own unbatched ones
(references: the unbatched kernels, which the other modules check against statsmodels, NumPy
loops and finite differences), both when every member takes the cheap branch and when one
member needs the exact fallback.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from numpyro_statespace import kernels
from numpyro_statespace.kernels._batching import unbatched_all
from _reference import input_shapes, record_results, simulate, spd, stable_matrix
from test_parallel import _predetermined
from test_steady_state import model as kalman_model


def _conds_outside_loops(jaxpr):
    """Number of ``cond`` equations in ``jaxpr`` and its sub-jaxprs (jit calls, branches),
    loop bodies left out (the switches are not inside loops)."""
    return len(input_shapes(jaxpr, "cond", skip=("scan", "while")))


def test_unbatched_all():
    assert bool(unbatched_all(jnp.array(True))) and not bool(unbatched_all(jnp.array(False)))
    preds = jnp.array([[True, True, False], [True, True, True]])
    # every member sees the batch's verdict; nested vmaps reduce each batch axis
    np.testing.assert_array_equal(jax.vmap(unbatched_all)(preds[1]), [True] * 3)
    np.testing.assert_array_equal(jax.vmap(unbatched_all)(preds[0]), [False] * 3)
    np.testing.assert_array_equal(jax.vmap(jax.vmap(unbatched_all))(preds), np.zeros((2, 3), bool))
    # a vector predicate is reduced over the batch axis only, entry by entry
    np.testing.assert_array_equal(jax.vmap(unbatched_all, in_axes=1)(preds), [[False, True]] * 3)
    # an unbatched predicate inside a vmapped function stays as it is
    np.testing.assert_array_equal(jax.vmap(lambda x: unbatched_all(jnp.array(True)) & (x > 0))(
        jnp.array([1.0, -1.0])), [True, False])


def _check_batch(f, members):
    """``vmap(value_and_grad(f))`` over ``members`` (a list of argument tuples): every
    conditional of the unbatched program is still a ``cond`` (a batched predicate would have
    made the switch a ``select``), and each member's value and gradient equal its unbatched
    ones."""
    stacked = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *members)
    value_and_grad = jax.value_and_grad(f, argnums=(0, 1))
    batched = jax.vmap(value_and_grad)
    unbatched = _conds_outside_loops(jax.make_jaxpr(value_and_grad)(*members[0]).jaxpr)
    assert unbatched > 0
    assert _conds_outside_loops(jax.make_jaxpr(batched)(*stacked).jaxpr) == unbatched
    values, grads = jax.jit(batched)(*stacked)
    single = jax.jit(value_and_grad)
    for i, args in enumerate(members):
        value, grad = single(*args)
        np.testing.assert_allclose(values[i], value, rtol=1e-12)
        for g_batch, g in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(grad)):
            np.testing.assert_allclose(g_batch[i], g, rtol=1e-9, atol=1e-12 * np.max(np.abs(g)))


@pytest.mark.parametrize("mixed", [False, True])
def test_kalman_steady_state_switch_under_vmap(mixed):
    """T = 1000, N = 4 (test_steady_state's models): the switch point is step 333. Mixed: the
    second member has a missing entry after it, so the batch runs the full filter (the first
    member's steady-state value equals it to round-off)."""
    members = [kalman_model(2), kalman_model(3)]
    if mixed:
        members[1]["y"][900, 0] = np.nan

    def f(A, B, C, R, m0, P0, y):
        return kernels.kalman_loglik(A, B, C, R, m0, P0, y)

    _check_batch(f, [tuple(jnp.asarray(m[k]) for k in ("A", "B", "C", "R", "m0", "P0", "y"))
                     for m in members])


def _whitening_member(seed, radius, obs_scale, T=80):
    rng = np.random.default_rng(seed)
    A, B = stable_matrix(rng, 3, radius), rng.standard_normal((3, 1))
    C, R = obs_scale * rng.standard_normal((2, 3)), spd(rng, 2, 0.3)
    y = simulate(rng, A, B, C, R, np.zeros(3), np.zeros((3, 3)), T)
    eps = rng.standard_normal((T, 1))
    return tuple(jnp.asarray(x) for x in (A, B, C, R, y, eps))


def _whitened(A, B, C, R, y, eps):
    info = kernels.backward_information(A, B, C, R, y, missing=False)
    w, logdet = kernels.whiten_shocks(eps, A, B, info, jnp.zeros(3))
    return jnp.sum(jnp.sin(w)) + logdet


@pytest.mark.parametrize("mixed", [False, True])
def test_whitening_steady_state_switch_under_vmap(mixed, monkeypatch):
    """Complete data, T = 80: the backward filter's precision has converged within the last 32
    steps for a well observed model, not for a weakly observed near unit root (checked with a
    spy on the convergence test), which then runs the full filter for the batch."""
    seen = record_results(monkeypatch, kernels.whitening, "_precision_converged")
    slow = _whitening_member(7, 0.999, 0.01)
    members = [_whitening_member(5, 0.5, 1.0), slow if mixed else _whitening_member(6, 0.5, 1.0)]

    def f(theta, eps):
        return _whitened(*theta, eps)

    _check_batch(f, [(m[:5], m[5]) for m in members])
    # the batched run comes first; the callback reports member by member
    assert seen[:2] == [True, not mixed]


def test_parallel_filter_fallback_under_vmap():
    """The parallel filter with a member whose elements are singular (test_parallel's exactly
    observed predetermined state, R = 0): the batch takes the sequential filter, the values and
    gradients stay each member's own; with measurement error in every member (regular elements)
    the batch keeps the associative scan."""
    theta, y = _predetermined()

    def f(theta, y):
        A, B, C, R, m0, P0 = theta
        return kernels.parallel_loglik(A, B, C, R, m0, P0, y)

    def member(R):
        return (tuple(jnp.asarray(theta[k]) for k in ("A", "B", "C")) + (jnp.asarray(R),)
                + tuple(jnp.asarray(theta[k]) for k in ("m0", "P0")), jnp.asarray(y))

    R_noisy = 0.05 * np.eye(2)
    _check_batch(f, [member(R_noisy), member(theta["R"])])
    _check_batch(f, [member(R_noisy), member(2 * R_noisy)])
