"""The Bayesian workflow around the likelihood: ArviZ conversion, plots, examples, notebook.

The example scripts run in short mode (``NSS_SHORT=1``) as subprocesses, two at a time,
started at the beginning of this module, so they run while the in-process tests do.
"""

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import numpyro
import pandas as pd
import pytest
from numpyro.infer import MCMC, NUTS, Predictive

import numpyro_statespace as nss
from models import rbc_reduced_form as rbc

matplotlib.use("Agg")

import arviz as az  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from numpyro_statespace import arviz as nss_az  # noqa: E402
from numpyro_statespace import plots  # noqa: E402

pytestmark = pytest.mark.workflow

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {
    # script: figures it must write (in the order they are started: longest first).
    # examples/quickstart.py is not here: it is the README's main job, which CI (.ci/run) runs
    # in full before the tests; its pieces (NUTS on RBC, ArviZ, plot_states) are tested below.
    "forecasting": ["forecasting_fit.png", "forecasting_fan.png"],
    "structural": ["structural_components.png", "structural_diagnostics.png"],
    "joint_latent_shocks": ["joint_latent_shocks.png", "joint_latent_shocks_irf.png"],
    "svi": ["svi.png"],
}
EXAMPLE_TIMEOUT = 900  # the wait for each one, queue included
T = 40
NAMES = {"syms": rbc.NAMES["state"], "shock_names": rbc.NAMES["shock"]}


# -- the example scripts, started first --------------------------------------------------------
class _ExampleRunner:
    """Runs the example scripts in short mode in the background, ``workers`` at a time (on two
    cores the in-process tests share them while they last)."""

    def __init__(self, names, tmp_path_factory, workers=2):
        self.queue = list(names)
        self.figures = {n: tmp_path_factory.mktemp(f"figures_{n}") for n in names}
        self.done = {n: threading.Event() for n in names}
        self.returncodes, self.running, self.stopped = {}, {}, False
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._work, daemon=True) for _ in range(workers)]
        for thread in self.threads:
            thread.start()

    def _work(self):
        while True:
            with self.lock:
                if self.stopped or not self.queue:
                    return
                name = self.queue.pop(0)
                env = {**os.environ, "NSS_SHORT": "1", "NSS_FIGURES": str(self.figures[name]),
                       "MPLBACKEND": "Agg"}
                with open(self.figures[name] / "output.log", "w") as out:
                    proc = subprocess.Popen(
                        [sys.executable, str(ROOT / "examples" / f"{name}.py")], cwd=ROOT,
                        env=env, stdout=out, stderr=subprocess.STDOUT)
                self.running[name] = proc
            self.returncodes[name] = proc.wait()
            self.done[name].set()

    def stop(self):
        with self.lock:
            self.stopped = True
            for proc in self.running.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


@pytest.fixture(scope="module", autouse=True)
def example_runs(request, tmp_path_factory):
    """Start the selected example scripts (in the background, before the other tests)."""
    selected = {item.callspec.params["example"] for item in request.session.items
                if item.originalname == "test_example_runs_in_short_mode"
                and item.module is request.module}
    runner = _ExampleRunner([n for n in EXAMPLES if n in selected], tmp_path_factory)
    yield runner
    runner.stop()


# -- a short NUTS run on a DataFrame with a DatetimeIndex --------------------------------------
@pytest.fixture(scope="module")
def data():
    y = np.asarray(jax.jit(rbc.simulate, static_argnums=1)(jax.random.key(11), T))
    index = pd.date_range("2001-01-01", periods=T, freq="QS")
    return pd.DataFrame(y, index=index, columns=list(rbc.NAMES["observable"]))


@pytest.fixture(scope="module")
def fitted(data):
    mcmc = MCMC(NUTS(rbc.kalman_model, init_strategy=numpyro.infer.init_to_median),
                num_warmup=30, num_samples=20, num_chains=2, chain_method="vectorized",
                progress_bar=False)
    mcmc.run(jax.random.key(12), data.to_numpy())
    idata = nss_az.to_inference_data(mcmc, y=data, **NAMES)
    nss_az.add_states(idata, mcmc, key=jax.random.key(13))
    nss_az.add_posterior_predictive(idata, mcmc, key=jax.random.key(14))
    nss_az.add_forecast(idata, mcmc, 6, key=jax.random.key(15))
    nss_az.add_impulse_responses(idata, mcmc, 8)
    return mcmc, idata


