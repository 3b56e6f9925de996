r"""NumPyro distributions over a whole observed series ``y_1..y_T``.

Every class here has ``event_shape == (T, M)`` and a ``batch_shape`` broadcast from the leading
dimensions of its parameters, so ``numpyro.plate`` over series and ``vmap`` over parameter draws
work. ``log_prob`` calls the kernels of :mod:`numpyro_statespace.kernels`; numerical failure
gives ``-inf`` with finite gradients, so NUTS rejects the proposal instead of crashing.

=====================  ==================================================================
class                  likelihood
=====================  ==================================================================
:class:`KalmanLGSS`    marginal (Kalman filter), shocks integrated out
:class:`JointLGSS`     linear model given the noise
:class:`JointQuadraticSS`  quadratic or pruned-quadratic model given the noise
:class:`JointStateSpace`   generic callbacks given the noise
:class:`ConditionalSS` fully observed linear model, prediction-error decomposition
=====================  ==================================================================

One concept per module: :mod:`.kalman`, :mod:`.joint`, :mod:`.conditional`, :mod:`.noise`
(the noise primitive and its whitening), :mod:`.priors` (stationary and diffuse priors of
``u_0``), :mod:`.validators` (constraints and argument checks).
"""

from ._common import _compiled_log_prob  # noqa: F401  (tests count its compiled programs)
from .conditional import ConditionalSS
from .joint import JointLGSS, JointQuadraticSS, JointStateSpace
from .kalman import KalmanLGSS
from .noise import Whitening, sample_noise
from .priors import Diffuse


def __getattr__(name):
    # ``from_problem`` belongs to the solver layer (a problem to its distribution); it stays
    # reachable as ``numpyro_statespace.distributions.from_problem`` without this package
    # importing the layer above it at import time.
    if name == "from_problem":
        from ..solve import from_problem

        return from_problem
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ConditionalSS",
    "Diffuse",
    "JointLGSS",
    "JointQuadraticSS",
    "JointStateSpace",
    "KalmanLGSS",
    "Whitening",
    "from_problem",
    "sample_noise",
]
