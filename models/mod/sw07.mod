// Smets & Wouters (2007), "Shocks and Frictions in US Business Cycles: A Bayesian DSGE
// Approach", AER 97(3): the published log-linearised model, written for this package in
// Dynare syntax.
//
// Source of the equations and calibration: MacroModelling.jl (MIT License, Copyright (c)
// 2022 Thore Kockerols), https://github.com/thorek1/MacroModelling.jl, file
// models/Smets_Wouters_2007_linear.jl at commit bbbc8b9f5d2c7ae11dd871773c38eda4c04efc37.
// Translated from its @model/@parameters blocks: the 40 equations (MacroModelling's x[0],
// x[-1], x[1] are x, x(-1), x(+1) here), its calibration, and its derived parameters
// (cpie ... conster), which become model-local variables (#) so that they follow the
// estimated parameters. Two changes of form, neither changing the model:
//   * MacroModelling scales unit-variance shocks by parameters (z_ea * ea[x]); here each
//     shock has standard deviation z_* (shocks block, same values) and enters unscaled, so
//     g's technology feedback z_ea * ea[x] * cgy is cgy * ea;
//   * MacroModelling's wage-growth observable dwobs is named dw, the column name of
//     data/usmodel.csv (MacroModelling's own test renames that column to dwobs).
// The steady_state_model block (the observables' constants; every other variable is a
// deviation, zero) and varobs are ours; estimated_params holds the priors of Smets &
// Wouters (2007), Table 1A/1B (published values; rho_ga (cgy) normal as in their code).
// Data: data/usmodel.csv (MacroModelling.jl test/data, MIT), columns named as the varobs.

var a zcapf rkf kf invef qs pkf b rrf cf labf yf g wf kpf
    mc zcap rk w lab k kp inve pk r pinf c y
    spinf sw ms epinfma ewma
    dy dc dinve pinfobs robs dw labobs;

varexo ea eb eg eqs em epinf ew;

parameters ctou clandaw cg curvp curvw calfa csigma cfc cgy csadjcost chabb cprobw csigl
    cprobp cindw cindp czcap crpi crr cry crdy crhoa crhob crhog crhoqs crhoms crhopinf
    crhow cmap cmaw constelab constepinf constebeta ctrend;

// fixed in the estimation
ctou = .025;
clandaw = 1.5;
cg = 0.18;
curvp = 10;
curvw = 10;

// estimated: MacroModelling.jl's calibration (the posterior mode of Smets & Wouters 2007)
calfa = .24;
csigma = 1.5;
cfc = 1.5;
cgy = 0.51;
csadjcost = 6.0144;
chabb = 0.6361;
cprobw = 0.8087;
csigl = 1.9423;
cprobp = 0.6;
cindw = 0.3243;
cindp = 0.47;
czcap = 0.2696;
crpi = 1.488;
crr = 0.8762;
cry = 0.0593;
crdy = 0.2347;
crhoa = 0.9977;
crhob = 0.5799;
crhog = 0.9957;
crhoqs = 0.7165;
crhoms = 0;
crhopinf = 0;
crhow = 0;
cmap = 0;
cmaw = 0;
constelab = 0;
constepinf = 0.7;
constebeta = 0.7420;
ctrend = 0.3982;

model(linear);
# cpie = 1 + constepinf / 100;                 // gross inflation rate
# cgamma = 1 + ctrend / 100;                   // gross growth rate
# cbeta = 1 / (1 + constebeta / 100);          // discount factor
# clandap = cfc;                               // fixed cost share / gross price markup
# cbetabar = cbeta * cgamma ^ (-csigma);       // growth-adjusted discount factor
# cr = cpie / cbetabar;                        // steady-state gross nominal interest rate
# crk = 1 / cbetabar - (1 - ctou);             // steady-state rental rate
# cw = (calfa ^ calfa * (1 - calfa) ^ (1 - calfa) / (clandap * crk ^ calfa)) ^ (1 / (1 - calfa));
# cikbar = 1 - (1 - ctou) / cgamma;            // (1 - k_1) in the law of motion of capital
# cik = cikbar * cgamma;                       // investment-capital ratio
# clk = (1 - calfa) / calfa * crk / cw;        // labour-capital ratio
# cky = cfc * clk ^ (calfa - 1);               // capital-output ratio
# ciy = cik * cky;                             // investment-output ratio
# ccy = 1 - cg - cik * cky;                    // consumption-output ratio
# crkky = crk * cky;                           // z_y = R^k_* k_y
# cwhlc = (1 / clandaw) * (1 - calfa) / calfa * crk * cky / ccy;  // W^h_* L_* / C_*
# conster = (cr - 1) * 100;                    // steady-state federal funds rate