def test_inference_data_has_named_dims_and_coords(fitted, data):
    _, idata = fitted
    obs = idata.observed_data["y"]
    assert obs.dims == ("time", "observable")
    np.testing.assert_array_equal(obs["time"].values, data.index.values)  # the DatetimeIndex
    assert list(obs["observable"].values) == ["c", "k_obs"]
    np.testing.assert_allclose(obs.values, data.to_numpy())
    assert list(idata.posterior.data_vars) == ["a", "rho", "sigma"]
    assert idata.posterior["a"].shape == (2, 20)
    assert "diverging" in idata.sample_stats
    # the state-space coordinates travel with the data, for the add_* helpers
    assert list(idata.observed_data["state"].values) == ["k", "z"]
    assert list(idata.observed_data["shock"].values) == ["eps_z"]

    states = idata.posterior_states
    for var in ("state_path", "smoothed_state", "filtered_state", "smoothed_state_sd"):
        assert states[var].dims == ("chain", "draw", "time_with_initial", "state")
        assert states[var].shape == (2, 20, T + 1, 2)
    assert list(states["state"].values) == ["k", "z"]
    # u_0 is one quarter before y_1
    assert states["time_with_initial"].values[0] == np.datetime64("2000-10-01")
    np.testing.assert_array_equal(states["time_with_initial"].values[1:], data.index.values)
    assert states["fitted_obs"].dims == ("chain", "draw", "time", "observable")

    pp = idata.posterior_predictive["y"]
    assert pp.dims == ("chain", "draw", "time", "observable") and pp.shape == (2, 20, T, 2)
    assert np.all(np.isfinite(pp.values))

    fc = idata.predictions
    assert fc["y"].dims == ("chain", "draw", "forecast_time", "observable")
    assert fc["state_path"].dims == ("chain", "draw", "forecast_time", "state")
    expected = pd.date_range(data.index[-1], periods=7, freq="QS")[1:]
    np.testing.assert_array_equal(fc["forecast_time"].values, expected.values)

    irf = idata.impulse_responses
    assert irf["state_response"].dims == ("chain", "draw", "shock", "horizon", "state")
    assert irf["observable_response"].shape == (2, 20, 1, 8, 2)
    assert list(irf["shock"].values) == ["eps_z"]


def test_irregular_time_index(fitted, data):
    """Business days with holidays (no pandas frequency): ``u_0`` is labelled one first step
    before ``y_1`` (the states were on positions 0..T beside dated observations), and a
    forecast needs its dates: a clear error without ``forecast_time`` (the fan was drawn at
    positions T + 1.., i.e. in 1970), the given labels with it. NumPy integer steps pass."""
    mcmc, _ = fitted
    index = pd.bdate_range("2024-01-02", periods=T + 3).delete([5, 17, 30])
    frame = pd.DataFrame(data.to_numpy(), index=index, columns=data.columns)
    idata = nss_az.to_inference_data(mcmc, y=frame, **NAMES)
    nss_az.add_states(idata, mcmc, key=jax.random.key(13))
    time0 = idata.posterior_states["time_with_initial"].values
    assert time0[0] == index[0] - (index[1] - index[0])
    np.testing.assert_array_equal(time0[1:], index.values)
    with pytest.raises(ValueError, match="no regular spacing.*forecast_time"):
        nss_az.add_forecast(idata, mcmc, 3, key=jax.random.key(15))
    future = pd.bdate_range(index[-1], periods=4)[1:]
    nss_az.add_forecast(idata, mcmc, np.int64(3), key=jax.random.key(15), forecast_time=future)
    np.testing.assert_array_equal(idata.predictions["forecast_time"].values, future.values)
    with pytest.raises(ValueError, match="forecast_time must have steps = 3"):
        nss_az.add_forecast(idata, mcmc, 3, key=jax.random.key(15), forecast_time=future[:2])


