"""Shared set-up for the example scripts: float64, the repository root on the path, short mode."""

import os
import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # makes `models` (the zoo, not installed) importable

#: ``NSS_SHORT=1`` (set by the test suite) cuts draws and iterations so each example runs fast.
SHORT = os.environ.get("NSS_SHORT", "0") not in ("", "0")

FIGURES = ROOT / "examples" / "figures"
