"""Perturbation solutions of DSGE models, differentiable in JAX.

- :mod:`.first_order`: Schmitt-Grohé–Uribe timing, first order (:func:`solve_first_order`);
- :mod:`.quadratic`: the matrix quadratic behind it (:func:`solve_quadratic`);
- :mod:`.guard`: :func:`log_prob_guard` for NumPyro models.
"""

from .first_order import (
    DSGEJacobians,
    FirstOrderSolution,
    first_order_from_jacobians,
    jacobians,
    solve_first_order,
)
from .guard import log_prob_guard
from .quadratic import solve_quadratic

__all__ = [
    "DSGEJacobians",
    "FirstOrderSolution",
    "first_order_from_jacobians",
    "jacobians",
    "log_prob_guard",
    "solve_first_order",
    "solve_quadratic",
]
