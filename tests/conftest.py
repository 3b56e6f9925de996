"""Tests run in float64 (the library itself never changes JAX's global config)."""

import os
import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

# `models/` is a top-level folder of the repository, importable from a clean clone.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("MPLBACKEND", "Agg")
