// A three-equation New Keynesian model (Galí 2015, ch. 3, log-linearised): dynamic IS curve,
// Phillips curve, Taylor rule with smoothing, AR(1) demand and cost-push shocks. Observed:
// output gap, inflation and the nominal rate (in percent), with measurement error.
// Written for numpyro_statespace (MIT).

@#define smoothing = 1

var ygap pinf r u_d u_s;
varexo e_d e_s e_r;
parameters beta sigma kappa phi_pi phi_y rho_r rho_d rho_s;

beta   = 0.99;
sigma  = 1;
kappa  = 0.1;
phi_pi = 1.5;
phi_y  = 0.125;
rho_r  = 0.7;
rho_d  = 0.8;
rho_s  = 0.5;

model(linear);
  # real_rate = r - pinf(+1);
  [name = 'dynamic IS']
  ygap = ygap(+1) - (1/sigma)*real_rate + u_d;
  [name = 'Phillips curve']
  pinf = beta*pinf(+1) + kappa*ygap + u_s;
  [name = 'Taylor rule']
@#if smoothing
  r = rho_r*r(-1) + (1-rho_r)*(phi_pi*pinf + phi_y*ygap) + e_r;
@#else
  r = phi_pi*pinf + phi_y*ygap + e_r;
@#endif
  u_d = rho_d*u_d(-1) + e_d;
  u_s = rho_s*u_s(-1) + e_s;
end;

shocks;
  var e_d; stderr 0.5;
  var e_s; stderr 0.2;
  var e_r; stderr 0.25;
  var ygap; stderr 0.05;
  var pinf; stderr 0.05;
  var r;    stderr 0.05;
end;

varobs ygap pinf r;

estimated_params;
  kappa,  gamma_pdf,     0.1,  0.05;
  phi_pi, normal_pdf,    1.5,  0.25;
  phi_y,  normal_pdf,    0.125, 0.05;
  rho_r,  beta_pdf,      0.7,  0.1;
  rho_d,  beta_pdf,      0.5,  0.2;
  rho_s,  beta_pdf,      0.5,  0.2;
  stderr e_d, inv_gamma_pdf, 0.5, 2;
  stderr e_s, inv_gamma_pdf, 0.2, 2;
  stderr e_r, inv_gamma_pdf, 0.25, 2;
end;

stoch_simul(order=1, irf=0);
