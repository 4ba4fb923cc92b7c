"""Loopback fakes of the providers' provisioning APIs (see ``server.py`` for the harness and its
control endpoint), one module per provider, in the documented request and response shapes."""
