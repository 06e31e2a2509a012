"""Code-mode kernels kept from the server's secrets (DodoApp.code_mode_filesystem_isolation,
Linux Landlock): the rules on a temporary tree, run in a subprocess (Landlock cannot be
undone), hidden and read-only paths; the launcher where it cannot isolate; the paths dodo
hides and makes read-only; and a real kernel behind /dodo/mcp/codemode that cannot open
dodo's database, its key file, the runtime directory's files or the server's environment
in /proc, nor write the Jupyter config, the server's Python or the user's IPython
directory, yet imports packages, works in its notebook folder, /tmp and the home
directory, has an IPython directory of its own and calls tools through the gateway."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dodo_jupyter.codemode.isolation import hidden_paths, in_temporary_folder, read_only_paths
from dodo_jupyter.runtime import DodoRuntime

from .codemode_peers import (
    code_mode_config,
    code_mode_tokens,
    landlock_abi,
    needs_landlock,
    run,
    text,
)
from .conftest import Api
from .governance_peers import agent, govern, governed_upstream
from .mcp_peers import RunningServer

#: Runs in a subprocess: isolate as the launcher does, then try each (what, path).
PROBE = """
import json, os, subprocess, sys
from dodo_jupyter.codemode import launch
from dodo_jupyter.codemode.landlock import hide

hidden, read_only, attempts, max_rules = json.loads(sys.argv[1])
if max_rules:
    outcome = hide(hidden, max_rules=max_rules)
    done = {"isolated": outcome.isolated, "reason": outcome.reason}
else:
    done = launch.isolate(hidden, read_only=read_only, required=False, connection_file=None)

def attempt(what, path):
    try:
        if what == "read":
            open(path).read()
        elif what == "append":
            open(path, "a").write("+")
        elif what == "create":
            open(path, "x").close()
        elif what == "list":
            return sorted(os.listdir(path))
        elif what == "mkdir":
            os.mkdir(path)
        elif what == "remove":
            os.remove(path)
        elif what == "rmdir":
            os.rmdir(path)
        elif what == "rename":
            os.rename(path, path + "-renamed")
        elif what == "truncate":
            os.truncate(path, 0)
        elif what == "move out":
            os.rename(path, path + "-moved-to-outside")
        elif what == "link out":
            os.link(path, os.path.join(os.path.dirname(path), "..", "outside", "linked"))
        elif what == "cat":
            return subprocess.run(["cat", path], capture_output=True).returncode
        elif what == "signal":
            os.kill(int(path), 0)
        return "ok"
    except OSError as e:
        return type(e).__name__

