"""Nodes: the control-plane side of the team's own GPU hosts (registration, heartbeats, placements, queue)."""
