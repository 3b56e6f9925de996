"""The README's code and the example scripts run as written."""

import re
import subprocess
import sys
from pathlib import Path


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


def test_differentiating_likelihoods_section_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", _section("Differentiating likelihoods"), re.S)
    assert blocks
    namespace = {}
    for code in blocks:
        exec(compile(code, "README.md", "exec"), namespace)  # asserts grad == jacfwd inside
    out = capsys.readouterr().out
    assert "joint_loglik" in out and "kalman_loglik" in out
    assert set(namespace["grads"][0].shape) == {2}
    assert namespace["grads"][1].shape == (5, 1)


def test_main_example_prints_likelihoods():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "rbc_likelihoods.py")],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    for label in ("simulated data", "bundled reference data"):
        assert label in out
    values = [float(v) for v in re.findall(r"log-likelihood[^:]*: (-?[\d.]+)", out)]
    assert len(values) == 4 and all(abs(v) < 1e6 for v in values)
