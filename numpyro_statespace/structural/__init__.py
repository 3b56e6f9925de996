"""Structural time-series models (statsmodels' ``UnobservedComponents``, TFP's ``sts``):
components combined with ``+`` into one :class:`StructuralModel` that yields the linear state
space, the :class:`~numpyro_statespace.KalmanLGSS` and a NumPyro model with default priors."""

from .components import (
    Autoregressive,
    Block,
    Component,
    Cycle,
    Level,
    LocalLinearTrend,
    MeasurementError,
    Param,
    Regression,
    Seasonal,
    SmoothTrend,
    TrigSeasonal,
    pacf_to_ar,
)
from .model import StructuralModel, StructuralSystem

__all__ = [
    "Autoregressive", "Block", "Component", "Cycle", "Level", "LocalLinearTrend",
    "MeasurementError", "Param", "Regression", "Seasonal", "SmoothTrend", "StructuralModel",
    "StructuralSystem", "TrigSeasonal", "pacf_to_ar",
]
