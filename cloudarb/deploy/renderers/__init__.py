"""Renderers: a stored solution as Terraform JSON, Kubernetes manifests, SkyPilot and dstack files (pure functions)."""
