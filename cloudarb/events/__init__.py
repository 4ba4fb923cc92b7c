"""Job progress events: persisted first, then broadcast (in-process or Redis pub/sub).

A subscriber subscribes to the live channel before reading what was persisted, so nothing published
in between is lost; duplicates are dropped by sequence number.
"""

from cloudarb.events.bus import EventBus, LocalBus, RedisBus

__all__ = ["EventBus", "LocalBus", "RedisBus"]
