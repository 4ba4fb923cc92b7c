"""Provisioning: one module per provider, registered in an explicit dict (``registry.py``)."""