def test_groups_match_direct_computations(fitted, data):
    _, idata = fitted
    y = data.to_numpy()

    @jax.jit
    @jax.vmap
    def direct(a, rho, sigma):
        A, B, C = rbc.matrices(a, rho, sigma)
        d = nss.KalmanLGSS(A, B, C, rbc.R, jnp.zeros(2), "stationary", T)
        sm = d.smooth(y)
        return {"smoothed_state": sm.smoothed_means,
                "smoothed_state_sd": jnp.sqrt(jnp.diagonal(sm.smoothed_covs, axis1=-2,
                                                           axis2=-1)),
                "filtered_state": d.filter(y).filtered_means,
                "y_mean": d.forecast(y, 6).obs_means,
                "state_response": d.impulse_response(8).states, "C": C}

    post = idata.posterior
    draws = (np.array([0, 1]), np.array([0, 7]))   # (chain, draw) pairs
    want = direct(*(jnp.asarray(post[k].values[draws]) for k in ("a", "rho", "sigma")))
    for group in ("posterior_states", "predictions", "impulse_responses"):
        for var in idata[group].data_vars:
            if var in want:
                np.testing.assert_allclose(idata[group][var].values[draws], want[var],
                                           rtol=1e-8, atol=1e-14, err_msg=var)
    path = idata.posterior_states["state_path"].values[draws]
    np.testing.assert_allclose(idata.posterior_states["fitted_obs"].values[draws],
                               np.einsum("stn,smn->stm", path[:, 1:], want["C"]), rtol=1e-8,
                               atol=1e-14)


def test_arviz_diagnostics_run(fitted, tmp_path):
    _, idata = fitted
    idata.to_netcdf(tmp_path / "idata.nc")      # custom groups and datetime coords save
    back = az.from_netcdf(tmp_path / "idata.nc")
    assert "posterior_states" in back.groups() and "impulse_responses" in back.groups()
    summary = az.summary(idata)
    assert list(summary.index) == ["a", "rho", "sigma"]
    assert np.all(np.isfinite(summary["mean"]))
    axes = az.plot_trace(idata)
    assert axes.shape == (3, 2)
    plt.close("all")


def test_latent_noise_gets_shock_dims_and_states():
    """A dict of draws (e.g. from a guide) through the joint model: w has dims (time, shock)
    and the state paths equal a direct simulation."""
    draws = Predictive(rbc.joint_model, num_samples=5)(jax.random.key(22), num_timesteps=25)
    y = np.asarray(draws["y"][0])  # data from the first prior draw
    idata = nss_az.to_inference_data(draws, model=rbc.joint_model, model_args=(y,),
                                     obs_syms=("c", "k"), **NAMES)
    assert "y" not in idata.posterior  # the observed site is not a parameter
    assert idata.posterior["w"].dims == ("chain", "draw", "time", "shock")
    np.testing.assert_array_equal(idata.posterior["time"].values, np.arange(1, 26))
    assert list(idata.observed_data["observable"].values) == ["c", "k"]
    nss_az.add_states(idata, draws, model=rbc.joint_model, model_args=(y,))
    A, B, _ = rbc.matrices(draws["a"][3], draws["rho"][3], draws["sigma"][3])
    u = nss.kernels.linear_states(A, B, jnp.zeros(2), draws["w"][3])[0]
    np.testing.assert_allclose(idata.posterior_states["state_path"][0, 3], u, rtol=1e-10)
    np.testing.assert_array_equal(idata.posterior_states["time_with_initial"].values,
                                  np.arange(26))
    with pytest.raises(ValueError, match="KalmanLGSS"):
        nss_az.add_forecast(idata, draws, 3, key=jax.random.key(0), model=rbc.joint_model,
                            model_args=(y,))


