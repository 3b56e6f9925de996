"""Simulate the RBC model from DifferenceEquations.jl's test suite and evaluate its likelihoods.

Run from the repository root: ``python examples/rbc_likelihoods.py``. It

1. simulates 200 periods of the first-order RBC model (states k, z; observables c, k) with
   measurement noise, from a fixed key;
2. prints the Kalman-filter marginal log-likelihood and the joint log-likelihood given the
   simulated shocks, for the simulated data and for the bundled reference data;
3. prints the gradient of both with respect to ``A`` (reverse mode).
"""

import _common  # noqa: F401  (float64, repository root on sys.path)
import jax
import jax.numpy as jnp
from models import reference_data

import numpyro_statespace as nss


def main():
    rbc = reference_data.rbc()
    A, B, C, R = (jnp.asarray(rbc[k]) for k in ("A", "B", "C", "R"))
    T = rbc["observables"].shape[0]
    u0 = jnp.zeros(2)
    P0 = nss.kernels.stationary_covariance(A, B @ B.T)[0]

    # 1. simulate: noise drawn from the key, observation noise added since R is given
    sim = nss.solve(nss.LinearStateSpaceProblem(A, B, u0, T, C=C, observables_noise=R,
                                                syms=("k", "z"), obs_syms=("c", "k_obs")),
                    key=jax.random.key(2026))
    y, w = sim.z[1:], sim.W
    print(f"simulated {T} periods: u {sim.u.shape}, y {y.shape}, shocks {w.shape}")
    print(f"  mean of c: {float(sim['c'][1:].mean()):+.5f}, sd of k: {float(sim['k'].std()):.5f}")

    for label, data, noise in (("simulated", y, w),
                               ("bundled reference", jnp.asarray(rbc["observables"]),
                                jnp.asarray(rbc["noise"]))):
        kalman = nss.LinearStateSpaceProblem(A, B, u0, T, C=C, observables_noise=R,
                                             observables=data, u0_prior_mean=u0,
                                             u0_prior_var=P0)
        joint = kalman.replace(noise=noise)
        ll_kalman = nss.solve(kalman).logpdf               # default: KalmanFilter
        ll_joint = nss.solve(joint).logpdf                 # default: DirectIteration
        print(f"{label} data:")
        print(f"  Kalman (marginal) log-likelihood: {float(ll_kalman):.6f}")
        print(f"  joint log-likelihood given noise: {float(ll_joint):.6f}")

    def kalman_ll(A):
        prob = nss.LinearStateSpaceProblem(A, B, u0, T, C=C, observables_noise=R, observables=y,
                                           u0_prior_mean=u0, u0_prior_var=P0)
        return nss.solve(prob, nss.KalmanFilter()).logpdf

    def joint_ll(A):
        prob = nss.LinearStateSpaceProblem(A, B, u0, T, C=C, observables_noise=R, observables=y,
                                           noise=w)
        return nss.solve(prob).logpdf

    print("d logpdf / dA (Kalman):\n", jax.grad(kalman_ll)(A))
    print("d logpdf / dA (joint):\n", jax.grad(joint_ll)(A))


if __name__ == "__main__":
    main()
