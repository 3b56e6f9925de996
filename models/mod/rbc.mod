// The RBC model of models/rbc.py (DifferentiableStateSpaceModels.jl's RBC), in Dynare timing:
// k is capital installed at the end of period t (models/rbc.py's k_{t+1}), so production
// uses k(-1); the shock enters with a minus sign as there (B = (0, -sigma)).
// Written for numpyro_statespace (MIT).

var c q k z;
varexo eps;
parameters alpha beta rho delta sigma Omega;

alpha = 0.5;
beta  = 0.95;
rho   = 0.2;
delta = 0.02;
sigma = 0.01;
Omega = 0.01;   /* observation-noise standard deviation */

model;
  [name = 'Euler equation']
  1/c = beta/c(+1) * (alpha*exp(z(+1))*k^(alpha-1) + 1 - delta);
  [name = 'resource constraint']
  c + k = (1-delta)*k(-1) + q;
  [name = 'production']
  q = exp(z)*k(-1)^alpha;
  [name = 'technology']
  z = rho*z(-1) - sigma*eps;
end;

steady_state_model;
  r = (1/beta - 1 + delta)/alpha;
  k = r^(1/(alpha-1));
  q = r^(alpha/(alpha-1));
  c = q - delta*k;
  z = 0;
end;

shocks;
  var eps = 1;
  var c; stderr Omega;
  var q; stderr Omega;
end;

varobs c q;

estimated_params;
  alpha, uniform_pdf, , , 0.2, 0.8;
  beta,  uniform_pdf, , , 0.5, 0.99;
end;

stoch_simul(order=1, irf=0);
