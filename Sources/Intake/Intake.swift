// Intake — see the README section on targets.
