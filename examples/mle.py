"""Maximum likelihood with the Kalman filter: estimate beta in A = [[beta, 6.2], [0, 0.2]].

Simulates 200 periods of the two-state model of DifferenceEquations.jl's documentation (RBC
structure: capital and technology, consumption and capital observed with noise), then maximises
the Kalman log-likelihood over beta with L-BFGS-B (SciPy), the gradient coming from
``jax.grad``. Prints the estimate and the log-likelihood at the estimate and at the truth.
Run from the repository root: ``python examples/mle.py``.
"""

import _common  # noqa: F401  (float64, repository root on sys.path)
import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import minimize

import numpyro_statespace as nss

BETA_TRUE = 0.95
T = 200
B = jnp.array([[0.0], [0.01]])
C = jnp.array([[0.09579643002426148, 0.6746869652592109], [1.0, 0.0]])
R = 1e-4 * jnp.ones(2)  # a diagonal covariance as its variances: the filter's univariate update
u0 = jnp.zeros(2)


def transition_matrix(beta):
    return jnp.array([[beta, 6.2], [0.0, 0.2]])


def simulate(key):
    prob = nss.LinearStateSpaceProblem(transition_matrix(BETA_TRUE), B, u0, T, C=C,
                                       observables_noise=R)
    return nss.solve(prob, key=key).z[1:]


def make_loglik(y):
    @jax.jit
    def loglik(beta):
        prob = nss.LinearStateSpaceProblem(transition_matrix(beta), B, u0, T, C=C,
                                           observables_noise=R, observables=y,
                                           u0_prior_mean=u0, u0_prior_var=1e-4 * jnp.eye(2))
        return nss.solve(prob, nss.KalmanFilter()).logpdf

    return loglik


def estimate(y, beta0=0.8):
    """Maximise the log-likelihood over beta in (0, 1); returns ``(beta_hat, scipy result)``."""
    loglik = make_loglik(y)
    value_and_grad = jax.jit(jax.value_and_grad(lambda b: -loglik(b[0])))

    def objective(b):
        v, g = value_and_grad(jnp.asarray(b))
        return float(v), np.asarray(g, dtype=float)

    res = minimize(objective, x0=np.array([beta0]), jac=True, method="L-BFGS-B",
                   bounds=[(0.01, 0.999)], options={"gtol": 1e-10, "ftol": 1e-14})
    return float(res.x[0]), res


def main():
    y = simulate(jax.random.key(123))
    beta_hat, res = estimate(y)
    loglik = make_loglik(y)
    grad_at_hat = float(jax.grad(loglik)(beta_hat))
    print(f"true beta {BETA_TRUE:.6f}, estimate {beta_hat:.6f} ({res.nit} L-BFGS iterations)")
    print(f"log-likelihood at the estimate {float(loglik(beta_hat)):.6f}, "
          f"at the truth {float(loglik(BETA_TRUE)):.6f}")
    print(f"gradient at the estimate {grad_at_hat:.3e}")
    return beta_hat, y


if __name__ == "__main__":
    main()
