"""Worker for tests/test_scale_out.py (run as a subprocess; never imported by pytest).

``python tests/scale_out_worker.py devices OUT`` (with two host devices forced through
``XLA_FLAGS``): the panel log-likelihood and its gradient on one device and with the series
axis split over both, and where the pieces of the sharded arrays live.

``python tests/scale_out_worker.py hosts OUT PROCESS_ID PORT``: one of two processes joined by
``jax.distributed.initialize`` on localhost (CPU collectives through gloo); each feeds only its
own half of the series and writes its shard of the gradient.

Results go to the JSON file ``OUT``; the test compares them with its own single-process
reference.
"""

import json
import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

#: the panel both modes use: 6 series (3 per device), 40 steps, 2 states, NaN entries
PANEL = {"seed": 11, "num_series": 6, "num_timesteps": 40, "n_states": 2}


def panel_data():
    from models import panel

    data = panel.simulate(PANEL["seed"], PANEL["num_series"], PANEL["num_timesteps"],
                          n_states=PANEL["n_states"], missing=0.2)
    return data["rho"], data["sigma"], data["obs_sd"], data["y"]


def value_and_grad():
    from models import panel

    return jax.jit(jax.value_and_grad(panel.loglik, argnums=(0, 1, 2)), static_argnums=(4, 5))


def _shards(x):
    return [{"device": str(s.device), "index": str(s.index), "shape": list(s.data.shape)}
            for s in x.addressable_shards]


def devices(out):
    from models import panel

    rho, sigma, obs_sd, y = panel_data()
    f = value_and_grad()
    one = jax.devices()[0]
    v1, g1 = f(*(jax.device_put(x, one) for x in (rho, sigma, obs_sd, y)), PANEL["n_states"])
    rho_s, sigma_s, y_s = panel.shard_series(rho, sigma, y)
    # each call waited for before the next: queued calls with cross-device reductions can
    # deadlock XLA's CPU thread pool (see benchmarks/panel.py)
    v2, g2 = jax.block_until_ready(f(rho_s, sigma_s, obs_sd, y_s, PANEL["n_states"]))
    # in rounds of 2 series (one per device): 3 sequential rounds, each split over the devices
    v3, g3 = jax.block_until_ready(f(rho_s, sigma_s, obs_sd, y_s, PANEL["n_states"], 2))
    result = {
        "device_count": jax.device_count(),
        "single": [float(v1)] + [np.asarray(g).tolist() for g in g1],
        "sharded": [float(v2)] + [np.asarray(g).tolist() for g in g2],
        "sharded_rounds": [float(v3)] + [np.asarray(g).tolist() for g in g3],
        "grad_rho_rounds_shards": _shards(g3[0]),
        "y_shards": _shards(y_s),
        "grad_rho_shards": _shards(g2[0]),
        "grad_rho_spec": list(g2[0].sharding.spec),
    }
    Path(out).write_text(json.dumps(result))


def hosts(out, process_id, port):
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"localhost:{port}", num_processes=2, process_id=process_id,
                               initialization_timeout=60)
    from models import panel

    rho, sigma, obs_sd, y = panel_data()
    sharding = panel.series_sharding()  # over both processes' devices
    block = slice(process_id * 3, process_id * 3 + 3)  # this process's series only
    rho_g, sigma_g, y_g = (jax.make_array_from_process_local_data(sharding, x[block], x.shape)
                           for x in (rho, sigma, y))
    v, (g_rho, g_sigma, g_obs) = value_and_grad()(rho_g, sigma_g, obs_sd, y_g,
                                                   PANEL["n_states"])
    (local_rho,), (local_sigma,) = g_rho.addressable_shards, g_sigma.addressable_shards
    result = {
        "process_index": jax.process_index(), "process_count": jax.process_count(),
        "device_count": jax.device_count(), "local_device_count": jax.local_device_count(),
        "value": float(v), "grad_obs_sd": float(g_obs),
        "grad_rho": {"index": str(local_rho.index), "data": np.asarray(local_rho.data).tolist()},
        "grad_sigma": np.asarray(local_sigma.data).tolist(),
        "y_local_shape": list(y_g.addressable_shards[0].data.shape),
        "y_global_shape": list(y_g.shape),
    }
    Path(out).write_text(json.dumps(result))
    jax.distributed.shutdown()


if __name__ == "__main__":
    mode, out = sys.argv[1], sys.argv[2]
    if mode == "devices":
        devices(out)
    else:
        hosts(out, int(sys.argv[3]), int(sys.argv[4]))
