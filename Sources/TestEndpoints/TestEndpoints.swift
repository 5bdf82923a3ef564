// TestEndpoints — see the README section on targets.
