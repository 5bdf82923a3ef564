// CDA — see the README section on targets.
