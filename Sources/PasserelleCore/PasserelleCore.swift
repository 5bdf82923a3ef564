// PasserelleCore — see the README section on targets.
