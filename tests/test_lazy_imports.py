"""A server that only serves the catalog never loads the MCP stack (memory at start), and
a kernel's ``from dodo_jupyter import tools`` loads it only when a tool is first used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = """
import asyncio, sys
from pathlib import Path
from dodo_jupyter.identity import LocalIdentityResolver
from dodo_jupyter.runtime import DodoRuntime
from dodo_jupyter.runtime_settings import RuntimeSettings
tmp = Path(sys.argv[1])
runtime = DodoRuntime(
    RuntimeSettings(db_url=f"sqlite:///{tmp / 'd.sqlite'}", key_file=tmp / 'k', environ={}),
    LocalIdentityResolver("owner"),
)
async def main():
    runtime.start()
    await runtime.ready()
    await runtime.catalog.enabled()
asyncio.run(main())
heavy = sorted({m.split('.')[0] for m in sys.modules} & {'mcp', 'httpx', 'httpx2', 'authlib',
                                                       'starlette', 'uvicorn'})
print(','.join(heavy))
"""


def test_catalog_server_does_not_import_the_mcp_stack(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"loaded at start: {result.stdout.strip()}"


KERNEL_SCRIPT = """
import sys
from dodo_jupyter import tools
tools.refresh()
heavy = sorted({m.split('.')[0] for m in sys.modules} & {'mcp', 'mcp_types', 'httpx', 'httpx2',
                                                       'pydantic', 'anyio'})
print(','.join(heavy))
"""


def test_importing_the_tools_api_does_not_import_the_mcp_client() -> None:
    result = subprocess.run(
        [sys.executable, "-c", KERNEL_SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"loaded by the import: {result.stdout.strip()}"
