"""The .mod reader (numpyro_statespace.dynare): grammar, macros, priors, errors, and the bundled
files against the hand-written models (models/rbc.py, models/fs2000.py)."""

import math
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special, stats

import numpyro_statespace as nss
from models import rbc
from numpyro_statespace import dsge
from numpyro_statespace.dynare import DynareError, expressions, lexer, macro, priors
from _reference import central_difference, np_linear, statsmodels_loglik

MOD = Path(__file__).resolve().parents[1] / "models" / "mod"


def _expr(text, **values):
    cur = lexer.Cursor(lexer.tokenize(text))
    tree = expressions.parse(cur)
    assert cur.peek().kind == "end"
    fn = expressions.compile_expr(tree, lambda ref: (lambda v, p, L: jnp.asarray(
        values[ref.name] if ref.lag == 0 else values[f"{ref.name}{ref.lag:+d}"])))
    return float(fn(None, None, {}))


@pytest.mark.parametrize("text, expected", [
    ("-x^2", -(1.5**2)),                      # ^ binds tighter than unary minus (Dynare)
    ("2^3^2", (2**3) ** 2),                   # left-associative, as MATLAB
    ("a/b*c", (2.0 / 3.0) * 0.5),
    ("a - b - c", 2.0 - 3.0 - 0.5),
    ("x^(-1) + x^-2", 1 / 1.5 + 1.5**-2),
    ("exp(x)*log(a) + sqrt(b) - abs(-c) + sign(-x)",
     math.exp(1.5) * math.log(2) + math.sqrt(3) - 0.5 - 1),
    ("normcdf(x) + normpdf(x, 1, 2) + erf(c)",
     stats.norm.cdf(1.5) + stats.norm.pdf(1.5, 1, 2) + special.erf(0.5)),
    ("min(a, b) + max(a, b) + (x > 1) + (x <= 1) + !(a == 2)", 2 + 3 + 1 + 0 + 0),
    ("k(-1)^alpha * k(+1)", 0.8**0.3 * 1.1),
    ("x^a", 1.5**2.0),
    ("1e-3 + .5 + 2.5E+1", 0.001 + 0.5 + 25),
])
def test_expression_grammar(text, expected):
    values = dict(x=1.5, a=2.0, b=3.0, c=0.5, alpha=0.3, **{"k-1": 0.8, "k+1": 1.1})
    assert _expr(text, **values) == pytest.approx(expected, rel=1e-14)


def test_comments_and_macros_keep_positions():
    text = ("// line comment\n@#define flag = 1\n@#define n = 2\nvar a; % trailing\n"
            "/* block\n comment */ var b;\n@#if flag && n == 2\nx = @{n};\n@#else\nx = 3;\n"
            "@#endif\n@#ifndef flag\ny = 1;\n@#endif\ns = 'it''s %';\n")
    out, defines = macro.preprocess(text)
    lines = out.split("\n")
    assert len(lines) == len(text.split("\n"))
    assert lines[3].strip() == "var a;" and lines[5].strip() == "var b;"
    assert lines[7] == "x = 2;" and lines[9] == "" and lines[12] == ""
    assert defines == {"flag": 1.0, "n": 2.0}
    toks = lexer.tokenize(out, "f.mod")
    b = next(t for t in toks if t.text == "b")
    assert (b.where.line, b.where.col) == (6, 17)


def test_macro_elseif_and_strings():
    text = ('@#define model = "nk"\n@#if model == "rbc"\na\n@#elseif model == "nk"\nb\n'
            '@#else\nc\n@#endif\n@#ifdef model\nd\n@#endif\n')
    out, _ = macro.preprocess(text)
    assert [line for line in out.split("\n") if line] == ["b", "d"]


