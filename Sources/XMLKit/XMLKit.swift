// XMLKit — see the README section on targets.
