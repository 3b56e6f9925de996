"""The example scripts: run their main pieces and check what they claim."""

import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from _reference import statsmodels_loglik

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))

import mle  # noqa: E402

pytestmark = pytest.mark.workflow


def _statsmodels_loglik(beta, y):
    B, C, R = (np.asarray(x) for x in (mle.B, mle.C, mle.R))
    return statsmodels_loglik(np.asarray(mle.transition_matrix(beta)), B, C, np.diag(R),
                              np.zeros(2), 1e-4 * np.eye(2), np.array(y))


def test_mle_example_finds_the_maximum():
    beta_hat, y = mle.main()
    loglik = mle.make_loglik(y)
    assert float(loglik(beta_hat)) >= float(loglik(mle.BETA_TRUE))
    assert abs(float(jax.grad(loglik)(beta_hat))) < 1e-5
    assert 0.5 < beta_hat < 0.999
    # independent check: statsmodels' likelihood is maximal at the estimate too
    at_hat = _statsmodels_loglik(beta_hat, y)
    np.testing.assert_allclose(at_hat, float(loglik(beta_hat)), rtol=1e-8)
    for step in (-1e-3, 1e-3):
        assert _statsmodels_loglik(beta_hat + step, y) < at_hat


@pytest.mark.slow  # a NUTS compile of the .mod model: ~60 CPU seconds
def test_dynare_example_summarises_every_prior(monkeypatch):
    import dynare
    monkeypatch.setattr(dynare, "T", 60)
    monkeypatch.setattr(dynare, "WARMUP", 30)
    monkeypatch.setattr(dynare, "SAMPLES", 30)
    dfile, summary = dynare.main()
    assert list(summary.index) == list(dfile.priors)
    assert np.isfinite(summary["mean"].to_numpy()).all()


def test_panel_example_fits_a_small_panel():
    """examples/panel.py's NUTS on 6 series of 100 steps (short chains): no divergences, and
    the common measurement noise (the best identified pooled parameter) inside its 90%
    interval. (Much shorter series leave each volatility weakly determined, and the model's
    centred volatility then diverges: see models/panel.py.)"""
    import panel as panel_example

    from models import panel

    data = panel.simulate(2, 6, 100)
    mcmc = panel_example.fit(data["y"], num_warmup=60, num_samples=60)
    table, r_hat, divergences = panel_example.pooled_summary(mcmc, data)
    assert divergences == 0 and np.isfinite(r_hat)
    assert table["obs_sd"][-1], table["obs_sd"]
    assert mcmc.get_samples()["rho"].shape == (120, 6)