@pytest.mark.parametrize("text, fragment", [
    ("@#for i in 1:3\n@#endfor\n", "<string>:1:1: the macro directive '@#for'"),
    ("@#if undefined_flag\n@#endif\n", "macro variable 'undefined_flag' is not defined"),
    ("@#if 1\nvar a;\n", "'@#if' without '@#endif'"),
])
def test_macro_errors(text, fragment):
    with pytest.raises(DynareError, match=fragment.replace("(", r"\(")):
        macro.preprocess(text)


_SMALL = """var y z;
varexo e;
parameters rho sig;
rho = 0.5; sig = 0.1;
model;
  y = z + 1;
  z = rho*z(-1) + sig*e;
end;
steady_state_model;
  z = 0; y = 1;
end;
shocks; var e; stderr 1; end;
varobs y;
estimated_params;
  rho, beta_pdf, 0.5, 0.2;
end;
"""


def _error(text):
    with pytest.raises(DynareError) as info:
        nss.dynare.load(text)
    return str(info.value)


def test_bad_input_missing_varobs_in_data():
    d = nss.dynare.load(_SMALL)
    with pytest.raises(DynareError, match=r"<string>:13:8: varobs variable 'y' is not in the "
                       r"data \(columns: \['z'\]\)\. Add the column"):
        d.log_likelihood({"z": np.zeros(5)})


@pytest.mark.parametrize("old, new, fragments", [
    ("y = z + 1;", "y = z + * 1;", "<string>:6:11: expected a number, a name or '('"),
    ("y = z + 1;", "y = z + w;", ("<string>:6:11: 'w' is not declared",
                                  "Declare it in 'var', 'varexo' or 'parameters'")),
    ("beta_pdf", "weibull_pdf",
     ("<string>:15:8: the prior shape weibull_pdf is outside the supported subset",
      "Use beta_pdf, gamma_pdf, normal_pdf, inv_gamma_pdf or uniform_pdf")),
    ("z = rho*z(-1) + sig*e;", "", "the model block has 1 equations for 2 endogenous"),
    ("y = z + 1;", "y = z + rho(-1);", "the parameter 'rho' cannot carry a date"),
    ("y = z + 1;", "y = z + foo(z);", "'foo(' is neither a supported function"),
    ("varobs y;", "varobs q;", "varobs 'q' is not an endogenous variable"),
    ("rho = 0.5;", "", "<string>:7:7: parameter 'rho' is used but never given a value"),
    ("end;\nsteady", "", "model block"),
])
def test_bad_input(old, new, fragments):
    msg = _error(_SMALL.replace(old, new, 1))
    for fragment in (fragments,) if isinstance(fragments, str) else fragments:
        assert fragment in msg, msg


def test_commands_give_the_order_and_are_otherwise_noted():
    d = nss.dynare.load(_SMALL + "close all;\nsteady;\nstoch_simul(order=2, irf=0) y;\n"
                        "estimation(datafile=usmodel, mh_replic=0, mode_compute=0);\n")
    assert d.order == 2
    assert any("'close' ignored" in n for n in d.notes)
    assert any("'estimation' ignored" in n for n in d.notes)
    assert "order=3 is outside the supported subset" in _error(_SMALL + "stoch_simul(order=3);")


def test_predetermined_variables_shift_the_timing():
    # with `predetermined_variables k`, k is the stock at the start of the period: Dynare's k(-1)
    text = _SMALL.replace("var y z;", "var y z k;").replace(
        "parameters rho sig;", "parameters rho sig;\npredetermined_variables k;").replace(
        "y = z + 1;", "y = z + 1 + k - k(+1);\n  k = 0.5*k(-1) + z;").replace(
        "z = 0; y = 1;", "z = 0; y = 1; k = 0;")
    d = nss.dynare.load(text)
    seen = []
    d.compiled.equations(lambda n, lag=0: seen.append((n, lag)) or jnp.asarray(0.0),
                         d.model_parameters())
    assert ("k", -1) in seen and ("k", 0) in seen and ("k", -2) in seen
    assert ("k", 1) not in seen


