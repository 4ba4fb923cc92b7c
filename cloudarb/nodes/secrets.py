"""Node credentials: join tokens and node tokens are random 256-bit strings stored only as SHA-256 hashes
(as API keys are), so a check is one indexed read and a stolen table holds nothing usable."""

from __future__ import annotations

import hashlib
import secrets

JOIN_TOKEN_PREFIX = "cajoin_"
NODE_TOKEN_PREFIX = "canode_"


def new_secret(prefix: str) -> tuple[str, str]:
    """(the secret to show once, its hash to store)."""
    secret = prefix + secrets.token_urlsafe(32)
    return secret, digest(secret)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def access_password() -> str:
    """A credential for a container's SSH or Jupyter (shown once, stored hashed)."""
    return secrets.token_urlsafe(18)
