"""Shared set-up for the example scripts: float64, the repository root on the path, short mode,
where figures go."""

import os
import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

# imports ArviZ without its once-a-day import notice (see numpyro_statespace/arviz.py); the
# examples' own `import arviz` then finds it loaded
import numpyro_statespace.arviz  # noqa: E402,F401

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # makes `models` (the zoo, not installed) importable

#: ``NSS_SHORT=1`` (set by the test suite) cuts draws and iterations so each example runs fast.
SHORT = os.environ.get("NSS_SHORT", "0") not in ("", "0")

#: where the examples save their figures (gitignored); ``NSS_FIGURES`` overrides it.
FIGURES = Path(os.environ.get("NSS_FIGURES", ROOT / "examples" / "figures"))


def save_figure(fig, name, *also):
    """Save ``fig`` as ``FIGURES / name`` (and to each path in ``also``), close it, and return
    the path."""
    import matplotlib.pyplot as plt

    FIGURES.mkdir(parents=True, exist_ok=True)
    path = FIGURES / name
    for target in (path, *also):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(target, dpi=110)
    plt.close(fig)
    print(f"saved {path}")
    return path