// flexible-price economy
[name='flex: marginal product of labour']
a = calfa * rkf + (1 - calfa) * wf;
[name='flex: capacity utilisation']
zcapf = rkf * 1 / (czcap / (1 - czcap));
[name='flex: firm FOC capital']
rkf = wf + labf - kf;
[name='flex: capital services']
kf = zcapf + kpf(-1);
[name='flex: investment Euler equation']
invef = qs + 1 / (1 + cgamma * cbetabar) * (pkf * 1 / (csadjcost * cgamma ^ 2) + invef(-1)
        + invef(+1) * cgamma * cbetabar);
[name='flex: value of capital']
pkf = b * (1 / ((1 - chabb / cgamma) / (csigma * (1 + chabb / cgamma)))) - rrf
      + rkf(+1) * (crk / (crk + (1 - ctou))) + pkf(+1) * ((1 - ctou) / (crk + (1 - ctou)));
[name='flex: consumption Euler equation']
cf = b + cf(-1) * chabb / cgamma / (1 + chabb / cgamma) + cf(+1) * 1 / (1 + chabb / cgamma)
     + (labf - labf(+1)) * ((csigma - 1) * cwhlc / (csigma * (1 + chabb / cgamma)))
     - rrf * (1 - chabb / cgamma) / (csigma * (1 + chabb / cgamma));
[name='flex: resource constraint']
yf = g + cf * ccy + invef * ciy + zcapf * crkky;
[name='flex: production function']
yf = cfc * (a + calfa * kf + (1 - calfa) * labf);
[name='flex: wage']
wf = labf * csigl + cf * 1 / (1 - chabb / cgamma) - cf(-1) * chabb / cgamma / (1 - chabb / cgamma);
[name='flex: law of motion of capital']
kpf = kpf(-1) * (1 - cikbar) + invef * cikbar + qs * csadjcost * cgamma ^ 2 * cikbar;

// sticky-price and sticky-wage economy
[name='marginal cost']
mc = calfa * rk + (1 - calfa) * w - a;
[name='capacity utilisation']
zcap = 1 / (czcap / (1 - czcap)) * rk;
[name='firm FOC capital']
rk = w + lab - k;
[name='capital services']
k = zcap + kp(-1);
[name='investment Euler equation']
inve = qs + 1 / (1 + cgamma * cbetabar) * (pk * 1 / (csadjcost * cgamma ^ 2) + inve(-1)
       + inve(+1) * cgamma * cbetabar);
[name='value of capital']
pk = pinf(+1) - r + b * 1 / ((1 - chabb / cgamma) / (csigma * (1 + chabb / cgamma)))
     + rk(+1) * (crk / (crk + (1 - ctou))) + pk(+1) * ((1 - ctou) / (crk + (1 - ctou)));
[name='consumption Euler equation']
c = b + c(-1) * chabb / cgamma / (1 + chabb / cgamma) + c(+1) * 1 / (1 + chabb / cgamma)
    + (lab - lab(+1)) * ((csigma - 1) * cwhlc / (csigma * (1 + chabb / cgamma)))
    - (r - pinf(+1)) * (1 - chabb / cgamma) / (csigma * (1 + chabb / cgamma));
[name='resource constraint']
y = g + c * ccy + inve * ciy + zcap * crkky;
[name='production function']
y = cfc * (a + calfa * k + (1 - calfa) * lab);
[name='price Phillips curve']
pinf = spinf + 1 / (1 + cindp * cgamma * cbetabar) * (cindp * pinf(-1)
       + pinf(+1) * cgamma * cbetabar
       + mc * (1 - cprobp) * (1 - cprobp * cgamma * cbetabar) / cprobp / (1 + (cfc - 1) * curvp));
[name='wage Phillips curve']
w = sw + w(-1) * 1 / (1 + cgamma * cbetabar) + w(+1) * cgamma * cbetabar / (1 + cgamma * cbetabar)
    + pinf(-1) * cindw / (1 + cgamma * cbetabar)
    - pinf * (1 + cindw * cgamma * cbetabar) / (1 + cgamma * cbetabar)
    + pinf(+1) * cgamma * cbetabar / (1 + cgamma * cbetabar)
    + (csigl * lab + c * 1 / (1 - chabb / cgamma)
       - c(-1) * chabb / cgamma / (1 - chabb / cgamma) - w)
      * 1 / (1 + (clandaw - 1) * curvw) * (1 - cprobw) * (1 - cprobw * cgamma * cbetabar)
      / (cprobw * (1 + cgamma * cbetabar));
