"""Per-deployment SSH keys and secrets at rest.

A generated private key is encrypted (Fernet: AES-128-CBC + HMAC-SHA256) with a key derived from the
installation's signing key, shown once in the answer that created it, and never logged.
"""

from __future__ import annotations

import base64
import hashlib

from cloudarb.config import Settings
from cloudarb.security import signing_key


def _fernet(settings: Settings) -> object:
    from cryptography.fernet import Fernet

    digest = hashlib.sha256(b"cloudarb-deploy-secrets\x00" + signing_key(settings).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(settings: Settings, text: str) -> str:
    token: bytes = _fernet(settings).encrypt(text.encode())  # type: ignore[attr-defined]
    return token.decode()


def decrypt(settings: Settings, token: str) -> str:
    text: bytes = _fernet(settings).decrypt(token.encode())  # type: ignore[attr-defined]
    return text.decode()


def generate_ssh_key(comment: str) -> tuple[str, str]:
    """A new Ed25519 key pair: (OpenSSH public key line, OpenSSH private key PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return f"{public} {comment}", private