def test_resid_cites_each_equation():
    d = nss.dynare.load(_SMALL.replace("y = z + 1;", "[name='measurement']\n  y = z + 1;"))
    (w1, tag1, r1), (w2, tag2, r2) = d.resid(steady_state={"y": 1.5, "z": 0.0})
    assert (str(w1), tag1, r1) == ("<string>:7:3", "measurement", 0.5)
    assert (str(w2), tag2, r2) == ("<string>:8:3", None, 0.0)


def test_small_model_solution_and_likelihood():
    # y_t = 1 + z_t, z_t AR(1): the Kalman likelihood of y is a stationary AR(1)'s
    d = nss.dynare.load(_SMALL)
    rng = np.random.default_rng(0)
    y = 1.0 + rng.standard_normal(30) * 0.2
    ll = d.log_likelihood({"y": y}, {"rho": 0.6})
    z = y - 1.0
    ref = stats.norm.logpdf(z[0], 0, 0.1 / math.sqrt(1 - 0.36)) + \
        stats.norm.logpdf(z[1:], 0.6 * z[:-1], 0.1).sum()
    assert float(ll) == pytest.approx(ref, rel=1e-10)


def test_shocks_block_covariances_and_overrides():
    text = _SMALL.replace("varexo e;", "varexo e, u;").replace(
        "sig*e;", "sig*e + u;").replace(
        "shocks; var e; stderr 1; end;",
        "shocks; var e; stderr 0.1; var u = 0.04; corr e, u = 0.5; var y; stderr sig; end;")
    d = nss.dynare.load(text)
    np.testing.assert_allclose(d.shock_cov(), [[0.01, 0.01], [0.01, 0.04]], rtol=1e-14)
    np.testing.assert_allclose(d.shock_cov({"stderr_u": 0.3}), [[0.01, 0.015], [0.015, 0.09]],
                               rtol=1e-14)  # the correlation is kept, the covariance follows
    np.testing.assert_allclose(d.measurement_cov({"sig": 0.5}), [[0.25]], rtol=1e-14)
    text = text.replace("var u = 0.04; corr e, u = 0.5;", "var u = 0.04; var e, u = 0.003;")
    np.testing.assert_allclose(nss.dynare.load(text).shock_cov(), [[0.01, 0.003],
                                                                    [0.003, 0.04]], rtol=1e-14)


# -- priors: moments by quadrature, densities against scipy ---------------------------------

def _moments(d, lo, hi):
    log_prob = jax.jit(d.log_prob)
    pdf = lambda x: float(jnp.exp(log_prob(jnp.asarray(x))))  # noqa: E731
    m0 = integrate.quad(pdf, lo, hi, limit=200)[0]
    m1 = integrate.quad(lambda x: x * pdf(x), lo, hi, limit=200)[0]
    m2 = integrate.quad(lambda x: x * x * pdf(x), lo, hi, limit=200)[0]
    return m0, m1, math.sqrt(m2 - m1 * m1)


@pytest.mark.parametrize("shape, mean, sd, p3, p4, lo, hi", [
    ("beta", 0.356, 0.02, None, None, 0, 1),
    ("beta", 0.7, 0.2, 0.2, 1.5, 0.2, 1.5),
    ("gamma", 0.625, 0.1, None, None, 0, 5),
    ("gamma", 2.0, 0.5, 1.0, None, 1, 12),
    ("normal", 1.5, 0.375, None, None, -5, 8),
    ("inv_gamma", 0.5, 0.3, None, None, 1e-6, np.inf),
    ("uniform", 0.5, 0.1, None, None, 0.5 - 0.1 * math.sqrt(3), 0.5 + 0.1 * math.sqrt(3)),
])
def test_prior_mean_and_sd(shape, mean, sd, p3, p4, lo, hi):
    m0, m1, s = _moments(priors.dynare_prior(shape, mean, sd, p3, p4), lo, hi)
    assert (m0, m1, s) == pytest.approx((1.0, mean, sd), rel=1e-6)


