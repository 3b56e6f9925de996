"""Conditional likelihood (prediction-error decomposition) of a fully observed model.

The state is clamped to the data: ``u_{t-1} = y_{t-1}`` (``u_0`` given), the prediction is
``z_t = g(f(y_{t-1}, w_t))`` and ``logpdf = sum_t log N(y_t; z_t, R)``. Because every prediction
starts from data, the steps are independent and are computed all at once with ``vmap``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .guards import finite_or
from .linalg import mvn_logpdf_iid


def clamped_states(u0, y):
    """``(T + 1, N)``: ``u_0`` followed by the data ``y_1..y_T`` the states are clamped to."""
    return jnp.concatenate([u0[None], y], axis=0)


def one_step_predictions(predict_obs, u0, y, noise):
    """``z_t = predict_obs(y_{t-1}, w_t, t - 1)`` for ``t = 1..T`` (``y_0 = u_0``); ``(T, M)``.

    ``predict_obs(x, w, t)`` maps the state at time ``t`` and the next shock to the predicted
    observation of the next state.
    """
    previous = clamped_states(u0, y)[:-1]
    times = jnp.arange(y.shape[0])
    return jax.vmap(predict_obs)(previous, noise, times)


def conditional_loglik(predictions, y, R):
    """``sum_t log N(y_t; z_t, R)`` for predictions and data ``(T, M)``.

    ``-inf`` (finite gradients) if ``R`` is not positive definite or a prediction overflowed.
    """
    predictions, ok = finite_or(predictions, 0.0)
    ll, _ = mvn_logpdf_iid(y - predictions, R)
    return jnp.where(ok & jnp.isfinite(ll), ll, -jnp.inf)
