"""Pure JAX kernels: ``lax.scan``/``vmap`` over time, no NumPyro, jit/vmap/grad safe."""

from .conditional import clamped_states, conditional_loglik, one_step_predictions
from .direct import (
    generic_observations,
    generic_states,
    joint_loglik,
    linear_observations,
    linear_states,
    may_have_missing,
    quadratic_observations,
    quadratic_states,
    reported_path,
)
from .kalman import KalmanFilterResult, kalman_filter, predict, update
from .likelihood import kalman_loglik
from .lyapunov import stationary_covariance
from .offsets import observation_shift, offset_path, shifted_data
from .parallel import parallel_loglik
from .smoother import (
    FilterDetails,
    ForecastResult,
    ImpulseResponse,
    SmootherResult,
    filter_details,
    forecast,
    impulse_response,
    impulse_response_pruned,
    posterior_sample,
    rts_smoother,
    simulation_smoother,
)
from .whitening import BackwardInformation, backward_information, whiten_shocks

__all__ = [
    "BackwardInformation",
    "backward_information",
    "whiten_shocks",
    "FilterDetails",
    "ForecastResult",
    "ImpulseResponse",
    "KalmanFilterResult",
    "SmootherResult",
    "filter_details",
    "forecast",
    "impulse_response",
    "impulse_response_pruned",
    "posterior_sample",
    "rts_smoother",
    "simulation_smoother",
    "clamped_states",
    "conditional_loglik",
    "generic_observations",
    "generic_states",
    "joint_loglik",
    "kalman_filter",
    "kalman_loglik",
    "linear_observations",
    "linear_states",
    "may_have_missing",
    "observation_shift",
    "offset_path",
    "one_step_predictions",
    "parallel_loglik",
    "predict",
    "quadratic_observations",
    "quadratic_states",
    "reported_path",
    "shifted_data",
    "stationary_covariance",
    "update",
]
