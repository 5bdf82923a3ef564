// Journal — see the README section on targets.