def _panel_model(y=None, num_series=3, num_timesteps=None):
    """Panel data: series in a plate sharing a, rho, sigma, whitened shocks per series."""
    T = y.shape[-2] if y is not None else num_timesteps
    A, B, C = rbc.matrices(*rbc.priors())
    with numpyro.plate("series", num_series):
        w = nss.sample_noise("w", T, 1, whiten=nss.Whitening(A, B, C, rbc.R, y, jnp.zeros(2)))
        numpyro.sample("y", nss.JointLGSS(A, B, C, rbc.R, jnp.zeros(2), w), obs=y)


def test_panel_model_gets_a_series_dimension():
    """A plate over series: its sites get the plate's dimension in front of (time, .) (once
    `time` landed on the series axis and ArviZ refused the coordinates); the per-series helpers
    refuse it with a clear message."""
    prior = Predictive(_panel_model, num_samples=1)(jax.random.key(3), num_timesteps=20)
    y = np.asarray(prior["y"][0])  # (3, 20, 2)
    draws = Predictive(_panel_model, num_samples=4)(jax.random.key(4), y)
    idata = nss_az.to_inference_data(draws, model=_panel_model, model_args=(y,), **NAMES)
    assert idata.posterior["w"].dims == ("chain", "draw", "series", "time", "shock")
    assert idata.posterior["w_white"].dims == ("chain", "draw", "series", "time", "shock")
    assert idata.observed_data["y"].dims == ("series", "time", "observable")
    np.testing.assert_array_equal(idata.observed_data["y"].values, y)
    with pytest.raises(ValueError, match="one series"):
        nss_az.add_states(idata, draws, model=_panel_model, model_args=(y,))


def test_bad_names_raise(fitted, data):
    mcmc, _ = fitted
    with pytest.raises(ValueError, match="syms"):
        nss_az.to_inference_data(mcmc, y=data, syms=("k",))
    with pytest.raises(ValueError, match="time"):
        nss_az.to_inference_data(mcmc, time=np.arange(T + 1))
    with pytest.raises(ValueError, match="MCMC"):
        nss_az.to_inference_data([1, 2, 3])


def test_import_is_light():
    code = ("import sys, numpyro_statespace; "
            "assert 'arviz' not in sys.modules and 'matplotlib' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# -- plots ------------------------------------------------------------------------------------
def _check_png(fig, path):
    for ax in fig.axes:
        if ax.get_visible():
            assert ax.lines or ax.collections, "an empty panel"
    fig.savefig(path, dpi=60)
    plt.close(fig)
    assert path.is_file() and path.stat().st_size > 5000


@pytest.mark.parametrize("name", ["observed_fitted", "states", "shocks", "forecast",
                                  "irf_states", "irf_observables", "irf_point"])
def test_plots_write_nonempty_png(fitted, tmp_path, name):
    _, idata = fitted
    d = nss.KalmanLGSS(*rbc.matrices(0.95, 0.2, 0.01), rbc.R, jnp.zeros(2), jnp.eye(2), 3)
    make = {
        "observed_fitted": lambda: plots.plot_observed_fitted(idata),
        "states": lambda: plots.plot_states(idata, truth=np.zeros((T + 1, 2))),
        "shocks": lambda: plots.plot_states(idata, "fitted_obs", prob=0.5),
        "forecast": lambda: plots.plot_forecast(idata, history=12),
        "irf_states": lambda: plots.plot_impulse_responses(idata),
        "irf_observables": lambda: plots.plot_impulse_responses(idata, kind="observable"),
        "irf_point": lambda: plots.plot_impulse_responses(
            jax.jit(lambda: d.impulse_response(10))(), names=["k", "z"]),
    }
    fig = make[name]()
    assert isinstance(fig, matplotlib.figure.Figure) and fig.axes
    _check_png(fig, tmp_path / f"{name}.png")


def test_plots_draw_into_given_axes(fitted, tmp_path):
    _, idata = fitted
    fig, axes = plt.subplots(2, 2)
    assert plots.plot_observed_fitted(idata, axes=axes[0]) is fig
    assert plots.plot_states(idata, axes=axes[1]) is fig
    _check_png(fig, tmp_path / "combined.png")
    with pytest.raises(ValueError, match="axes"):
        plots.plot_states(idata, axes=axes[0, :1])
    plt.close("all")


def test_plot_errors(fitted, monkeypatch):
    _, idata = fitted
    bare = az.from_dict(posterior={"a": np.zeros((1, 3))})
    with pytest.raises(ValueError, match="posterior_states"):
        plots.plot_states(bare)
    with pytest.raises(ValueError, match="not in group"):
        plots.plot_states(idata, "nope")
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"\[examples\]"):
        plots.plot_states(idata)