done["attempts"] = [attempt(what, path) for what, path in attempts]
print(json.dumps(done))
"""


def probe(
    hidden: list[Path | str],
    attempts: list[tuple[str, Path | str]],
    max_rules: int = 0,
    cwd: Path | None = None,
    read_only: list[Path | str] | None = None,
) -> dict[str, Any]:
    arguments = json.dumps(
        [
            [str(p) for p in hidden],
            [str(p) for p in read_only or []],
            [[w, str(p)] for w, p in attempts],
            max_rules,
        ]
    )
    done = subprocess.run(
        [sys.executable, "-c", PROBE, arguments],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """tree/{outside/file.txt, a/{secret/f.txt, key.txt, visible.txt, sub/, link}}"""
    root = tmp_path / "tree"
    for folder in ("outside", "a/secret", "a/sub"):
        (root / folder).mkdir(parents=True)
    for name in ("outside/file.txt", "a/secret/f.txt", "a/key.txt", "a/visible.txt"):
        (root / name).write_text("content")
    (root / "a" / "link-to-secret").symlink_to(root / "a" / "secret" / "f.txt")
    (root / "secret-by-another-name").symlink_to(root / "a" / "secret")
    return root


@needs_landlock
def test_hidden_paths_are_out_of_reach_and_the_rest_stays_as_it_was(tree: Path) -> None:
    a = tree / "a"
    attempts: list[tuple[str, Path | str]] = [
        ("read", a / "secret" / "f.txt"),
        ("read", a / "link-to-secret"),
        ("append", a / "key.txt"),
        ("cat", a / "key.txt"),  # a program the kernel starts is held too
        ("move out", a / "key.txt"),
        ("link out", a / "key.txt"),
        ("create", a / "secret" / "new.txt"),
        ("list", a / "secret"),  # names only
        ("read", a / "visible.txt"),
        ("append", a / "visible.txt"),
        ("create", a / "sub" / "new.txt"),
        ("mkdir", a / "sub" / "folder"),
        ("read", tree / "outside" / "file.txt"),
        ("create", tree / "outside" / "new.txt"),
        ("list", a),
        ("create", a / "new.txt"),  # directly in a folder on the way to hidden paths
        ("read", f"/proc/{os.getpid()}/environ"),  # a process outside the sandbox
        ("read", "/proc/self/environ"),
        ("signal", os.getpid()),
    ]
    hidden = [tree / "secret-by-another-name", a / "key.txt", a / "never-made", tree / "outside"]
    done = probe(hidden, attempts, cwd=tree / "outside")
    assert done["isolated"], done["reason"]
    assert done["hidden"] == [str(a / "secret"), str(a / "key.txt"), str(a / "never-made")]
    assert done["remarks"] == [
        f"{tree / 'outside'}: not hidden: it holds the kernel's working directory"
    ]
    denied = "PermissionError"
    refused_signal = denied if landlock_abi() >= 6 else "ok"  # scoped from ABI 6
    assert done["attempts"] == [
        *(denied, denied, denied, 1, denied, "OSError", denied),
        ["f.txt"],
        *("ok", "ok", "ok", "ok", "ok", "ok"),
        ["key.txt", "link-to-secret", "secret", "sub", "visible.txt"],
        *(denied, denied, "ok", refused_signal),
    ]


@needs_landlock
def test_read_only_paths_are_read_and_listed_but_not_changed_but_for_what_is_kept(
    tree: Path,
) -> None:
    a, outside = tree / "a", tree / "outside"
    attempts: list[tuple[str, Path | str]] = [
        ("read", a / "visible.txt"),
        ("list", a),
        ("cat", a / "visible.txt"),
        ("append", a / "visible.txt"),
        ("truncate", a / "visible.txt"),
        ("create", a / "new.txt"),
        ("mkdir", a / "folder"),
        ("remove", a / "key.txt"),
        ("move out", a / "key.txt"),
        ("read", a / "secret" / "f.txt"),  # hidden inside read-only: hidden
        ("list", a / "secret"),  # names only
        ("create", a / "sub" / "new.txt"),  # the working directory, inside: writable
        ("mkdir", a / "sub" / "folder"),
        ("remove", a / "sub" / "new.txt"),
        ("read", outside / "file.txt"),  # a read-only file
        ("append", outside / "file.txt"),
        ("create", outside / "not-yet"),  # a read-only path that is missing
    ]
    read_only = [a, a / "secret" / "f.txt", a / "sub", outside / "file.txt", outside / "not-yet"]
    done = probe([a / "secret"], attempts, cwd=a / "sub", read_only=read_only)
    assert done["isolated"], done["reason"]
    assert done["hidden"] == [str(a / "secret")]
    assert done["read_only"] == [str(a), str(outside / "file.txt"), str(outside / "not-yet")]
    assert done["remarks"] == [
        f"{a}: read-only but for {a / 'sub'}, the kernel's working directory, which stays writable",
        f"{a / 'sub'}: not read-only: it is the kernel's working directory",
    ]
    denied = "PermissionError"
    assert done["attempts"] == [
        "ok",
        ["key.txt", "link-to-secret", "secret", "sub", "visible.txt"],
        0,
        *(denied,) * 6,
        denied,
        ["f.txt"],
        *("ok", "ok", "ok"),
        *("ok", denied, denied),
    ]
    assert (a / "key.txt").read_text() == (a / "visible.txt").read_text() == "content"


@needs_landlock
def test_too_many_rules_leave_the_process_as_it_was_and_say_why(tree: Path) -> None:
    secret = tree / "a" / "secret"
    done = probe([secret], [("read", secret / "f.txt")], max_rules=3)
    assert not done["isolated"]
    assert done["reason"].startswith("more than 3 entries lie beside the way to the paths to")
    assert done["attempts"] == ["ok"]


@pytest.fixture
def crowd(tmp_path: Path) -> Path:
    """A folder with more entries beside a path to hide than the launcher makes rules."""
    folder = tmp_path / "crowd"
    folder.mkdir()
    for i in range(4100):
        (folder / str(i)).touch()
    return folder / "hide-me"


@needs_landlock
def test_the_launcher_refuses_to_start_a_kernel_it_must_but_cannot_isolate(
    tmp_path: Path, crowd: Path
) -> None:
    connection_file = tmp_path / "kernel-1.json"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "dodo_jupyter.codemode.launch"),
            *("--isolation", "required", "--hide", str(crowd), "-f", str(connection_file)),
        ],
        capture_output=True,
        text=True,
        timeout=30,  # a launcher that does not refuse runs ipykernel, which waits forever
    )
    assert done.returncode == 1
    assert "the kernel runs without filesystem isolation: more than 4096 entries" in done.stderr
    assert "DodoApp.code_mode_filesystem_isolation is 'required'" in done.stderr
    report = json.loads((tmp_path / "kernel-1-isolation.json").read_text())
    assert report["isolated"] is False and "more than 4096" in report["reason"]


def test_dodo_hides_its_store_key_runtime_directory_and_what_the_admin_adds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    own = tmp_path / "data" / "dodo"
    runtime = [tmp_path / "runtime"]
    by_default = hidden_paths(
        db_url=f"sqlite:///{own / 'dodo.sqlite'}",
        key_file=own / "crypt.key",
        runtime_dirs=runtime,
        extra=["~/.aws", str(tmp_path / "runtime")],
        data_dir=own,
    )
    assert by_default == [str(own), str(runtime[0]), str(tmp_path / "home" / ".aws")]
    elsewhere = tmp_path / "srv" / "db.sqlite"
    assert hidden_paths(
        db_url=f"sqlite:///{elsewhere}",
        key_file=tmp_path / "etc" / "key",
        runtime_dirs=runtime,
        data_dir=own,
    ) == [
        *(str(elsewhere) + suffix for suffix in ("", "-wal", "-shm", "-journal")),
        str(tmp_path / "etc" / "key"),
        str(runtime[0]),
    ]
    assert hidden_paths(
        db_url="postgresql+psycopg://u:p@db/dodo", key_file=None, runtime_dirs=runtime
    ) == [str(runtime[0])]


def test_dodo_makes_the_jupyter_config_python_and_ipython_read_only_but_not_the_root(
    outside_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import site

    from jupyter_core.paths import jupyter_config_path

    config = outside_tmp / "config"
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(config))
    monkeypatch.setenv("IPYTHONDIR", str(outside_tmp / "ipython"))
    root = outside_tmp / "srv" / "notebooks"
    in_tmp_by_admin = os.path.join(os.path.realpath(tempfile.gettempdir()), "in-tmp")
    found, left = read_only_paths(
        keep={str(root): "the Jupyter server's root_dir"},
        extra=[str(outside_tmp / "admin"), str(outside_tmp / "srv"), in_tmp_by_admin],
    )
    site_packages = [p for p in sys.path if os.path.basename(p) == "site-packages"]
    assert site_packages
    python = [sys.prefix, sys.base_prefix, site.getusersitepackages(), *site_packages]
    # What lies in the temporary folder (a Python in a CI's clean clone in /tmp) is left
    # out, with a remark.
    candidates = [*jupyter_config_path(), *python]
    in_tmp = {os.path.abspath(p) for p in candidates if in_temporary_folder(p) is not None}
    for path in (*python, config, outside_tmp / "ipython", outside_tmp / "admin"):
        assert (os.path.abspath(path) in found) is (os.path.abspath(path) not in in_tmp), path
    assert str(outside_tmp / "srv") not in found and in_tmp_by_admin not in found
    assert (
        f"{outside_tmp / 'srv'}: not read-only to code-mode kernels: it holds the Jupyter "
        "server's root_dir"
    ) in left
    temporary = {remark.split(":")[0] for remark in left if "temporary folder" in remark}
    assert temporary == {*in_tmp, in_tmp_by_admin} and len(left) == 1 + len(temporary)


def test_only_paths_inside_the_temporary_folder_are_in_it() -> None:
    temporary = os.path.realpath(tempfile.gettempdir())
    assert in_temporary_folder(os.path.join(temporary, "a", "b")) == temporary
    assert in_temporary_folder(temporary) is None
    assert in_temporary_folder("/var/lib/x") is None


# -- a real kernel ------------------------------------------------------------------------


@pytest.fixture
def outside_tmp() -> Iterator[Path]:
    """Where the server keeps its store, runtime and config directories in these tests:
    outside /tmp, so that /tmp is not on the way to them (new files directly in a folder
    on the way to a hidden or read-only path cannot be made)."""
    if not os.path.isdir("/var/tmp"):
        pytest.skip("no /var/tmp")
    folder = Path(tempfile.mkdtemp(prefix="dodo-isolation-", dir="/var/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def jp_runtime_dir(outside_tmp: Path) -> Path:
    folder = outside_tmp / "runtime"
    folder.mkdir()
    return folder


@pytest.fixture
def jp_config_dir(outside_tmp: Path) -> Path:
    """The Jupyter config directories, read-only to kernels, outside /tmp too."""
    folder = outside_tmp / "config"
    folder.mkdir()
    return folder


@pytest.fixture
def jp_env_config_path(outside_tmp: Path) -> Path:
    folder = outside_tmp / "env" / "etc" / "jupyter"
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def jp_system_config_path(outside_tmp: Path) -> Path:
    folder = outside_tmp / "etc" / "jupyter"
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def jp_home_dir(outside_tmp: Path) -> Path:
    folder = outside_tmp / "home"
    (folder / ".secrets").mkdir(parents=True)
    (folder / ".secrets" / "token").write_text("a secret of the user's")
    (folder / "notes.txt").write_text("the user's notes")
    return folder


@pytest.fixture
def upstream() -> Iterator[RunningServer]:
    with governed_upstream() as server:
        yield server


@pytest.fixture
def isolation() -> str:
    return "best_effort"


@pytest.fixture
def crowded() -> bool:
    return False


@pytest.fixture
def dodo_config(
    dodo_config: dict[str, Any],
    upstream: RunningServer,
    outside_tmp: Path,
    tmp_path: Path,
    isolation: str,
    crowded: bool,
) -> dict[str, Any]:
    hidden = ["~/.secrets"]  # the home directory is on the way: listable, nothing new in it
    if crowded:
        hidden.append(str(tmp_path / "crowd" / "hide-me"))
    return code_mode_config(
        dodo_config,
        upstream,
        db_url=f"sqlite:///{outside_tmp / 'server' / 'dodo.sqlite'}",
        key_file=str(outside_tmp / "server" / "crypt.key"),
        code_mode_filesystem_isolation=isolation,
        code_mode_hidden_paths=hidden,
    )


@pytest.fixture
def site_packages_probe() -> Iterator[Path]:
    """Where the kernel tries to write in the server's site-packages (removed after, in
    case it could)."""
    folder = next(p for p in sys.path if os.path.basename(p) == "site-packages")
    path = Path(folder) / f"dodo-isolation-{uuid.uuid4().hex}.txt"
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture
def codemode_url(gateway_url: str) -> str:
    return f"{gateway_url}/codemode"


KERNEL_PROBE = """\
import json, os
from dodo_jupyter import tools
from ipykernel.connect import get_connection_file

