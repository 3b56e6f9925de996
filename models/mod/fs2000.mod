// Schorfheide (2000) cash-in-advance model ("FS2000"), equations and steady state as in
// MacroModelling.jl's models/FS2000.jl (MIT, (c) 2022 Thore Kockerols), which translates
// Dynare's fs2000 example. Shocks are unit-variance and scaled by z_e_a, z_e_m as there.
// Priors: Schorfheide (2000), as in Dynare's fs2000 example (published values).
// Written for numpyro_statespace (MIT).

var P R W c d dA e gp_obs gy_obs k l log_gp_obs log_gy_obs m n y;
varexo e_a e_m;
parameters alp bet gam mst rho psi del z_e_a z_e_m;

alp   = 0.356;
bet   = 0.993;
gam   = 0.0085;
mst   = 1.0002;
rho   = 0.129;
psi   = 0.65;
del   = 0.01;
z_e_a = 0.035449;
z_e_m = 0.008862;

model;
  dA = exp(gam + z_e_a*e_a);
  log(m) = (1-rho)*log(mst) + rho*log(m(-1)) + z_e_m*e_m;
  -P/(c(+1)*P(+1)*m) + bet*P(+1)*(alp*exp(-alp*(gam + log(e(+1))))*k^(alp-1)*n(+1)^(1-alp)
      + (1-del)*exp(-(gam + log(e(+1)))))/(c(+2)*P(+2)*m(+1)) = 0;
  W = l/n;
  -(psi/(1-psi))*(c*P/(1-n)) + l/n = 0;
  R = P*(1-alp)*exp(-alp*(gam + z_e_a*e_a))*k(-1)^alp*n^(-alp)/W;
  1/(c*P) - bet*P*(1-alp)*exp(-alp*(gam + z_e_a*e_a))*k(-1)^alp*n^(1-alp)/(m*l*c(+1)*P(+1)) = 0;
  c + k = exp(-alp*(gam + z_e_a*e_a))*k(-1)^alp*n^(1-alp) + (1-del)*exp(-(gam + z_e_a*e_a))*k(-1);
  P*c = m;
  m - 1 + d = l;
  e = exp(z_e_a*e_a);
  y = k(-1)^alp*n^(1-alp)*exp(-alp*(gam + z_e_a*e_a));
  gy_obs = dA*y/y(-1);
  gp_obs = (P/P(-1))*m(-1)/dA;
  log_gy_obs = log(gy_obs);
  log_gp_obs = log(gp_obs);
end;

steady_state_model;
  dA = exp(gam);
  gst = 1/dA;
  m = mst;
  khst = ((1 - gst*bet*(1-del))/(alp*gst^alp*bet))^(1/(alp-1));
  xist = (((khst*gst)^alp - (1 - gst*(1-del))*khst)/mst)^(-1);
  nust = psi*mst^2/((1-alp)*(1-psi)*bet*gst^alp*khst^alp);
  n = xist/(nust + xist);
  P = xist + nust;
  k = khst*n;
  l = psi*mst*n/((1-psi)*(1-n));
  c = mst/P;
  d = l - mst + 1;
  y = k^alp*n^(1-alp)*gst^alp;
  R = mst/bet;
  W = l/n;
  e = 1;
  gp_obs = m/dA;
  gy_obs = dA;
  log_gp_obs = log(gp_obs);
  log_gy_obs = log(gy_obs);
end;

shocks;
  var e_a; stderr 1;
  var e_m; stderr 1;
end;

varobs log_gy_obs log_gp_obs;  // data: logs of models/data/FS2000_data.csv's columns

estimated_params;
  alp,   beta_pdf,      0.356,    0.02;
  bet,   beta_pdf,      0.993,    0.002;
  gam,   normal_pdf,    0.0085,   0.003;
  mst,   normal_pdf,    1.0002,   0.007;
  rho,   beta_pdf,      0.129,    0.223;
  psi,   beta_pdf,      0.65,     0.05;
  del,   beta_pdf,      0.01,     0.005;
  z_e_a, inv_gamma_pdf, 0.035449, inf;
  z_e_m, inv_gamma_pdf, 0.008862, inf;
end;

estimation(order=1, datafile=FS2000_data, mode_compute=0);
