"""The vault: key formats, the key file, wrong and missing keys, rotation."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from dodo_jupyter.exceptions import VaultError
from dodo_jupyter.store import Store
from dodo_jupyter.store.models import VaultMeta
from dodo_jupyter.store.vault import Vault, parse_keys

RAW = bytes(range(32))


@pytest.mark.parametrize(
    "spelling",
    [
        RAW.hex(),
        base64.urlsafe_b64encode(RAW).decode(),
        base64.b64encode(bytes(range(200, 232))).decode(),  # standard alphabet with '+' '/'
        "".join(chr(65 + (b % 26)) for b in RAW),  # 32 raw characters
    ],
)
def test_key_formats_jupyterhub_accepts(spelling: str) -> None:
    (key,) = parse_keys(spelling)
    assert len(key) == 32
    vault = Vault([key])
    assert vault.decrypt(vault.encrypt("secret")) == "secret"


@pytest.mark.parametrize("bad", ["", ";", "tooshort", "zz" * 32, "a" * 44])
def test_bad_keys_say_how_to_fix(bad: str) -> None:
    with pytest.raises(VaultError, match="DODO_CRYPT_KEY"):
        parse_keys(bad)


def test_first_key_encrypts_every_key_decrypts() -> None:
    old, new = os.urandom(32), os.urandom(32)
    token = Vault([old]).encrypt("s")
    both = Vault(parse_keys(f"{new.hex()};{old.hex()}"))
    assert both.decrypt(token) == "s"
    with pytest.raises(
        VaultError
    ):  # the new (first) key encrypted it, so the old one can't read it
        Vault([old]).decrypt(both.encrypt("t"))


def _canary(store: Store) -> str:
    return store.db.read_sync(lambda s: s.get(VaultMeta, "canary").value_enc)


def test_key_file_is_created_0600_on_first_start(db_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "d" / "crypt.key"
    store = Store(db_url, key_file, environ={})
    store.open_sync()
    try:
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert store.vault_error is None and store.key_source == str(key_file)
        assert store.vault.decrypt(store.vault.encrypt("x")) == "x"
    finally:
        store.close()


def test_wrong_key_is_reported_and_destroys_nothing(db_url: str, tmp_path: Path) -> None:
    right = os.urandom(32).hex()
    store = Store(db_url, tmp_path / "k", environ={"DODO_CRYPT_KEY": right})
    store.open_sync()
    canary = _canary(store)
    store.close()

    wrong = Store(db_url, tmp_path / "k", environ={"DODO_CRYPT_KEY": os.urandom(32).hex()})
    wrong.open_sync()  # no exception: the server keeps running
    try:
        assert wrong.vault_error is not None
        assert "restore the previous key" in wrong.vault_error.message
        with pytest.raises(VaultError):
            wrong.vault.encrypt("x")
        assert _canary(wrong) == canary
    finally:
        wrong.close()

    again = Store(db_url, tmp_path / "k", environ={"DODO_CRYPT_KEY": right})
    again.open_sync()
    try:
        assert again.vault_error is None
    finally:
        again.close()


def test_missing_key_for_existing_secrets_is_not_replaced(db_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "crypt.key"
    store = Store(db_url, key_file, environ={})
    store.open_sync()
    store.close()
    key_file.unlink()

    lost = Store(db_url, key_file, environ={})
    lost.open_sync()
    try:
        assert lost.vault_error is not None
        assert "no key is available" in lost.vault_error.message
        assert not key_file.exists()  # no new key silently replaces the lost one
    finally:
        lost.close()


def test_key_file_readable_by_others_is_refused(db_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "crypt.key"
    store = Store(db_url, key_file, environ={})
    store.open_sync()
    store.close()
    key_file.chmod(0o644)
    again = Store(db_url, key_file, environ={})
    again.open_sync()
    try:
        assert again.vault_error is not None and "chmod 600" in again.vault_error.message
    finally:
        again.close()


def test_rotate_key_file(db_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "crypt.key"
    store = Store(db_url, key_file, environ={})
    store.open_sync()
    old_key = key_file.read_text().strip()
    before = _canary(store)
    assert store.rotate_key_sync() == 1
    store.close()

    new_key = key_file.read_text().strip()
    assert new_key != old_key and ";" not in new_key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    reopened = Store(db_url, key_file, environ={})
    reopened.open_sync()
    try:
        assert reopened.vault_error is None
        assert _canary(reopened) != before
        with pytest.raises(VaultError):
            Vault([bytes.fromhex(old_key)]).decrypt(_canary(reopened))
    finally:
        reopened.close()


def test_rotate_env_keys(db_url: str, tmp_path: Path) -> None:
    old, new = os.urandom(32).hex(), os.urandom(32).hex()
    store = Store(db_url, tmp_path / "k", environ={"DODO_CRYPT_KEY": old})
    store.open_sync()
    store.close()

    rotating = Store(db_url, tmp_path / "k", environ={"DODO_CRYPT_KEY": f"{new};{old}"})
    rotating.open_sync()
    assert rotating.rotate_key_sync() == 1
    rotating.close()

    only_new = Store(db_url, tmp_path / "k", environ={"DODO_CRYPT_KEY": new})
    only_new.open_sync()
    try:
        assert only_new.vault_error is None
    finally:
        only_new.close()
    only_old = Store(db_url, tmp_path / "k", environ={"DODO_CRYPT_KEY": old})
    only_old.open_sync()
    try:
        assert only_old.vault_error is not None
    finally:
        only_old.close()
