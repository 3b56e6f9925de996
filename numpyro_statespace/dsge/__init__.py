"""Perturbation solutions of DSGE models, differentiable in JAX.

- :mod:`.first_order`: Schmitt-Grohé–Uribe timing, first order (:func:`solve_first_order`);
- :mod:`.quadratic`: the matrix quadratic behind it (:func:`solve_quadratic`);
- :mod:`.second_order`: second order (:func:`solve_second_order`), with the Sylvester
  equation of :mod:`.sylvester`;
- :mod:`.dynare_timing`: models in Dynare timing (:class:`DynareModel`);
- :mod:`.steady_state`: Newton steady states with implicit derivatives;
- :mod:`.guard`: :func:`log_prob_guard` for NumPyro models.
"""

from .dynare_timing import DynareModel
from .first_order import (
    DSGEJacobians,
    FirstOrderSolution,
    first_order_from_jacobians,
    jacobians,
    solve_first_order,
)
from .guard import log_prob_guard
from .quadratic import solve_quadratic
from .second_order import SecondOrderSolution, solve_second_order
from .steady_state import newton_steady_state
from .sylvester import solve_kron_sylvester

__all__ = [
    "DSGEJacobians",
    "DynareModel",
    "FirstOrderSolution",
    "SecondOrderSolution",
    "first_order_from_jacobians",
    "jacobians",
    "log_prob_guard",
    "newton_steady_state",
    "solve_first_order",
    "solve_kron_sylvester",
    "solve_quadratic",
    "solve_second_order",
]