def attempt(path, mode="r", folders=False):
    try:
        if folders:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, mode) as f:
            f.read(1) if mode == "r" else f.write("written by the agent")
        return "ok"
    except OSError as e:
        return type(e).__name__

def imported(name):
    try:
        __import__(name)
        return "ok"
    except ImportError as e:
        return repr(e)

home = os.path.expanduser("~")
scratch = "/tmp/dodo-isolation-{scratch}"
ipython_dir = get_ipython().ipython_dir
print(json.dumps({{
    "database": attempt({database!r}),
    "key file": attempt({key_file!r}),
    "runtime directory": {{name: attempt(os.path.join({runtime!r}, name))
                          for name in os.listdir({runtime!r})}},
    "server's environment": attempt("/proc/{server_pid}/environ"),
    "hidden by the admin": attempt(os.path.join(home, ".secrets", "token")),
    "notebook folder": attempt("agent-notes.txt", "w") + attempt("agent-notes.txt"),
    "/tmp": attempt(scratch, "w") + attempt(scratch),
    "home directory": sorted(os.listdir(home)),
    "file in the home directory": attempt(os.path.join(home, "notes.txt")),
    "new file in the home directory": attempt(os.path.join(home, "new.txt"), "w"),
    "a tool": tools.gov.list_items(),
    "Jupyter config": attempt(os.path.join({config!r}, "jupyter_server_config.py"), "w"),
    "server's site-packages": attempt({site_packages!r}, "w"),
    "user's IPython startup": attempt(
        os.path.join(home, ".ipython", "profile_default", "startup", "00-agent.py"), "w", True
    ),
    "a package": imported("sqlalchemy"),
    "own IPython directory": [
        ipython_dir == os.environ["IPYTHONDIR"],
        os.path.dirname(ipython_dir) == os.path.dirname(get_connection_file()),
        attempt(os.path.join(ipython_dir, "profile_default", "startup", "00-own.py"), "w", True),
    ],
}}))
os.remove(scratch)
"""


@needs_landlock
@pytest.mark.usefixtures("upstreams_closed_first")
async def test_a_kernel_cannot_open_the_servers_secrets_but_works_and_calls_tools(
    api: Api,
    runtime_: DodoRuntime,
    upstream: RunningServer,
    codemode_url: str,
    outside_tmp: Path,
    jp_runtime_dir: Path,
    jp_root_dir: Path,
    jp_config_dir: Path,
    site_packages_probe: Path,
) -> None:
    await govern(api, upstream)
    server = outside_tmp / "server"
    code = KERNEL_PROBE.format(
        config=str(jp_config_dir),
        site_packages=str(site_packages_probe),
        scratch=uuid.uuid4().hex,
        database=str(server / "dodo.sqlite"),
        key_file=str(server / "crypt.key"),
        runtime=str(jp_runtime_dir),
        server_pid=os.getpid(),  # the Jupyter server runs in the test's process
    )
    async with agent(runtime_, codemode_url, mode="legacy") as client:
        result = await run(client, code)
        assert not result.is_error, text(result)
        seen = json.loads(text(result))

        direct = await run(client, f"open({str(server / 'crypt.key')!r}).read()")
    denied = "PermissionError"
    runtime_files = seen.pop("runtime directory")
    assert any(name.startswith("jpserver-") for name in runtime_files)  # names only
    assert set(runtime_files.values()) == {denied}
    assert seen == {
        "database": denied,
        "key file": denied,
        "server's environment": denied,
        "hidden by the admin": denied,
        "notebook folder": "okok",
        "/tmp": "okok",
        "home directory": [".ipython", ".secrets", "notes.txt"],
        "file in the home directory": "ok",
        "new file in the home directory": denied,
        "a tool": "a, b",
        "Jupyter config": denied,
        # Writable only where the Python lies in /tmp (a CI's clean clone: see
        # test_dodo_makes_the_jupyter_config_python_and_ipython_read_only_but_not_the_root).
        "server's site-packages": denied
        if in_temporary_folder(str(site_packages_probe)) is None
        else "ok",
        "user's IPython startup": denied,
        "a package": "ok",
        "own IPython directory": [True, True, "ok"],
    }
    assert not (jp_config_dir / "jupyter_server_config.py").exists()
    assert (jp_root_dir / "dodo-agent-runs" / "agent-notes.txt").exists()
    assert direct.is_error
    assert text(direct).endswith(
        f"PermissionError: [Errno 13] Permission denied: '{server / 'crypt.key'}'"
    )


@needs_landlock
@pytest.mark.usefixtures("upstreams_closed_first")
@pytest.mark.parametrize("crowded", [True])
@pytest.mark.parametrize("isolation", ["best_effort", "required"])
async def test_a_kernel_that_cannot_be_isolated_is_flagged_or_refused(
    runtime_: DodoRuntime,
    codemode_url: str,
    isolation: str,
    crowd: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    crowd = crowd.parent
    why = "more than 4096 entries lie beside the way to the paths to hide or make read-only (in "
    async with agent(runtime_, codemode_url, mode="legacy") as client:
        first = await run(client, "'ran'")
        if isolation == "required":
            assert first.is_error
            assert text(first).startswith(
                "run_python: The code-mode kernel was not started: it could not be isolated "
                f"from the server's files ({why}{crowd})"
            )
            assert "DodoApp.code_mode_filesystem_isolation is 'required'" in text(first)
            assert await code_mode_tokens(runtime_) == []  # nothing left behind
            return
        second = await run(client, "'again'")
    assert text(first).startswith(
        "Out[1]: 'ran'\nNote: This kernel runs without filesystem isolation: dodo could not "
        f"hide its store and the Jupyter runtime directory from it ({why}{crowd})"
    )
    assert text(second) == "Out[2]: 'again'"  # said once
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("runs without filesystem isolation: more than 4096" in w for w in warnings)