def test_inverse_gamma1_density_against_scipy():
    s, nu = priors.inverse_gamma1_parameters(0.1, 2.0)
    # x^2 ~ InvGamma(nu/2, scale s/2): density of x = 2x * invgamma.pdf(x^2)
    x = np.array([0.01, 0.05, 0.1, 0.7, 3.0])
    ref = np.log(2 * x) + stats.invgamma.logpdf(x * x, nu / 2, scale=s / 2)
    got = priors.dynare_prior("inv_gamma", 0.1, 2.0).log_prob(jnp.asarray(x))
    np.testing.assert_allclose(got, ref, rtol=1e-10)
    # infinite sd: nu = 2, s = 2 mu^2 / pi (Dynare's closed form)
    assert priors.inverse_gamma1_parameters(0.3, math.inf) == pytest.approx((0.18 / math.pi, 2))


# -- the bundled RBC against models/rbc.py ---------------------------------------------------

@pytest.fixture(scope="module")
def rbc_mod():
    return nss.dynare.load(MOD / "rbc.mod")


def test_rbc_mod_steady_state(rbc_mod):
    p = {"alpha": 0.45, "beta": 0.97}
    ss = rbc_mod.model.steady_state(rbc_mod.model_parameters(p))
    ref = rbc._params(p)
    (c, q), (k, z), _ = rbc.steady_state(ref)
    got = np.array([ss[n] for n in ("c", "q", "k", "z")])
    np.testing.assert_allclose(got, [c, q, k, z], rtol=1e-12, atol=1e-14)


def _sgu(p, observables=(0, 1)):
    p = rbc._params(p)
    y_ss, x_ss, _ = rbc.steady_state(p)
    return dsge.solve_first_order(rbc.equilibrium, y_ss, x_ss, p, eta=jnp.asarray(rbc.ETA),
                                  Gamma=p["sigma"][None], observables=observables)


def test_rbc_mod_first_order_paths_and_likelihood(rbc_mod):
    p = {"alpha": 0.45, "beta": 0.97}
    sol, ref = rbc_mod.solve(p, order=1), _sgu(p)
    assert bool(sol.ok)
    w = np.random.default_rng(1).standard_normal((40, 1))
    # observables (c, q) on the same shocks from the steady state: the two state bases differ
    # (Dynare timing carries k(-1), z(-1), eps), the paths may not
    z_d, z_s = (np_linear(*(np.asarray(x) for x in (s.A, s.B, s.C)), np.zeros(s.A.shape[0]), w,
                          40)[1] for s in (sol, ref))
    np.testing.assert_allclose(z_d, z_s, rtol=1e-10, atol=1e-14)
    rng = np.random.default_rng(2)
    y_dev = rng.standard_normal((50, 2)) * 0.02
    R = rbc.TRUTH["Omega"] ** 2 * jnp.eye(2)
    ll_ref = nss.KalmanLGSS(ref.A, ref.B, ref.C, R, jnp.zeros(2), "stationary", 50).log_prob(y_dev)
    levels = y_dev + np.asarray(rbc_mod.observable_steady_state(p))
    ll = rbc_mod.log_likelihood(levels, p)
    assert float(ll) == pytest.approx(float(ll_ref), rel=1e-10)


def test_rbc_mod_gradient_matches_central_differences(rbc_mod):
    y = np.asarray(rbc_mod.observable_steady_state()) + \
        np.random.default_rng(3).standard_normal((30, 2)) * 0.02
    vg = jax.jit(jax.value_and_grad(lambda a: rbc_mod.log_likelihood(y, {"alpha": a})))
    f, g = (lambda a: vg(a)[0]), vg(0.5)[1]
    # the likelihood is sharply curved in alpha (third derivative ~1e8: small Omega), so the
    # central difference's h^2 error is Richardson-extrapolated away (h = 1e-6 and 2e-6)
    fd = [central_difference(f, 0.5, h) for h in (1e-6, 2e-6)]
    assert float(g) == pytest.approx(float((4 * fd[0] - fd[1]) / 3), rel=1e-6)