# -- KalmanLGSS workflow methods (lightly; tests/test_smoother.py has the full checks) ---------
def test_kalman_methods_match_kernels(data):
    y = data.to_numpy().copy()
    y[5, 0] = np.nan
    A, B, C = rbc.matrices(jnp.asarray(0.95), jnp.asarray(0.3), jnp.asarray(0.01))
    P0 = jnp.eye(2) * 0.01
    d = nss.KalmanLGSS(A, B, C, rbc.R, jnp.zeros(2), P0, T)
    got, want = jax.jit(lambda y: (d.smooth(y), nss.kernels.rts_smoother(
        A, B, C, rbc.R, jnp.zeros(2), P0, y)))(y)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15)
    fc = jax.eval_shape(lambda y: d.forecast(y, 5), y)
    assert fc.state_means.shape == (5, 2) and fc.state_covs.shape == (5, 2, 2)
    assert fc.obs_means.shape == (5, 2) and fc.obs_covs.shape == (5, 2, 2)


# -- examples and notebook --------------------------------------------------------------------
@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_example_runs_in_short_mode(example_runs, example):
    if not example_runs.done[example].wait(timeout=EXAMPLE_TIMEOUT):
        example_runs.stop()
        pytest.fail(f"examples/{example}.py (or the ones before it) did not finish in "
                    f"{EXAMPLE_TIMEOUT} s")
    figures = example_runs.figures[example]
    output = (figures / "output.log").read_text()
    returncode = example_runs.returncodes.get(example)
    assert returncode == 0, f"examples/{example}.py failed:\n{output[-4000:]}"
    for name in EXAMPLES[example]:
        path = figures / name
        assert path.is_file() and path.stat().st_size > 10_000, f"{name} not written"
    if example in ("forecasting", "joint_latent_shocks"):
        assert "r_hat" in output and "sigma" in output  # the ArviZ summary
    if example == "joint_latent_shocks":
        assert "('chain', 'draw', 'time', 'shock')" in output
    if example == "structural":
        assert "elpd_loo" in output and "trend_level_sigma" in output
        assert "Warning" not in output


#: executes the notebook's code cells in order, in one namespace, from examples/ (as Jupyter would)
_RUN_NOTEBOOK = """
import sys, nbformat, matplotlib.pyplot as plt
sys.path.insert(0, ".")
namespace = {}
for i, cell in enumerate(c for c in nbformat.read(sys.argv[1], as_version=4).cells
                         if c.cell_type == "code"):
    exec(compile(cell.source, f"diagnostics.ipynb[{i}]", "exec"), namespace)
    plt.close("all")
"""


