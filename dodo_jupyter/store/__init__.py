"""Persistence: the database, its migrations and the vault, opened together.

:class:`Store` is what the rest of dodo_jupyter holds. :meth:`Store.open_sync` runs the
migrations and checks the vault; it is called once, off the event loop. A vault problem
(missing or wrong key) does not stop the store: it is kept in :attr:`Store.vault_error`
and raised by :attr:`Store.vault`, so everything that needs no secret keeps working.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..exceptions import VaultError
from . import migrate
from .database import Database
from .models import ENCRYPTED_COLUMNS, VaultMeta
from .vault import CRYPT_KEY_ENV, KeySet, Vault, generate_key, load_keys, write_key_file

__all__ = ["Database", "Store"]

_CANARY_NAME = "canary"
_CANARY_VALUE = "dodo-jupyter vault canary"


class Store:
    """The database plus the vault over it.

    Parameters
    ----------
    db_url:
        SQLAlchemy URL of the database.
    key_file:
        Where the generated key lives when ``DODO_CRYPT_KEY`` is not set; None for a store
        that keeps no secrets (the hub catalog service): it has no vault at all.
    environ:
        The environment to read ``DODO_CRYPT_KEY`` from (``os.environ`` by default).
    """

    def __init__(
        self, db_url: str, key_file: Path | None, environ: dict[str, str] | None = None
    ) -> None:
        self.db_url = db_url
        self.key_file = key_file
        self._environ = environ
        self._db: Database | None = None
        self._vault: Vault | None = None
        self.vault_error: VaultError | None = None
        self.key_source: str | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            raise RuntimeError("Store.open_sync() has not run")
        return self._db

    @property
    def vault(self) -> Vault:
        """The vault; raises the :class:`VaultError` found at start, if any."""
        if self._vault is None:
            raise self.vault_error or VaultError("The vault has not been opened yet.")
        return self._vault

    def open_sync(self) -> None:
        """Connect, migrate to the newest schema and check the keys (blocking).

        Calling it again (after a failure) closes the previous connections first."""
        self.close()
        self._db = Database(self.db_url)
        migrate.upgrade(self._db.engine)
        if self.key_file is None:
            self.vault_error = VaultError("This store keeps no secrets: it has no vault.")
            return
        try:
            self._vault = self._open_vault()
            self.vault_error = None
        except VaultError as e:
            self._vault = None
            self.vault_error = e

    def _load_keys(self) -> KeySet | None:
        if self.key_file is None:
            return None
        return load_keys(self.key_file, environ=self._environ)

    def _open_vault(self) -> Vault:
        assert self.key_file is not None  # open_sync opens no vault without a key file
        keyset = self._load_keys()
        canary = self.db.read_sync(_read_canary)
        if canary is None:
            if keyset is None:
                write_key_file(self.key_file, [generate_key()])
                keyset = self._load_keys()
                assert keyset is not None
            vault = Vault(keyset.keys)
            self.db.write_sync(_write_canary, vault.encrypt(_CANARY_VALUE))
        else:
            if keyset is None:
                raise VaultError(
                    "This store holds encrypted secrets but no key is available: set "
                    f"{CRYPT_KEY_ENV} to the key used before, or restore {str(self.key_file)!r}."
                )
            vault = Vault(keyset.keys)
            if vault.decrypt(canary) != _CANARY_VALUE:
                raise VaultError("The vault canary holds an unexpected value.")
        self.key_source = keyset.source
        return vault

    def rotate_key_sync(self) -> int:
        """Re-encrypt every stored secret with a new key; returns how many were re-encrypted.

        With ``DODO_CRYPT_KEY`` set, the first key in it is the new key (put the new key first
        and keep the old ones after it, then remove them once this has run). With a key file,
        a new key is generated and written; the old key is dropped after re-encryption.
        """
        keyset = self._load_keys()
        if keyset is None:
            raise VaultError(f"No key to rotate: set {CRYPT_KEY_ENV} or start the server once.")
        if keyset.source == "env" or self.key_file is None:
            return self.db.write_sync(_rotate_all, Vault(keyset.keys))
        old = [k.hex() for k in keyset.keys]
        new = generate_key()
        # Keep the old key in the file until every secret is re-encrypted.
        write_key_file(self.key_file, [new, *old])
        count = self.db.write_sync(_rotate_all, Vault([bytes.fromhex(k) for k in (new, *old)]))
        write_key_file(self.key_file, [new])
        self._vault = Vault([bytes.fromhex(new)])
        return count

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _read_canary(session: Session) -> str | None:
    row = session.get(VaultMeta, _CANARY_NAME)
    return row.value_enc if row else None


def _write_canary(session: Session, value: str) -> None:
    session.merge(VaultMeta(name=_CANARY_NAME, value_enc=value))


def _rotate_all(session: Session, vault: Vault) -> int:
    count = 0
    for model, column in ENCRYPTED_COLUMNS:
        for row in session.scalars(select(model)):
            value = getattr(row, column)
            if value:
                setattr(row, column, vault.rotate(value))
                count += 1
    return count