[name='Taylor rule']
r = pinf * crpi * (1 - crr) + (1 - crr) * cry * (y - yf) + crdy * (y - yf - y(-1) + yf(-1))
    + crr * r(-1) + ms;

// shock processes
a = crhoa * a(-1) + ea;
b = crhob * b(-1) + eb;
g = crhog * g(-1) + eg + ea * cgy;
qs = crhoqs * qs(-1) + eqs;
ms = crhoms * ms(-1) + em;
spinf = crhopinf * spinf(-1) + epinfma - cmap * epinfma(-1);
epinfma = epinf;
sw = crhow * sw(-1) + ewma - cmaw * ewma(-1);
ewma = ew;
[name='law of motion of capital']
kp = kp(-1) * (1 - cikbar) + inve * cikbar + qs * csadjcost * cgamma ^ 2 * cikbar;

// measurement
dy = ctrend + y - y(-1);
dc = ctrend + c - c(-1);
dinve = ctrend + inve - inve(-1);
pinfobs = constepinf + pinf;
robs = r + conster;
dw = ctrend + w - w(-1);
labobs = lab + constelab;
end;

steady_state_model;
// model-local variables are not visible here: conster again from its definition
cbetabar_ss = 1 / (1 + constebeta / 100) * (1 + ctrend / 100) ^ (-csigma);
dy = ctrend;
dc = ctrend;
dinve = ctrend;
pinfobs = constepinf;
robs = ((1 + constepinf / 100) / cbetabar_ss - 1) * 100;
dw = ctrend;
labobs = constelab;
end;

shocks;
var ea; stderr 0.4618;
var eb; stderr 1.8513;
var eg; stderr 0.6090;
var eqs; stderr 0.6017;
var em; stderr 0.2397;
var epinf; stderr 0.1455;
var ew; stderr 0.2089;
end;

stoch_simul(order = 1, irf = 0);

varobs dy dc dinve labobs pinfobs dw robs;

estimated_params;
stderr ea,    inv_gamma_pdf, 0.1, 2;
stderr eb,    inv_gamma_pdf, 0.1, 2;
stderr eg,    inv_gamma_pdf, 0.1, 2;
stderr eqs,   inv_gamma_pdf, 0.1, 2;
stderr em,    inv_gamma_pdf, 0.1, 2;
stderr epinf, inv_gamma_pdf, 0.1, 2;
stderr ew,    inv_gamma_pdf, 0.1, 2;
crhoa,      beta_pdf,   0.5,   0.20;
crhob,      beta_pdf,   0.5,   0.20;
crhog,      beta_pdf,   0.5,   0.20;
crhoqs,     beta_pdf,   0.5,   0.20;
crhoms,     beta_pdf,   0.5,   0.20;
crhopinf,   beta_pdf,   0.5,   0.20;
crhow,      beta_pdf,   0.5,   0.20;
cmap,       beta_pdf,   0.5,   0.2;
cmaw,       beta_pdf,   0.5,   0.2;
csadjcost,  normal_pdf, 4,     1.5;
csigma,     normal_pdf, 1.50,  0.375;
chabb,      beta_pdf,   0.7,   0.1;
cprobw,     beta_pdf,   0.5,   0.1;
csigl,      normal_pdf, 2,     0.75;
cprobp,     beta_pdf,   0.5,   0.10;
cindw,      beta_pdf,   0.5,   0.15;
cindp,      beta_pdf,   0.5,   0.15;
czcap,      beta_pdf,   0.5,   0.15;
cfc,        normal_pdf, 1.25,  0.125;
crpi,       normal_pdf, 1.5,   0.25;
crr,        beta_pdf,   0.75,  0.10;
cry,        normal_pdf, 0.125, 0.05;
crdy,       normal_pdf, 0.125, 0.05;
constepinf, gamma_pdf,  0.625, 0.1;
constebeta, gamma_pdf,  0.25,  0.1;
constelab,  normal_pdf, 0.0,   2.0;
ctrend,     normal_pdf, 0.4,   0.10;
cgy,        normal_pdf, 0.5,   0.25;
calfa,      normal_pdf, 0.3,   0.05;
end;
