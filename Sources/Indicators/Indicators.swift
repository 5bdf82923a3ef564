// Indicators — see the README section on targets.
