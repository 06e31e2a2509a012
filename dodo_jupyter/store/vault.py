"""The vault: MultiFernet encryption of every secret dodo_jupyter stores.

Keys come from ``DODO_CRYPT_KEY`` (``;``-separated; the first key encrypts, every key
decrypts) in the formats JupyterHub accepts for its own crypt key: 32 raw bytes, 64 hex
characters, or 44 characters of (url-safe) base64. Without the variable, a key file
(mode 0600) in the Jupyter data directory is used, created on the first start of an
empty store. This is never JupyterHub's own crypt key.

The store keeps an encrypted *canary*. At start the canary tells a wrong or missing key
apart from a fresh store: with a wrong key nothing is decrypted, overwritten or deleted;
the vault reports a :class:`~dodo_jupyter.exceptions.VaultError` that says which key to
restore, and everything that needs no secret keeps working.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from ..exceptions import VaultError

__all__ = [
    "CRYPT_KEY_ENV",
    "KeySet",
    "Vault",
    "generate_key",
    "load_keys",
    "parse_keys",
    "write_key_file",
]

CRYPT_KEY_ENV = "DODO_CRYPT_KEY"


def _decode_key(key: str) -> bytes:
    """Return the 32-byte key a configured key string stands for."""
    raw = key.encode("utf-8")
    if len(raw) == 44:
        try:
            raw = base64.urlsafe_b64decode(raw)
        except (ValueError, binascii.Error):
            try:
                raw = base64.b64decode(raw)
            except (ValueError, binascii.Error):
                pass
    elif len(raw) == 64:
        try:
            raw = binascii.a2b_hex(raw)
        except (ValueError, binascii.Error):
            pass
    if len(raw) != 32:
        raise VaultError(
            f"A key in {CRYPT_KEY_ENV} is not 32 bytes: give each key as 64 hex characters, "
            "44 characters of base64, or 32 raw bytes (generate one with `openssl rand -hex 32`)."
        )
    return raw


def parse_keys(value: str) -> list[bytes]:
    """Parse a ``;``-separated key list into 32-byte keys, the encrypting key first.

    Raises
    ------
    VaultError
        when the list is empty or a key has the wrong size or encoding.
    """
    parts = [part.strip() for part in value.split(";") if part.strip()]
    if not parts:
        raise VaultError(f"{CRYPT_KEY_ENV} is set but holds no key.")
    return [_decode_key(part) for part in parts]


def generate_key() -> str:
    """A new random key, hex-encoded (the format written to key files)."""
    return secrets.token_hex(32)


def write_key_file(path: Path, keys: list[str]) -> None:
    """Write ``keys`` (encrypting key first) to ``path`` atomically, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(";".join(keys) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


@dataclass(frozen=True)
class KeySet:
    """Keys and where they came from (``"env"`` or the key file's path)."""

    keys: list[bytes]
    source: str


def load_keys(key_file: Path, *, environ: dict[str, str] | None = None) -> KeySet | None:
    """Load keys from ``DODO_CRYPT_KEY``, else from ``key_file``; None when neither exists."""
    env = os.environ if environ is None else environ
    value = env.get(CRYPT_KEY_ENV, "")
    if value.strip():
        return KeySet(parse_keys(value), "env")
    if key_file.exists():
        mode = key_file.stat().st_mode & 0o777
        if mode & 0o077:
            raise VaultError(
                f"Key file {str(key_file)!r} is readable by others (mode {oct(mode)}): "
                f"run `chmod 600 {key_file}`."
            )
        return KeySet(parse_keys(key_file.read_text()), str(key_file))
    return None


class Vault:
    """Encrypts and decrypts secrets with a MultiFernet over the configured keys."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise VaultError(f"No encryption key: set {CRYPT_KEY_ENV}.")
        self._fernet = MultiFernet([Fernet(base64.urlsafe_b64encode(k)) for k in keys])
        self._first = keys[0]

    def derived_key(self, purpose: str) -> bytes:
        """A key for ``purpose`` (such as keyed hashes), derived from the first key: it
        changes when the keys are rotated."""
        return hmac.new(self._first, b"dodo-jupyter/" + purpose.encode(), "sha256").digest()

    def encrypt(self, plaintext: str) -> str:
        """Encrypt ``plaintext`` with the first key."""
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        """Decrypt with any key; a :class:`VaultError` when no key fits."""
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError) as e:
            raise VaultError(
                "A stored secret cannot be decrypted with the configured keys: "
                f"restore the previous key (append it to {CRYPT_KEY_ENV} after a ';', or "
                "restore the key file)."
            ) from e

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt ``ciphertext`` with the first key."""
        try:
            return self._fernet.rotate(ciphertext.encode("ascii")).decode("ascii")
        except (InvalidToken, ValueError) as e:
            raise VaultError(
                "A stored secret cannot be decrypted with the configured keys, so it cannot be "
                f"rotated: include the old key in {CRYPT_KEY_ENV} after the new one."
            ) from e
