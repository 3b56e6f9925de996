"""The noise primitive: the shocks as a latent site (:func:`sample_noise`), optionally
whitened by the shock posterior of a linear(ised) model (:class:`Whitening`)."""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from .. import kernels
from .._validation import promote_floats
from ..kernels.guards import finite_tree
from .validators import _batch_shape, _obs_cov, _param, _sized, _square

__all__ = ["Whitening", "sample_noise"]


class Whitening(NamedTuple):
    r"""The linear(ised) model whose shock posterior whitens a latent noise site.

    ``u_t = state_offset + A u_{t-1} + B w_t``, ``y_t = obs_offset + C u_t + v_t``,
    ``v_t ~ N(0, R)``, from the known ``u0``. For a quadratic or pruned-quadratic model pass
    its first-order part: ``A = A_1``, ``C = C_1``, ``state_offset = A_0``,
    ``obs_offset = C_0``. ``y (T, M)`` may hold NaN (missing); ``y=None`` (e.g. prior
    predictive) disables the whitening. Every field may carry leading batch dimensions (series
    in a ``numpyro.plate``), as the distributions' parameters do; each series is whitened by
    its own posterior.
    """

    A: Any
    B: Any
    C: Any
    R: Any
    y: Any
    u0: Any
    mask: Any = None
    state_offset: Any = None
    obs_offset: Any = None


def _whitening_args(whiten, T, K):
    """``(A, B, C, R, y, mask, u0, state_offset, obs_offset)`` of ``whiten`` checked against
    ``T`` steps and ``K`` shocks (leading batch dimensions allowed, as for the distributions);
    ``R`` as ``(..., M, M)``, defaults filled in (all observed, zero offsets)."""
    A = _square("whiten.A", whiten.A)
    N = A.shape[-1]
    B = _param("whiten.B", whiten.B, (N, K), "(N, K)")
    C = _sized("whiten.C", whiten.C, -1, N, "M, N")
    M = C.shape[-2]
    R = _obs_cov(whiten.R, M, "whiten.R")
    y = _param("whiten.y", whiten.y, (T, M), "(T, M)")
    mask = jnp.ones((T, M), bool) if whiten.mask is None else jnp.asarray(whiten.mask)
    if mask.dtype != jnp.bool_ or mask.shape[-2:] != (T, M):
        raise ValueError(f"whiten.mask must be a bool array of shape (..., T, M) = "
                         f"(..., {T}, {M}); got {mask.dtype} {tuple(mask.shape)}")
    u0 = _param("whiten.u0", whiten.u0, (N,), "(N,)")
    a = (jnp.zeros(N, A.dtype) if whiten.state_offset is None
         else _param("whiten.state_offset", whiten.state_offset, (N,), "(N,)"))
    d = (jnp.zeros(M, A.dtype) if whiten.obs_offset is None
         else _param("whiten.obs_offset", whiten.obs_offset, (M,), "(M,)"))
    _batch_shape((A, 2), (B, 2), (C, 2), (R, 2), (y, 2), (mask, 2), (u0, 1), (a, 1), (d, 1))
    return A, B, C, R, y, mask, u0, a, d


def sample_noise(name, num_timesteps, n_shocks, *, whiten=None):
    r"""The shocks ``w_1..w_T`` as a latent ``N(0, I)`` site of shape ``(T, K)``.

    Use it with a joint likelihood: ``w = sample_noise("w", T, K)`` then
    ``numpyro.sample("y", JointLGSS(A, B, C, R, u0, w), obs=y)``.

    With ``whiten=Whitening(A, B, C, R, y, u0, ...)`` the sampler sees standardised shocks
    instead: ``eps ~ N(0, I)`` (site ``name + "_white"``) and
    ``w = mean(theta, y) + L(theta, y) eps`` (a deterministic site ``name``), where the mean and
    the block-triangular factor ``L`` come from the whitening model's shock posterior (see
    :mod:`numpyro_statespace.kernels.whitening`) and the factor
    :math:`\log N(w; 0, I) - \log N(\epsilon; 0, I) + \log|L|` (site ``name + "_jacobian"``)
    keeps the model's density exactly that of ``w ~ N(0, I)``. For a linear Gaussian model the
    posterior of ``eps`` is exactly ``N(0, I)`` and independent of the parameters, which removes
    the shock–parameter coupling that makes NUTS crawl on the plain latent route.

    The factor is an observed site to NumPyro: ``numpyro.infer.util.log_likelihood`` (and
    ArviZ's ``from_numpyro`` with ``log_likelihood=True``) return it beside the data's site,
    so select the data's site by name.
    """
    if whiten is not None and not isinstance(whiten, Whitening):
        raise ValueError(f"whiten must be a Whitening(A, B, C, R, y, u0, ...); got "
                         f"{type(whiten).__name__}")
    if whiten is None or whiten.y is None:
        return numpyro.sample(
            name, dist.Normal(0.0, 1.0).expand((num_timesteps, n_shocks)).to_event(2))
    eps = numpyro.sample(f"{name}_white",
                         dist.Normal(0.0, 1.0).expand((num_timesteps, n_shocks)).to_event(2))
    missing = kernels.may_have_missing(whiten.y, whiten.mask)  # before y becomes a tracer
    eps, (A, B, C, R, y, mask, u0, a, d) = promote_floats(
        (eps, _whitening_args(whiten, num_timesteps, n_shocks)))
    (A, B, C, R, u0, a, d), ok = finite_tree((A, B, C, R, u0, a, d))  # y: NaN is missing
    w, correction = _whitened_noise(eps, A, B, C, R, y, mask, u0, a, d, ok, missing)
    numpyro.factor(f"{name}_jacobian", correction)
    return numpyro.deterministic(name, w)


@partial(jax.jit, static_argnums=11)
def _whitened_noise(eps, A, B, C, R, y, mask, u0, a, d, ok, missing):
    """``w (..., T, K)`` from ``eps`` and the log-density correction of the change of
    variables (``(...)``, one per series of a batch).

    One compiled program, as :func:`_compiled_log_prob` (``missing`` decided before tracing).
    """
    def single(eps, A, B, C, R, y, mask, u0, a, d):
        info = kernels.backward_information(A, B, C, R, y, mask, a, d, missing=missing)
        w, logdet = kernels.whiten_shocks(eps, A, B, info, u0, a)
        return w, 0.5 * (jnp.sum(eps**2) - jnp.sum(w**2)) + logdet

    w, correction = jnp.vectorize(
        single, signature="(t,k),(n,n),(n,k),(m,n),(m,m),(t,m),(t,m),(n),(n),(m)->(t,k),()")(
        eps, A, B, C, R, y, mask, u0, a, d)
    return w, jnp.where(ok & jnp.isfinite(correction), correction, -jnp.inf)


