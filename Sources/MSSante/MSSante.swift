// MSSante — see the README section on targets.
