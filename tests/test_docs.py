"""The README's code and the example scripts run as written."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.workflow


ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _section(title):
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start:] if end < 0 else README[start:end]


def test_readme_first_block_holds_the_two_setup_commands():
    block = re.search(r"```bash\n(.*?)```", README, re.S).group(1).strip().splitlines()
    assert len(block) == 2
    assert block[0].startswith('pip install ".[examples]"') and "python examples/" in block[0]
    assert block[1].startswith('pip install ".[test]"') and block[1].endswith("pytest")
    script = block[0].split("python ", 1)[1].split()[0]
    assert (ROOT / script).is_file()


def test_main_example_prints_likelihoods():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "rbc_likelihoods.py")],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    for label in ("simulated data", "bundled reference data"):
        assert label in out
    values = [float(v) for v in re.findall(r"log-likelihood[^:]*: (-?[\d.]+)", out)]
    assert len(values) == 4 and all(abs(v) < 1e6 for v in values)


def test_every_readme_python_snippet_runs_in_order(monkeypatch, capsys):
    """All python blocks of the README, in order, in one namespace (the first toy model
    defines what the later ones use); every ``model`` a block defines is run once (prior
    predictive for the DSGE section, on the toy data elsewhere)."""
    import jax
    import matplotlib
    import matplotlib.pyplot as plt
    from numpyro import handlers

    matplotlib.use("Agg")
    monkeypatch.chdir(ROOT)  # `from models.rbc import ...` as from a clone's root
    namespace = {}
    ran = 0
    for code in re.findall(r"```python\n(.*?)```", README, re.S):
        before = namespace.get("model")
        exec(compile(code, "README.md", "exec"), namespace)
        model = namespace.get("model")
        if model is not None and model is not before:
            # the DSGE model (two observables) as a prior predictive
            args = (namespace["T"],) if "solve_first_order" in code \
                else (namespace["T"], namespace["y"])
            trace = handlers.trace(handlers.seed(model, jax.random.key(0))).get_trace(*args)
            assert "y" in trace
        ran += 1
        plt.close("all")
    assert ran >= 6
    assert abs(float(namespace["mcmc"].get_samples()["rho"].mean()) - 0.8) < 0.15
    # "Differentiating likelihoods" asserts grad == jacfwd inside and prints both
    out = capsys.readouterr().out
    assert "joint_loglik" in out and "kalman_loglik" in out
    assert set(namespace["grads"][0].shape) == {2}
    assert namespace["grads"][1].shape == (5, 1)
