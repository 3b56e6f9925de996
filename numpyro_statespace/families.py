r"""Model families: the one place that knows a linear model from a quadratic or a generic one.

A family is a small pytree holding one model's arrays (unbatched where it is iterated, as in
the ``single`` functions the distributions vectorise) and answering what every consumer asks:

- sizes: ``n_states`` ``N``, ``n_shocks`` ``K``, ``n_obs`` ``M`` (0 without an observation
  equation, ``has_observation`` False);
- ``states(u0, noise)`` -> ``(u, uf, ok, valid)``: the path ``u_0..u_T`` and the state that
  feeds the quadratic terms (``uf``: the first-order state when pruned, else ``u``), with the
  state kernels' flags;
- ``observe(u, uf)`` -> ``z_0..z_T``; ``predict(x, w, t)``: the observation one step ahead of
  a known state ``x`` (the conditional likelihood clamps the state to the data);
- ``first_order()``: the linear part ``(Linear, state_offset, obs_offset)``, whose shock
  posterior whitens the noise (:class:`~numpyro_statespace.Whitening`);
- ``impulse_response(steps, shock)`` where the family defines one;
- ``linear_gaussian``: the Kalman filter applies; ``callbacks``: the model holds user
  functions (a compiled program per model would be keyed on them).

Problems (:mod:`.problems`), ``solve``, the distributions and :mod:`.arviz` consume these
objects; a new family (a structural time-series model, a second-order DSGE solution in its
own form) is one new class here. The conventions the families share are declared once below:
``B=None`` (:func:`shock_loading`), the observation noise (:func:`declared_diagonal`,
:func:`filter_form`) and missing data (:func:`masked_system`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.distributions import constraints

from . import kernels
from .kernels.kalman import observed_mask
from .kernels.linalg import quad

__all__ = [
    "Generic",
    "Linear",
    "Quadratic",
    "covariance_form",
    "declared_diagonal",
    "filter_form",
    "masked_system",
    "shock_loading",
]


# -- conventions --------------------------------------------------------------------------------
def shock_loading(B, N, dtype):
    """``B``, or ``(N, 0)`` zeros for ``B=None`` (a model without shocks): every kernel takes a
    loading, and ``K = 0`` columns make the noise an empty ``(T, 0)`` array."""
    return jnp.zeros((N, 0), dtype) if B is None else B


def declared_diagonal(R):
    """Whether an observation-noise argument declares a diagonal covariance: ``(M,)``
    variances. Declared, never detected from the values: a static choice decided from a
    leaf's values would outlive them under ``grad`` or ``vmap`` (a zero gradient for the
    off-diagonal entries of a matrix that happens to be diagonal). The covariance itself is
    always stored as ``(..., M, M)``."""
    return np.ndim(R) == 1


def filter_form(R, diagonal):
    """The observation noise as the Kalman kernels take it: the ``(M,)`` variances where it
    was declared diagonal (the univariate update, no factorisation), else ``(M, M)``."""
    return jnp.diagonal(R, axis1=-2, axis2=-1) if diagonal else R


def covariance_form(R):
    """The ``(M, M)`` covariance of an observation noise in either form of :func:`filter_form`."""
    return jnp.diag(R) if R.ndim == 1 else R


def masked_system(y, mask):
    """``(y with missing entries zeroed, observed (T, M) bools)``: an entry is missing where
    ``mask`` is False or ``y`` is NaN. The zeros keep products with a missing entry finite
    (and their gradients NaN-free); every consumer then selects with ``observed``."""
    observed = observed_mask(y, mask)
    return jnp.where(observed, y, 0.0), observed


# -- families --------------------------------------------------------------------------------
def _pytree(data, meta=()):
    """Register a dataclass family as a pytree: arrays are data, the rest static."""
    def register(cls):
        return jax.tree_util.register_dataclass(cls, data_fields=list(data),
                                                meta_fields=list(meta))
    return register


class _Loaded:
    """Sizes of a family whose shocks load through ``B``: ``N`` from the square matrix named
    ``_transition_matrix``, ``M`` from the one named ``_observation_matrix`` (``None``: 0)."""

    _transition_matrix = "A"
    _observation_matrix = "C"

    @property
    def n_states(self):
        return getattr(self, self._transition_matrix).shape[-1]

    @property
    def n_shocks(self):
        return self.B.shape[-1]

    @property
    def n_obs(self):
        C = getattr(self, self._observation_matrix)
        return 0 if C is None else C.shape[-2]

    @property
    def has_observation(self):
        return getattr(self, self._observation_matrix) is not None


@_pytree(("A", "B", "C"))
@dataclass(frozen=True)
class Linear(_Loaded):
    r""":math:`u_t = A u_{t-1} + B w_t`, :math:`z_t = C u_t` (``C=None``: no observation
    equation). ``B`` is ``(N, K)`` (see :func:`shock_loading`)."""

    A: Any
    B: Any
    C: Any = None

    linear_gaussian = True
    callbacks = False
    has_impulse_response = True

    def states(self, u0, noise):
        u, ok, valid = kernels.linear_states(self.A, self.B, u0, noise, per_step=True)
        return u, u, ok, valid

    def observe(self, u, uf):
        return kernels.linear_observations(self.C, u)

    def predict(self, x, w, t):
        x = self.A @ x + self.B @ w
        return x if self.C is None else self.C @ x

    def first_order(self):
        return self, None, None

    def impulse_response(self, steps, shock=None, u0=None):
        return kernels.impulse_response(self.A, self.B, self.C, steps, shock)


@_pytree(("A_0", "A_1", "A_2", "B", "C_0", "C_1", "C_2"), ("pruned",))
@dataclass(frozen=True)
class Quadratic(_Loaded):
    r""":math:`u_t = A_0 + A_1 u_{t-1} + \mathrm{quad}(A_2, \tilde u_{t-1}) + B w_t`,
    :math:`z_t = C_0 + C_1 u_t + \mathrm{quad}(C_2, \tilde u_t)`, with :math:`\tilde u` the
    first-order state :math:`\tilde u_t = A_1 \tilde u_{t-1} + B w_t` when ``pruned`` (Andreasen,
    Fernández-Villaverde and Rubio-Ramírez 2017), else :math:`u`. ``C_1=None``: no observation
    equation (``C_0``, ``C_2`` then ``None`` too)."""

    A_0: Any
    A_1: Any
    A_2: Any
    B: Any
    C_0: Any = None
    C_1: Any = None
    C_2: Any = None
    pruned: bool = False

    #: The constraints of the family's arrays, in order (shared by every distribution of it).
    arg_constraints = {
        "A_0": constraints.real_vector,
        "A_1": constraints.real_matrix,
        "A_2": constraints.independent(constraints.real, 3),
        "B": constraints.real_matrix,
        "C_0": constraints.real_vector,
        "C_1": constraints.real_matrix,
        "C_2": constraints.independent(constraints.real, 3),
    }
    #: Their ``jnp.vectorize`` signature, in the same order.
    signature = "(n),(n,n),(n,n,n),(n,k),(m),(m,n),(m,n,n)"
    _transition_matrix = "A_1"
    _observation_matrix = "C_1"
    linear_gaussian = False
    callbacks = False

    @property
    def has_impulse_response(self):
        # the unpruned second-order model may explode: its responses are not defined
        return self.pruned

    def states(self, u0, noise):
        return kernels.quadratic_states(self.A_0, self.A_1, self.A_2, self.B, u0, noise,
                                        self.pruned, per_step=True)

    def observe(self, u, uf):
        return kernels.quadratic_observations(self.C_0, self.C_1, self.C_2, u, uf)

    def predict(self, x, w, t):
        # Clamped at the data, the previous state (pruned: and its first-order part) is the
        # observed one; the pruned observation's quadratic term then takes the first-order
        # state uf_t = A_1 y_{t-1} + B w_t, as in the pruned convention.
        x_next = self.A_0 + self.A_1 @ x + quad(self.A_2, x) + self.B @ w
        if self.C_1 is None:
            return x_next
        uf = self.A_1 @ x + self.B @ w if self.pruned else x_next
        return self.C_0 + self.C_1 @ x_next + quad(self.C_2, uf)

    def first_order(self):
        return Linear(self.A_1, self.B, self.C_1), self.A_0, self.C_0

    def impulse_response(self, steps, shock=None, u0=None):
        return kernels.impulse_response_pruned(self.A_0, self.A_1, self.A_2, self.B, self.C_0,
                                               self.C_1, self.C_2, steps, shock, u0)


@_pytree(("p",), ("transition", "observation", "n_states", "n_shocks", "n_obs", "t0"))
@dataclass(frozen=True)
class Generic:
    """``u_{t+1} = transition(u_t, w_{t+1}, p, t0 + t)``, ``z_t = observation(u_t, p, t0 + t)``
    (``observation=None``: no observation equation). ``p`` is any pytree; the callbacks, sizes
    and ``t0`` are static."""

    transition: Callable
    observation: Optional[Callable]
    p: Any
    n_states: int
    n_shocks: int
    n_obs: int
    t0: int = field(default=0)

    linear_gaussian = False
    callbacks = True
    has_impulse_response = False

    @property
    def has_observation(self):
        return self.observation is not None

    def states(self, u0, noise):
        u, ok, valid = kernels.generic_states(self.transition, self.p, u0, noise, self.t0,
                                              per_step=True)
        return u, u, ok, valid

    def observe(self, u, uf):
        return kernels.generic_observations(self.observation, self.p, u, self.t0)

    def predict(self, x, w, t):
        x = self.transition(x, w, self.p, self.t0 + t)
        return x if self.observation is None else self.observation(x, self.p, self.t0 + t + 1)

    def first_order(self):
        raise ValueError("a generic model has no first-order part: pass the Whitening's "
                         "linearised matrices explicitly")

    def impulse_response(self, steps, shock=None, u0=None):
        raise ValueError("impulse responses are defined for linear and pruned quadratic models")
