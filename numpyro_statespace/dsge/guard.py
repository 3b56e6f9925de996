"""NumPyro glue: reject parameters without a solution (imports NumPyro only when called)."""

from __future__ import annotations

import jax.numpy as jnp

__all__ = ["log_prob_guard"]


def log_prob_guard(name, ok):
    """In a NumPyro model: add ``-inf`` to the log density where ``ok`` is False.

    ``numpyro.factor(name, where(ok, 0, -inf))``; the likelihood built from the finite
    stand-in matrices stays finite, so gradients are finite and NUTS rejects the proposal.
    """
    import numpyro

    numpyro.factor(name, jnp.where(ok, 0.0, -jnp.inf))
