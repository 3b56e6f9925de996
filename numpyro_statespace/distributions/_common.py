"""What every distribution of the package shares: Gaussian draws through a (singular)
covariance factor, ``log_prob`` as one compiled program, and the moments of a linear model."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .. import kernels
from .._validation import float_leaves, promote_floats
from ..kernels.linalg import psd_factor


def _psd_factor(S):
    """``F`` with ``F F' = S`` for (batches of) positive semi-definite ``S``, singular allowed."""
    return jnp.vectorize(psd_factor, signature="(n,n)->(n,n)")(S)


def _require_unbatched(d, what):
    """The workflow methods take one model: refuse a batched distribution."""
    if d.batch_shape:
        raise ValueError(f"{what} works on an unbatched distribution; batch_shape is "
                         f"{d.batch_shape} (build it inside jax.vmap instead)")


def _gaussian(key, shape, factor):
    """Draws ``F e`` with ``e ~ N(0, I)``: ``shape + (factor.shape[-2],)``, broadcast over batch."""
    e = jax.random.normal(key, shape + factor.shape[-1:], factor.dtype)
    return jnp.einsum("...ij,...j->...i", factor, e)



def _log_prob(d, value, options):
    """``d._log_prob(value, *options)``, parameters and ``value`` in their common dtype;
    ``options`` holds what must be decided outside a trace: whether ``value`` may hold NaN
    (before tracing hides its values), which filter ``method="auto"`` means on this backend."""
    dtype = jnp.result_type(value, *float_leaves(d))
    return promote_floats(d, dtype)._log_prob(value.astype(dtype), *options)


# The same as one compiled program (the distribution is a pytree: its arrays are the arguments,
# its options part of the cache key). NumPyro evaluates a model and its gradient op by op while
# it initialises a sampler, and eager users call log_prob directly; without this every
# operation of the likelihood would be compiled on its own. Inside a jitted caller it is inlined.
_compiled_log_prob = jax.jit(_log_prob, static_argnums=2)


class _LinearMoments:
    """``mean`` and ``variance`` of ``y_t``, ``batch_shape + event_shape``, by the moment
    recursion of the linear model ``(A, B, C, R, u0_mean, u0_cov, ok)`` that
    ``_linear_model()`` returns (NaN where ``ok`` is 0: no stationary distribution)."""

    @property
    def mean(self):
        return self._moments()[0]

    @property
    def variance(self):
        """Entrywise."""
        return self._moments()[1]

    def _moments(self):
        def single(A, B, C, R, m0, P0, ok):
            f = kernels.forecast(A, B, C, R, m0, P0, self.num_timesteps)
            var = jnp.diagonal(f.obs_covs, axis1=-2, axis2=-1)
            return tuple(jnp.where(ok > 0, x, jnp.nan) for x in (f.obs_means, var))

        means, var = jnp.vectorize(
            single, signature="(n,n),(n,k),(m,n),(m,m),(n),(n,n),()->(t,m),(t,m)")(
            *self._linear_model())
        shape = self.batch_shape + self.event_shape
        return jnp.broadcast_to(means, shape), jnp.broadcast_to(var, shape)

