// Signing — see the README section on targets.