def test_rbc_mod_numpyro_model_density(rbc_mod):
    from numpyro.infer.util import log_density
    y = np.asarray(rbc_mod.observable_steady_state()) + \
        np.random.default_rng(4).standard_normal((20, 2)) * 0.02
    model = rbc_mod.numpyro_model(y)
    params = {"alpha": 0.4, "beta": 0.96}
    lp, _ = log_density(model, (), {}, params)
    ref = rbc_mod.log_likelihood(y, params) + math.log(1 / 0.6) + math.log(1 / 0.49)
    assert float(lp) == pytest.approx(float(ref), rel=1e-12)


# -- FS2000 against the hand-written model (models/fs2000.py) -------------------------------

@pytest.fixture(scope="module")
def fs2000_pair():
    from models import fs2000
    f = nss.dynare.load(MOD / "fs2000.mod")
    return f, fs2000, f.model_parameters({"alp": 0.33, "rho": 0.3})


def test_fs2000_mod_equals_models_fs2000(fs2000_pair):
    f, fs2000, p = fs2000_pair
    assert f.observables == fs2000.OBSERVABLES
    ss, ss_hand = f.model.steady_state(p), fs2000.MODEL.steady_state(p)
    for n in fs2000.ENDOGENOUS:
        assert float(ss[n]) == pytest.approx(float(ss_hand[n]), rel=1e-12), n
    sol, ref = f.solve(p, order=1), fs2000.MODEL.solve(p, order=1)
    assert f.model.state_names == fs2000.MODEL.state_names
    for name in ("A", "B", "C"):
        np.testing.assert_allclose(getattr(sol, name), getattr(ref, name), rtol=1e-10,
                                   atol=1e-12, err_msg=name)
    data = fs2000.load_data()
    ll = f.log_likelihood(data, p)
    ll_ref = nss.KalmanLGSS(ref.A, ref.B, ref.C, jnp.zeros((2, 2)), jnp.zeros(ref.A.shape[0]),
                            "stationary", len(data)).log_prob(fs2000.deviations(p, data))
    assert np.isfinite(float(ll)) and float(ll) == pytest.approx(float(ll_ref), rel=1e-10)


@pytest.mark.slow  # two eager second-order solves of a 16-variable model
def test_fs2000_mod_second_order_equals_models_fs2000(fs2000_pair):
    f, fs2000, p = fs2000_pair
    sol, ref = f.solve(p, order=2), fs2000.MODEL.solve(p, order=2)
    for name in ("A_0", "A_1", "A_2", "B", "C_0", "C_1", "C_2"):
        np.testing.assert_allclose(getattr(sol, name), getattr(ref, name), rtol=1e-10,
                                   atol=1e-12, err_msg=name)
    # pruned joint likelihood given the shocks, with a measurement error (models/fs2000.py's)
    data = fs2000.load_data()[:40]
    w = jnp.asarray(np.random.default_rng(9).standard_normal((40, 2)))
    R = fs2000.JOINT_MEASUREMENT_SD ** 2 * jnp.eye(2)
    ref_ll = nss.JointQuadraticSS(ref.A_0, ref.A_1, ref.A_2, ref.B, ref.C_0, ref.C_1, ref.C_2,
                                  R, jnp.zeros(ref.A_1.shape[0]), w, pruned=True).log_prob(
        fs2000.deviations(p, data))
    f_me = nss.dynare.load((MOD / "fs2000.mod").read_text().replace(
        "var e_m; stderr 1;", f"var e_m; stderr 1; var log_gy_obs; stderr "
        f"{fs2000.JOINT_MEASUREMENT_SD}; var log_gp_obs; stderr {fs2000.JOINT_MEASUREMENT_SD};"))
    ll = f_me.log_likelihood(data, p, order=2, noise=w)
    assert float(ll) == pytest.approx(float(ref_ll), rel=1e-10)


