"""numpyro_statespace: differentiable state-space models for NumPyro.

Solver layer (ports of DifferenceEquations.jl): problem types and :func:`solve`.
Distribution layer: NumPyro distributions whose ``log_prob`` is a state-space likelihood.
The package never changes JAX's global configuration; enable float64 yourself with
``jax.config.update("jax_enable_x64", True)`` when you need it.
"""

from . import dsge
from .distributions import (
    ConditionalSS,
    JointLGSS,
    JointQuadraticSS,
    JointStateSpace,
    KalmanLGSS,
    Whitening,
    from_problem,
    sample_noise,
)
from .problems import (
    LinearStateSpaceProblem,
    PrunedQuadraticStateSpaceProblem,
    QuadraticStateSpaceProblem,
    StateSpaceProblem,
)
from .dsge import FirstOrderSolution, solve_first_order
from .solve import (
    ConditionalLikelihood,
    DirectIteration,
    KalmanFilter,
    StateSpaceSolution,
    default_algorithm,
    solve,
)

__version__ = "0.1.0"

__all__ = [
    "ConditionalLikelihood",
    "FirstOrderSolution",
    "ConditionalSS",
    "JointLGSS",
    "JointQuadraticSS",
    "JointStateSpace",
    "KalmanLGSS",
    "Whitening",
    "from_problem",
    "sample_noise",
    "DirectIteration",
    "KalmanFilter",
    "LinearStateSpaceProblem",
    "PrunedQuadraticStateSpaceProblem",
    "QuadraticStateSpaceProblem",
    "StateSpaceProblem",
    "StateSpaceSolution",
    "default_algorithm",
    "dsge",
    "solve",
    "solve_first_order",
]
