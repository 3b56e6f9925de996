"""numpyro_statespace: differentiable state-space models for NumPyro.

Solver layer (ports of DifferenceEquations.jl): problem types and :func:`solve`.
Distribution layer: NumPyro distributions whose ``log_prob`` is a state-space likelihood.
The package never changes JAX's global configuration; enable float64 yourself with
``jax.config.update("jax_enable_x64", True)`` when you need it.
"""

import warnings as _warnings

import jaxlib as _jaxlib

# See pyproject.toml: these jaxlib releases can deadlock vmapped linear algebra on CPU. The
# dependency excludes them; this catches an environment that installed one regardless.
if _jaxlib.__version__.startswith("0.10.") or _jaxlib.__version__ == "0.11.0":
    _warnings.warn(f"jaxlib {_jaxlib.__version__} can hang batched (vmapped) Cholesky and "
                   "triangular solves on CPU; numpyro_statespace needs jaxlib != 0.10.*, 0.11.0",
                   RuntimeWarning, stacklevel=2)

from .distributions import (  # noqa: E402
    ConditionalSS,
    Diffuse,
    JointLGSS,
    JointQuadraticSS,
    JointStateSpace,
    KalmanLGSS,
    Whitening,
    sample_noise,
)
from .inversion import InversionFilterLGSS, InversionFilterSS  # noqa: E402
from .problems import (  # noqa: E402
    LinearStateSpaceProblem,
    PrunedQuadraticStateSpaceProblem,
    QuadraticStateSpaceProblem,
    StateSpaceProblem,
)
from .solve import (  # noqa: E402
    ConditionalLikelihood,
    DirectIteration,
    KalmanFilter,
    StateSpaceSolution,
    default_algorithm,
    from_problem,
    solve,
)

__version__ = "0.1.0"

# Imported on first use (``import numpyro_statespace`` stays light; arviz and plots are
# separate modules imported on demand too).
_LAZY = {"dsge": ("dsge", None), "dynare": ("dynare", None),
         "structural": ("structural", None), "residuals": ("residuals", None),
         "diagnose": ("checks", "diagnose"), "Diagnosis": ("checks", "Diagnosis"),
         **{name: ("dsge", name) for name in ("DynareModel", "FirstOrderSolution",
                                              "SecondOrderSolution", "solve_first_order",
                                              "solve_second_order")}}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = importlib.import_module(f".{module}", __name__)
        value = value if attr is None else getattr(value, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    "ConditionalLikelihood",
    "FirstOrderSolution",
    "ConditionalSS",
    "Diagnosis",
    "Diffuse",
    "DynareModel",
    "JointLGSS",
    "JointQuadraticSS",
    "JointStateSpace",
    "InversionFilterLGSS",
    "InversionFilterSS",
    "KalmanLGSS",
    "Whitening",
    "from_problem",
    "sample_noise",
    "DirectIteration",
    "KalmanFilter",
    "LinearStateSpaceProblem",
    "PrunedQuadraticStateSpaceProblem",
    "QuadraticStateSpaceProblem",
    "SecondOrderSolution",
    "StateSpaceProblem",
    "StateSpaceSolution",
    "default_algorithm",
    "diagnose",
    "dsge",
    "dynare",
    "residuals",
    "solve",
    "solve_first_order",
    "solve_second_order",
    "structural",
]