# -- the bundled files ----------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(p.name for p in MOD.glob("*.mod")))
def test_bundled_file_parses_with_zero_steady_state_residual(name):
    d = nss.dynare.load(MOD / name)
    p = d.model_parameters()
    c = d.compiled
    if c.steady_state is not None:
        ss = c.steady_state(p)
        v = lambda n, lag=0: jnp.asarray(ss.get(n, 0.0))  # noqa: E731 (shocks: 0)
        resid = np.array([float(r) for r in c.equations(v, p)])
        np.testing.assert_allclose(resid, 0.0, atol=1e-10)
    assert d.order in (1, 2) and d.notes is not None


def test_nk_mod_priors_and_measurement_error():
    d = nss.dynare.load(MOD / "nk.mod")  # solved in test_bundled_file_solves_first_order
    assert d.observables == ("ygap", "pinf", "r") and len(d.priors) == 9
    # measurement error from the shocks block (stderr 0.05 on each varobs)
    np.testing.assert_allclose(d.measurement_cov(), 0.0025 * np.eye(3), rtol=1e-14)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(p.name for p in MOD.glob("*.mod")))
def test_bundled_file_solves_at_its_order(name):
    # every bundled file is determinate at its calibration, at first order and at the order
    # its stoch_simul/estimation asks for
    d = nss.dynare.load(MOD / name)
    for order in sorted({1, d.order}):
        assert bool(d.solve(order=order).ok), f"{name}: not determinate at order {order}"


