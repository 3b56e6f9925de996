"""A panel split over devices and over processes (tests/scale_out_worker.py, subprocesses).

Devices: two host devices forced with ``--xla_force_host_platform_device_count=2``; the series
axis sharded with a ``NamedSharding`` over a ``Mesh`` of both. Hosts: two processes joined by
``jax.distributed.initialize`` on localhost, CPU collectives through gloo, each holding half of
the series. Both must give the single-device log-likelihood and gradient to round-off (the
sum over series is the only cross-device operation: a reduction in another order).
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

WORKER = Path(__file__).resolve().parent / "scale_out_worker.py"
ROOT = WORKER.parents[1]
sys.path.insert(0, str(WORKER.parent))

import scale_out_worker  # noqa: E402

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def reference():
    """Value and gradient in this process (one device) and the panel's shape."""
    rho, sigma, obs_sd, y = scale_out_worker.panel_data()
    v, g = scale_out_worker.value_and_grad()(rho, sigma, obs_sd, y,
                                             scale_out_worker.PANEL["n_states"])
    return float(v), [np.asarray(x) for x in g], y.shape


def _env(devices=None):
    flags = os.environ.get("XLA_FLAGS", "")
    if devices:
        flags += f" --xla_force_host_platform_device_count={devices}"
    return {**os.environ, "XLA_FLAGS": flags.strip(), "PYTHONPATH": str(ROOT)}


def test_sharded_over_two_devices_equals_one_device(tmp_path, reference):
    out = tmp_path / "devices.json"
    subprocess.run([sys.executable, str(WORKER), "devices", str(out)], env=_env(2), cwd=ROOT,
                   check=True, timeout=300)
    r = json.loads(out.read_text())
    assert r["device_count"] == 2
    value, grads, (P, T, M) = reference
    for result in (r["single"], r["sharded"], r["sharded_rounds"]):
        np.testing.assert_allclose(result[0], value, rtol=1e-12)
        for got, want in zip(result[1:], grads):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    # the data really is split: one block of P / 2 series on each device
    assert len({s["device"] for s in r["y_shards"]}) == 2
    assert [s["shape"] for s in r["y_shards"]] == [[P // 2, T, M]] * 2
    # and so is the gradient, as it comes out of the compiled program
    assert r["grad_rho_spec"] == ["series"]
    assert len({s["device"] for s in r["grad_rho_shards"]}) == 2
    assert [s["shape"] for s in r["grad_rho_shards"]] == [[P // 2]] * 2
    assert [s["shape"] for s in r["grad_rho_rounds_shards"]] == [[P // 2]] * 2


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_each_feeding_its_shard(tmp_path, reference):
    port = _free_port()
    outs = [tmp_path / f"process{i}.json" for i in range(2)]
    logs = [open(tmp_path / f"process{i}.log", "w") for i in range(2)]
    procs = [subprocess.Popen([sys.executable, str(WORKER), "hosts", str(outs[i]), str(i),
                               str(port)], env=_env(), cwd=ROOT, stdout=logs[i],
                              stderr=subprocess.STDOUT) for i in range(2)]
    try:
        codes = [p.wait(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for log in logs:
            log.close()
    assert codes == [0, 0], "\n".join((tmp_path / f"process{i}.log").read_text()[-3000:]
                                      for i in range(2))
    value, (g_rho, g_sigma, g_obs), (P, T, M) = reference
    for i, out in enumerate(outs):
        r = json.loads(out.read_text())
        assert (r["process_index"], r["process_count"]) == (i, 2)
        assert (r["device_count"], r["local_device_count"]) == (2, 1)
        assert r["y_local_shape"] == [P // 2, T, M] and r["y_global_shape"] == [P, T, M]
        np.testing.assert_allclose(r["value"], value, rtol=1e-12)
        np.testing.assert_allclose(r["grad_obs_sd"], g_obs, rtol=1e-12)
        block = slice(i * P // 2, (i + 1) * P // 2)
        assert r["grad_rho"]["index"] == str((block,))
        np.testing.assert_allclose(r["grad_rho"]["data"], g_rho[block], rtol=1e-12)
        np.testing.assert_allclose(r["grad_sigma"], g_sigma[block], rtol=1e-12)


def test_jax_sees_one_device_here():
    """The forced device count stays in the subprocesses: this process has its own devices."""
    assert "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", "")
    assert jax.process_count() == 1


@pytest.mark.slow
def test_chains_one_per_device():
    """``examples/panel.py --chain-method parallel`` (short): two chains on two host devices
    (``numpyro.set_host_device_count(2)``), without NumPyro's fallback to sequential chains."""
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "panel.py"), "--chain-method",
                          "parallel"], env={**_env(), "NSS_SHORT": "1"}, cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "not enough devices" not in run.stderr, run.stderr[-3000:]
    assert "kalman:" in run.stdout and "max r_hat" in run.stdout