def test_notebook_is_valid_in_sync_and_runs(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import build_notebook
    finally:
        sys.path.remove(str(ROOT / "examples"))
    path = ROOT / "examples" / "diagnostics.ipynb"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    built = build_notebook.build()
    assert [(c.cell_type, c.source) for c in nb.cells] == \
        [(c.cell_type, c.source) for c in built.cells], \
        "examples/diagnostics.ipynb is stale: run python examples/build_notebook.py"
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for needed in ("plot_trace", "plot_rank", "plot_pair"):
        assert needed in text
    env = {**os.environ, "NSS_SHORT": "1", "NSS_FIGURES": str(tmp_path), "MPLBACKEND": "Agg"}
    run = subprocess.run([sys.executable, "-c", _RUN_NOTEBOOK, str(path)], cwd=ROOT / "examples",
                         env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]


def test_readme_shows_the_quickstart_figure():
    readme = (ROOT / "README.md").read_text()
    assert "docs/quickstart.png" in readme
    assert (ROOT / "docs" / "quickstart.png").is_file()
    for script in EXAMPLES:
        assert f"examples/{script}.py" in readme


# -- per-step log-likelihoods, residuals, data checks ------------------------------------------
def test_log_likelihood_group_is_per_step_and_loo_runs(fitted, data):
    _, idata = fitted
    ll = idata.log_likelihood["y"]
    assert ll.dims == ("chain", "draw", "time") and ll.shape == (2, 20, T)
    np.testing.assert_array_equal(ll["time"].values, data.index.values)
    post = idata.posterior
    A, B, C = rbc.matrices(*(post[k].values[1, 3] for k in ("a", "rho", "sigma")))
    d = nss.KalmanLGSS(A, B, C, rbc.R, jnp.zeros(2), "stationary", T)
    # the terms sum to the likelihood at that draw
    np.testing.assert_allclose(ll.values[1, 3].sum(), d.log_prob(data.to_numpy()), rtol=1e-10)
    loo = az.loo(idata)
    assert loo.n_data_points == T and np.isfinite(loo.elpd_loo)


def test_residuals_and_terms_equal_statsmodels():
    from tests._reference import statsmodels_filter
    from numpyro_statespace.residuals import pointwise_log_likelihood, standardized_residuals
    rng = np.random.default_rng(3)
    A = np.array([[0.7, 0.2], [-0.1, 0.5]])
    B = np.array([[0.5], [0.3]])
    C = np.array([[1.0, 0.4], [0.2, 1.0]])
    R = np.array([[0.3, 0.1], [0.1, 0.2]])
    m0, P0 = np.array([0.1, -0.2]), np.eye(2)
    y = rng.normal(size=(30, 2))
    y[rng.random((30, 2)) < 0.15] = np.nan
    y[7] = np.nan
    res = statsmodels_filter(A, B, C, R, m0, P0, y)
    d = nss.KalmanLGSS(A, B, C, R, m0, P0, 30)
    np.testing.assert_allclose(pointwise_log_likelihood(d, pd.DataFrame(y)), res.llf_obs,
                               rtol=1e-10, atol=1e-12)
    e = standardized_residuals(d, y)
    want = res.standardized_forecasts_error.T
    np.testing.assert_array_equal(np.isnan(e), np.isnan(y))
    np.testing.assert_allclose(e[~np.isnan(y)], want[~np.isnan(y)], rtol=1e-9)
    # a joint likelihood's terms: Gaussian densities of y_t around the path, missing left out
    w = rng.normal(size=(30, 1))
    j = nss.JointLGSS(A, B, C, R, m0, w)
    z = np.asarray(j.mean_path())
    from scipy.stats import multivariate_normal
    want = [multivariate_normal(z[t][o], R[np.ix_(o, o)]).logpdf(y[t][o]) if o.any() else 0.0
            for t in range(30) for o in [~np.isnan(y[t])]]
    np.testing.assert_allclose(pointwise_log_likelihood(j, y), want, rtol=1e-10)
    np.testing.assert_allclose(np.sum(want), j.log_prob(y), rtol=1e-10)


def test_data_of_the_wrong_length_is_refused(fitted, data):
    mcmc, _ = fitted
    with pytest.raises(ValueError, match=r"y has shape \(T, M\) = \(39, 2\) but the model's "
                                         r"site 'y' observes \(40, 2\)"):
        nss_az.to_inference_data(mcmc, y=data.iloc[1:])
    with pytest.raises(ValueError, match="y must be the data"):
        nss_az.to_inference_data(mcmc, y="y")


def test_period_index_stays_periods(fitted, data):
    mcmc, _ = fitted
    frame = data.set_axis(pd.period_range("2001Q1", periods=T, freq="Q"))
    idata = nss_az.to_inference_data(mcmc, y=frame, log_likelihood=False, **NAMES)
    time = idata.observed_data["time"].values
    assert isinstance(time[0], pd.Period) and str(time[0]) == "2001Q1"  # not timestamps
    assert "log_likelihood" not in idata.groups()
    nss_az.add_forecast(idata, mcmc, 3, key=jax.random.key(15))
    future = idata.predictions["forecast_time"].values
    assert isinstance(future[0], pd.Period) and str(future[0]) == "2011Q1"
    fig = plots.plot_forecast(idata)
    assert fig.axes
    plt.close("all")


def test_forecast_table_summarises_the_draws(fitted):
    _, idata = fitted
    table = nss_az.forecast_table(idata, prob=0.8)
    draws = idata.predictions["y"].stack(sample=("chain", "draw")).transpose("sample", ...)
    assert table.shape == (6, 10) and table.index.name == "forecast_time"
    np.testing.assert_array_equal(table.index.values, idata.predictions["forecast_time"].values)
    np.testing.assert_allclose(table[("k_obs", "mean")], draws.values[:, :, 1].mean(0))
    np.testing.assert_allclose(table[("c", "upper")], np.quantile(draws.values[:, :, 0], 0.9, 0))
    assert np.all(table.xs("lower", axis=1, level="stat") < table.xs("upper", axis=1, level="stat"))
    with pytest.raises(ValueError, match="prob must lie in"):
        nss_az.forecast_table(idata, prob=90)


def test_plot_diagnostics_draws_statsmodels_correlogram(tmp_path):
    from statsmodels.tsa.stattools import acf
    rng = np.random.default_rng(0)
    e = rng.normal(size=80)
    e[[3, 40]] = np.nan
    series = pd.Series(e, index=pd.period_range("2000Q1", periods=80, freq="Q"), name="y")
    fig = plots.plot_diagnostics(series, lags=8)
    assert len(fig.axes) == 4
    stems = fig.axes[3].collections[0].get_segments()
    np.testing.assert_allclose([seg[1][1] for seg in stems], acf(e[np.isfinite(e)], nlags=8)[1:],
                               rtol=1e-12)
    fig.savefig(tmp_path / "diag.png")
    assert (tmp_path / "diag.png").stat().st_size > 10_000
    with pytest.raises(ValueError, match="more than lags = 8"):
        plots.plot_diagnostics(np.ones(5), lags=8)
    plt.close("all")


def _ar1_model(y=None, stationary=True):
    rho = numpyro.sample("rho", numpyro.distributions.Uniform(0.0, 2.0))
    s = numpyro.sample("s", numpyro.distributions.Normal(1.0, 1.0))
    numpyro.sample("y", nss.KalmanLGSS(rho * jnp.eye(1), jnp.eye(1), jnp.eye(1), s * jnp.ones(1),
                                       jnp.zeros(1), "stationary" if stationary else jnp.eye(1),
                                       10), obs=y)


@pytest.mark.parametrize("params, message", [
    ({"rho": 1.05, "s": 0.5}, r"site 'y': u0_cov='stationary' needs a stable A, but A has "
                               r"spectral radius 1\.05 >= 1"),
    ({"rho": 0.5, "s": -0.5}, r"site 'y': R is not positive semi-definite \(smallest "
                               r"eigenvalue -0\.5\); it is a covariance"),
    ({"rho": -0.5, "s": 0.5}, r"site 'rho': log density -inf at value -0\.5 \(Uniform"),
])
def test_diagnose_names_the_failing_check(params, message):
    y = np.zeros((10, 1))
    found = nss.diagnose(_ar1_model, y, params=params)
    assert not found.ok and len(found.problems) == 1
    assert re.search(message, str(found)), str(found)
    assert nss.diagnose(_ar1_model, y, params={"rho": 0.5, "s": 0.5}).ok
    # the same draw without a stationary prior passes the checks
    assert nss.diagnose(_ar1_model, y, False, params={"rho": 1.05, "s": 0.5}).ok


def test_diagnose_reports_a_failed_guard():
    def model():
        numpyro.sample("a", numpyro.distributions.Normal())
        nss.dsge.log_prob_guard("determinacy", False)

    found = nss.diagnose(model)
    assert found.problems == (found.problems[0],) and "factor 'determinacy'" in str(found)
    assert "Blanchard-Kahn" in str(found) and set(found.params) == {"a"}


def test_pandas_data_are_refused_with_what_to_pass(data):
    from numpyro_statespace._validation import refuse_pandas
    with pytest.raises(ValueError, match=r"y is a pandas DataFrame: pass its values, "
                                         r"y.to_numpy\(\) \(T, M\)"):
        refuse_pandas("y", data)
    with pytest.raises(ValueError, match=r"pandas Series: .*to_numpy\(\)\[:, None\]"):
        refuse_pandas("y", data["c"])
    assert refuse_pandas("y", data.to_numpy()) is not None


def test_pandas_obs_in_a_model_is_refused_with_what_to_pass(data):
    """A DataFrame as ``obs`` gets the message saying what to pass, from the support check
    NumPyro runs first and from ``log_prob`` (before, a TypeError from inside NumPyro)."""
    d = nss.KalmanLGSS(0.5 * jnp.eye(2), jnp.eye(2), jnp.eye(2), jnp.ones(2), jnp.zeros(2),
                       jnp.eye(2), T)

    def model(y):
        numpyro.sample("y", d, obs=y)

    with pytest.raises(ValueError, match=r"value is a pandas DataFrame: pass its values"):
        numpyro.infer.util.log_density(model, (data,), {}, {})
    with pytest.raises(ValueError, match=r"value is a pandas DataFrame"):
        d.log_prob(data)
    assert np.isfinite(numpyro.infer.util.log_density(model, (data.to_numpy(),), {}, {})[0])


def test_plot_components_draws_each_contribution():
    """Medians of the drawn lines against the contributions computed by hand: the trend's
    level, the seasonal's first state, the static regression's X beta per draw."""
    import xarray as xr
    from numpyro_statespace import structural as st
    rng = np.random.default_rng(5)
    X = rng.normal(size=(30, 2))
    model = st.LocalLinearTrend() + st.Seasonal(4) + st.Regression(X) + st.MeasurementError()
    states = rng.normal(size=(2, 7, 31, model.num_states))
    beta = rng.normal(size=(2, 7, 2))
    idata = az.from_dict(posterior={"beta": beta})
    idata.add_groups(posterior_states=xr.Dataset(
        {"state_path": (("chain", "draw", "time_with_initial", "state"), states)},
        coords={"time_with_initial": np.arange(31), "state": list(model.state_names)}))
    fig = plots.plot_components(idata, model)
    medians = [ax.get_lines()[0].get_ydata() for ax in fig.axes[:3]]
    flat = states.reshape(14, 31, -1)[:, 1:]
    np.testing.assert_allclose(medians[0], np.median(flat[..., 0], axis=0))
    np.testing.assert_allclose(medians[1], np.median(flat[..., 2], axis=0))
    np.testing.assert_allclose(medians[2], np.median(beta.reshape(14, 2) @ X.T, axis=0))
    assert [ax.get_ylabel() for ax in fig.axes[:3]] == ["trend", "seasonal", "beta"]
    with pytest.raises(ValueError, match="has 5 states; the model has 6"):
        plots.plot_components(idata, model + st.Level())
    plt.close("all")


def test_add_log_likelihood_refuses_other_sites(fitted):
    mcmc, _ = fitted
    idata = nss_az.to_inference_data(mcmc, log_likelihood=False)
    assert "log_likelihood" not in idata.groups()
    with pytest.raises(ValueError, match=r"\['a'\] \(candidates: \['y'\]\)"):
        nss_az.add_log_likelihood(idata, mcmc, sites=["a"])
    with pytest.raises(ValueError, match="log_likelihood must be 'per_step', True or False"):
        nss_az.to_inference_data(mcmc, log_likelihood="pointwise")
    nss_az.add_log_likelihood(idata, mcmc)
    assert idata.log_likelihood["y"].dims == ("chain", "draw", "time")
