// OpenSSLKit — see the README section on targets.