def test_importing_the_package_does_not_import_the_reader():
    import subprocess
    import sys
    code = ("import sys, numpyro_statespace as nss; assert 'numpyro_statespace.dynare' not in "
            "sys.modules; nss.dynare.load; assert 'numpyro_statespace.dynare' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=MOD.parents[1])


def test_inversion_route_equals_kalman_with_known_start():
    # three shocks, three observables: the inversion filter's likelihood from u_0 = 0 is the
    # Kalman filter's with R = 0 and a known start (P_0 = 0), an independent implementation
    d = nss.dynare.load(MOD / "nk.mod")
    from numpyro.infer.util import log_density
    params = {"kappa": 0.1, "phi_pi": 1.5, "phi_y": 0.125, "rho_r": 0.7, "rho_d": 0.6,
              "rho_s": 0.5, "stderr_e_d": 0.5, "stderr_e_s": 0.2, "stderr_e_r": 0.25}
    sol = d.solve(params, order=1)
    w = np.random.default_rng(7).standard_normal((25, 3))
    y = np_linear(*(np.asarray(x) for x in (sol.A, sol.B, sol.C)), np.zeros(sol.A.shape[0]), w,
                  25)[1][1:]
    levels = y + np.asarray(d.observable_steady_state(params))
    lp, _ = log_density(d.numpyro_model(levels, order=1, route="inversion"), (), {}, params)
    prior = sum(float(pr.log_prob(params[k])) for k, pr in d.priors.items())
    n = sol.A.shape[0]
    ref = nss.KalmanLGSS(sol.A, sol.B, sol.C, jnp.zeros((3, 3)), jnp.zeros(n),
                         jnp.zeros((n, n)), 25).log_prob(jnp.asarray(y))
    assert float(lp) - prior == pytest.approx(float(ref), rel=1e-9)


@pytest.mark.slow  # a second-order solve inside the model
def test_second_order_numpyro_model_observes_the_joint_density(rbc_mod):
    from numpyro import handlers
    y = np.asarray(rbc_mod.observable_steady_state()) + \
        np.random.default_rng(8).standard_normal((20, 2)) * 0.01
    model = rbc_mod.numpyro_model(y, order=2)
    params = {"alpha": 0.45, "beta": 0.96}
    tr = handlers.trace(handlers.seed(handlers.substitute(model, params), 0)).get_trace()
    w = tr["w"]["value"]
    site = tr["y"]
    got = site["fn"].log_prob(site["value"]).sum()
    assert float(got) == pytest.approx(
        float(rbc_mod.log_likelihood(y, params, order=2, noise=w)), rel=1e-10)


_DSSM = os.environ.get("NSS_DSSM_DYNARE_DIR")


@pytest.mark.skipif(not _DSSM, reason="NSS_DSSM_DYNARE_DIR (a local copy of "
                    "DifferentiableStateSpaceModels.jl's src/Examples/dynare) not set")
def test_every_dssm_file_parses():
    from numpyro_statespace.dynare import blocks
    files = sorted(Path(_DSSM).glob("*.mod"))
    assert files
    refused = {}
    for path in files:
        text, _ = macro.preprocess(path.read_bytes().decode("latin-1"), str(path))
        blocks.read(lexer.tokenize(text, str(path)), str(path))  # every file parses
        try:
            nss.dynare.load(path)
        except DynareError as err:
            assert str(err).startswith(f"{path}:")
            refused[path.name] = str(err)
    # NK_baseline.mod takes parameters from a MATLAB steady-state file (outside the subset)
    assert set(refused) <= {"NK_baseline.mod"}, refused


@pytest.mark.slow  # two eager second-order solves: ~60 s on a loaded 2-core machine
def test_rbc_mod_second_order_pruned_paths_and_joint_likelihood(rbc_mod):
    # the pruned second-order path is the path's second-order expansion, the same in any state
    # basis: rbc.mod (Dynare timing) and models/rbc.py (SGU timing) on the same shocks
    p = {"alpha": 0.45, "beta": 0.97}
    sol = rbc_mod.solve(p, order=2)
    q = rbc._params(p)
    y_ss, x_ss, _ = rbc.steady_state(q)
    ref = dsge.solve_second_order(rbc.equilibrium, y_ss, x_ss, q, eta=jnp.asarray(rbc.ETA),
                                  Gamma=q["sigma"][None], observables=(0, 1))
    assert bool(sol.ok) and bool(ref.ok)
    w = jnp.asarray(np.random.default_rng(5).standard_normal((40, 1)))
    R = rbc.TRUTH["Omega"] ** 2 * jnp.eye(2)

    def joint(s):
        return nss.JointQuadraticSS(s.A_0, s.A_1, s.A_2, s.B, s.C_0, s.C_1, s.C_2, R,
                                    jnp.zeros(s.A_1.shape[0]), w, pruned=True)

    z_mod = joint(sol).sample(jax.random.key(0))
    z_ref = joint(ref).sample(jax.random.key(0))
    # same key, same observation noise draws: the noiseless parts must agree
    np.testing.assert_allclose(z_mod, z_ref, rtol=1e-10, atol=1e-13)
    y_dev = np.asarray(z_ref) + 0.003
    levels = y_dev + np.asarray(rbc_mod.observable_steady_state(p))
    ll = rbc_mod.log_likelihood(levels, p, order=2, noise=w)
    assert float(ll) == pytest.approx(float(joint(ref).log_prob(y_dev)), rel=1e-10)


def _sw07_bench():
    import importlib.util
    # by path: examples/dynare.py is importable as `dynare` too
    spec = importlib.util.spec_from_file_location(
        "benchmarks_dynare", MOD.parents[1] / "benchmarks" / "dynare.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_sw07_mod_names_priors_and_steady_state():
    # the varobs are the data file's columns; the observables' steady state is the published
    # model's constants (Smets & Wouters 2007, eq. 15), computed here from their definitions
    d = nss.dynare.load(MOD / "sw07.mod")
    header = (MOD / "data" / "usmodel.csv").read_text().splitlines()[0]
    assert sorted(d.observables) == sorted(c.strip() for c in header.split(","))
    assert len(d.model_endogenous) == 40 and len(d.shock_names) == 7 and len(d.priors) == 36
    p = d.model_parameters()
    cal = {k: float(v) for k, v in p.items()}
    cbetabar = (1 + cal["ctrend"] / 100) ** -cal["csigma"] / (1 + cal["constebeta"] / 100)
    conster = ((1 + cal["constepinf"] / 100) / cbetabar - 1) * 100
    expected = {"dy": cal["ctrend"], "dc": cal["ctrend"], "dinve": cal["ctrend"],
                "dw": cal["ctrend"], "labobs": cal["constelab"],
                "pinfobs": cal["constepinf"], "robs": conster}
    np.testing.assert_allclose(np.asarray(d.observable_steady_state(p)),
                               [expected[n] for n in d.observables], rtol=1e-14)
    np.testing.assert_allclose(np.sqrt(np.diag(np.asarray(d.shock_cov(p)))),
                               [0.4618, 1.8513, 0.6090, 0.6017, 0.2397, 0.1455, 0.2089])


@pytest.mark.slow  # compiles SW07's value and gradient: 45 s-2 min on a loaded 2-core machine
def test_sw07_likelihood_gradient_matches_central_differences():
    d, y, p0 = _sw07_bench().load_sw07()
    sol = d.solve(p0)
    assert bool(sol.ok)  # determinate at the calibration (Blanchard-Kahn)
    assert sol.A.shape[0] == 27 and len(p0) == 36
    f = jax.jit(lambda p: d.log_likelihood(y, p))
    value, grad = jax.jit(jax.value_and_grad(lambda p: d.log_likelihood(y, p)))(p0)
    # the value against statsmodels' Kalman filter (its own stationary initialisation)
    A, B, C = (np.asarray(x) for x in (sol.A, sol.B, sol.C))
    ref = statsmodels_loglik(A, B, C, np.zeros((7, 7)), None, None,
                             np.asarray(y - d.observable_steady_state(p0)), prior_of="stationary")
    assert float(value) == pytest.approx(ref, rel=1e-8)
    rng = np.random.default_rng(6)
    direction = {k: float(rng.standard_normal()) * 1e-2 * max(abs(float(v)), 0.1)
                 for k, v in p0.items()}
    shifted = lambda s: {k: p0[k] + s * direction[k] for k in p0}  # noqa: E731
    fd = central_difference(lambda s: f(shifted(s)), 0.0, h=1e-5)
    ad = sum(float(grad[k]) * direction[k] for k in p0)
    assert ad == pytest.approx(float(fd), rel=1e-5)


@pytest.mark.slow  # four first-order solves and filters of SW07: ~25 s on a loaded machine
@pytest.mark.skipif(not _DSSM, reason="NSS_DSSM_DYNARE_DIR not set")
def test_sw07_mod_equals_dssm_sw_solve():
    # DifferentiableStateSpaceModels.jl's SW_solve.mod (not bundled: GPL-derived text) is an
    # independent transcription of the same model: equal likelihoods at the calibration and
    # at a point away from it check our translation of MacroModelling.jl's equations
    d, y, p0 = _sw07_bench().load_sw07()
    ref = nss.dynare.load((Path(_DSSM) / "SW_solve.mod").read_text(encoding="latin-1")
                          + "\nvarobs dy dc dinve labobs pinfobs dw robs;\n")
    rng = np.random.default_rng(3)
    # persistences and MA coefficients moved inside (0, 1), the rest by 3 %
    p1 = {k: (0.9 * float(v) + 0.05 * rng.uniform() if k.startswith("crho")
              or k in ("cmap", "cmaw") else float(v) * (1 + 0.03 * rng.standard_normal()))
          for k, v in p0.items()}
    for p in (p0, p1):
        ll = float(d.log_likelihood(y, p))
        assert np.isfinite(ll) and ll == pytest.approx(float(ref.log_likelihood(y, p)),
                                                       rel=1e-10)
