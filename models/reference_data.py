"""Loaders for the bundled DifferenceEquations.jl test data (see ``data/README.md``).

Everything is returned as float64 NumPy arrays, time-major; convert with ``jnp.asarray``.
The RBC and 5-state Kalman matrices are printed in the reference suite rather than stored as
files, so they are spelled out here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data"


def load_csv(name):
    """``data/<name>.csv`` as a 2-D array (a single column stays a column)."""
    return np.loadtxt(DATA_DIR / f"{name}.csv", delimiter=",", ndmin=2)


def _tensor(name, shape):
    # Julia writes arrays column-major.
    return load_csv(name).reshape(shape, order="F")


def rbc():
    """RBC model (2 states, 1 shock, 2 observables): first- and second-order matrices, data.

    Keys: ``A, B, C`` (first order), ``A_0, A_1, A_2, C_0, C_1, C_2`` (second order),
    ``R`` (``diag(0.01, 0.01)``), ``u0``, ``noise (200, 1)``, ``observables (200, 2)``.
    """
    A = np.array([[0.9568351489231076, 6.209371005755285],
                  [3.0153731819288737e-18, 0.20000000000000007]])
    C = np.array([[0.09579643002426148, 0.6746869652592109], [1.0, 0.0]])
    A_2 = np.zeros((2, 2, 2))
    A_2[0] = [[-0.00019761505863889124, 0.03375055315837927],
              [0.03375055315837913, 3.128758481817603]]
    C_2 = np.zeros((2, 2, 2))
    C_2[0] = [[-0.00018554166974717046, 0.0025652363153049716],
              [0.002565236315304951, 0.3132705036896446]]
    return dict(
        A=A, B=np.array([[0.0], [-0.01]]), C=C,
        A_0=np.array([-7.824904812740593e-5, 0.0]), A_1=A, A_2=A_2,
        C_0=np.array([7.824904812740593e-5, 0.0]), C_1=C, C_2=C_2,
        R=np.diag([0.01, 0.01]), u0=np.zeros(2),
        noise=load_csv("RBC_noise"), observables=load_csv("RBC_observables"),
    )


def fvgq20():
    """FVGQ20 DSGE model (14 states, 6 shocks, 6 observables, 232 periods).

    Keys: ``A, B, C`` (first order), ``A_0, A_1, A_2, C_0, C_1, C_2`` (second order), ``D``
    (observation-noise standard deviations), ``ergodic`` (a state covariance), ``R``
    (``1e-3 I_6``, the value of the reference likelihoods), ``u0``, ``noise``, ``observables``.
    """
    A_1 = load_csv("FVGQ20_A_1")
    n, m = A_1.shape[0], load_csv("FVGQ20_C_1").shape[0]
    return dict(
        A=load_csv("FVGQ20_A"), B=load_csv("FVGQ20_B"), C=load_csv("FVGQ20_C"),
        A_0=load_csv("FVGQ20_A_0")[:, 0], A_1=A_1, A_2=_tensor("FVGQ20_A_2", (n, n, n)),
        C_0=load_csv("FVGQ20_C_0")[:, 0], C_1=load_csv("FVGQ20_C_1"),
        C_2=_tensor("FVGQ20_C_2", (m, n, n)), D=load_csv("FVGQ20_D")[:, 0],
        ergodic=load_csv("FVGQ20_ergodic"), R=1e-3 * np.eye(m), u0=np.zeros(n),
        noise=load_csv("FVGQ20_noise"), observables=load_csv("FVGQ20_observables"),
    )


def kalman_test_model():
    """The 5-state, 3-shock, 4-observable Kalman test model and its 200 periods of data.

    Keys: ``A, B, C, R`` (``0.01 I_4``), ``R_offdiag``, ``u0_prior_mean`` (zeros),
    ``u0_prior_var`` (``I_5``), ``noise (200, 3)``, ``observables (200, 4)``.
    """
    A = np.array([[0.0495388, 0.0109918, 0.0960529, 0.0767147, 0.0404643],
                  [0.020344, 0.0627784, 0.00865501, 0.0394004, 0.0601155],
                  [0.0260677, 0.039467, 0.0344606, 0.033846, 0.00224089],
                  [0.0917289, 0.081082, 0.0341586, 0.0591207, 0.0411927],
                  [0.0837549, 0.0515705, 0.0429467, 0.0209615, 0.014668]])
    B = np.array([[0.589064, 0.97337, 2.32677],
                  [0.864922, 0.695811, 0.618615],
                  [2.07924, 1.11661, 0.721113],
                  [0.995325, 1.8416, 2.30442],
                  [1.76884, 1.56082, 0.749023]])
    C = np.array([[0.0979797, 0.114992, 0.0964536, 0.110065, 0.0946794],
                  [0.110095, 0.0856981, 0.0841296, 0.0981172, 0.0811817],
                  [0.109134, 0.103406, 0.112622, 0.0925896, 0.112384],
                  [0.0848231, 0.0821602, 0.099332, 0.113586, 0.115105]])
    R_offdiag = np.array([[0.01, 0, 0, 0], [0, 0.02, 0.005, 0.01],
                          [0, 0.005, 0.03, 0], [0, 0.01, 0, 0.04]])
    return dict(
        A=A, B=B, C=C, R=0.01 * np.eye(4), R_offdiag=R_offdiag,
        u0_prior_mean=np.zeros(5), u0_prior_var=np.eye(5),
        noise=load_csv("Kalman_noise"), observables=load_csv("Kalman_observables"),
    )
