// DMP — see the README section on targets.
