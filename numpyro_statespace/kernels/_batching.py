"""One branch for a whole ``vmap`` batch.

The kernels choose between a cheap computation and an exact fallback with ``lax.cond`` (the
steady-state switches of the Kalman filter and of the whitening's backward filter, the parallel
filter's fallback to the sequential one). Under ``vmap`` a predicate that differs between
members turns JAX's ``cond`` into a ``select`` that evaluates *both* branches for every member,
so the fallback (a full filter) runs even when no member needs it: NumPyro's vectorized chains,
for one, would pay it on every gradient. :func:`unbatched_all` makes the predicate one boolean
for the batch, so the conditional stays a conditional: the cheap branch when every member
qualifies, the exact fallback for all members otherwise. Both branches give the same numbers
(to round-off) wherever the cheap one applies, so only the cost depends on the batch.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.custom_batching import custom_vmap


@custom_vmap
def unbatched_all(pred):
    """``pred`` itself; under ``vmap``, ``all(pred)`` over the batch, unbatched.

    For boolean switches only: no derivative flows through a predicate, and ``custom_vmap``
    functions do not support reverse mode on floating inputs.
    """
    return pred


@unbatched_all.def_vmap
def _unbatched_all_rule(axis_size, in_batched, pred):
    (batched,) = in_batched
    # called again so that an enclosing vmap reduces its own axis too
    return unbatched_all(jnp.all(pred, axis=0) if batched else pred), False
