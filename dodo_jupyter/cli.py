"""``jupyter dodo``: manage the catalog, your gateway tokens, agents' configs, the database
and the key.

It works on the same store as the server: while a Jupyter server with dodo runs, its
database and key file (which the server names in ``dodo-<pid>.json`` in the Jupyter runtime
directory); otherwise the configuration the server would read (``c.DodoApp.*`` in
``jupyter_server_config.*`` and ``jupyter_dodo_config.*`` on the Jupyter config path and in
the current directory). ``--config FILE`` and ``--db-url URL``, anywhere on the line, take
precedence. It never seeds the catalog from configuration: only a starting server does
that. Heavy imports (the Jupyter server application, the MCP SDK) are left out, so a
command starts in a fraction of a second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from .cli_config import load_settings
from .exceptions import DodoError

__all__ = ["main"]


def _runtime(args: argparse.Namespace) -> Any:
    runtime = load_settings(args).make_runtime()
    runtime.open_sync(seed=False, mcp=False)
    return runtime


def _local_catalog(runtime: Any) -> Any:
    """The runtime's catalog, when this store's catalog is the one to change."""
    url = runtime.settings.hub_catalog_url
    if url:
        raise DodoError(
            f"This server's catalog is a copy of the hub catalog service's ({url}): a change "
            "here would be overwritten. Change it there: dodo/api/admin/approved-mcps on your "
            "own server, or the service's API (see docs/jupyterhub.md)."
        )
    return runtime.catalog


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def _actor(runtime: Any) -> str:
    return f"cli:{runtime.resolver.owner}"


def _print_table(rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    if not rows:
        return
    widths = {
        c: max(len(c), *(len(str(r.get(c) if r.get(c) is not None else "")) for r in rows))
        for c in columns
    }
    print("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        cells = [
            str(row.get(c) if row.get(c) is not None else "").ljust(widths[c]) for c in columns
        ]
        print("  ".join(cells).rstrip())


# -- catalog ----------------------------------------------------------------------------


def cmd_catalog_list(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    entries = _run(runtime.catalog.all(include_deleted=args.all))
    if args.json:
        print(json.dumps({"entries": entries}, indent=2))
    elif not entries:
        print(
            "The catalog is empty. Add a server with `jupyter dodo catalog add --id ID --url URL`."
        )
    else:
        for e in entries:
            e["state"] = (
                "deleted" if e["deleted_at"] else ("enabled" if e["enabled"] else "disabled")
            )
        _print_table(entries, ("id", "display_name", "auth_type", "state", "managed_by", "url"))
    return 0


def cmd_catalog_add(args: argparse.Namespace) -> int:
    if args.file:
        data = json.loads(Path(args.file).read_text())
    else:
        if not args.id or not args.url:
            raise DodoError("Give --id and --url (or --file ENTRY.json).")
        data = {
            "id": args.id,
            "url": args.url,
            "transport": args.transport,
            "auth_type": args.auth_type,
            "enabled": not args.disabled,
        }
        for key in ("display_name", "description", "setup_guide"):
            if getattr(args, key):
                data[key] = getattr(args, key)
        if args.header:
            data["headers"] = [{"name": h} for h in args.header]
        policy = {
            "allow": args.allow or [],
            "deny": args.deny or [],
            "read_only": args.read_only,
            "approval": args.approval,
            "calls_per_minute": args.calls_per_minute,
            "review_new_tools": args.review_new_tools,
        }
        data["tool_policy"] = policy
    runtime = _runtime(args)
    entry = _run(_local_catalog(runtime).create(_actor(runtime), data))
    print(f"Added {entry['id']!r} ({entry['url']}).")
    return 0


def cmd_catalog_remove(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    _run(_local_catalog(runtime).delete(_actor(runtime), args.id))
    print(f"Removed {args.id!r} (soft delete: it stays in the audit log and the database).")
    return 0


def cmd_catalog_import(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        doc = json.loads(path.read_text())
    except OSError as e:
        raise DodoError(f"Cannot read {args.file!r}: {e.strerror}.") from None
    except ValueError as e:
        raise DodoError(f"{args.file!r} is not valid JSON: {e}.") from None
    runtime = _runtime(args)
    entries = _run(_local_catalog(runtime).import_document(_actor(runtime), doc))
    print(
        f"Imported {len(entries)} entr{'y' if len(entries) == 1 else 'ies'}: "
        + ", ".join(e["id"] for e in entries)
    )
    return 0


# -- tokens -----------------------------------------------------------------------------


def cmd_tokens_list(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    tokens = _run(runtime.tokens.list(runtime.resolver.owner))
    if args.json:
        print(json.dumps({"tokens": tokens}, indent=2))
    elif not tokens:
        print("No gateway tokens. Create one with `jupyter dodo tokens create --label NAME`.")
    else:
        _print_table(tokens, ("id", "label", "kind", "created_at", "last_used_at", "expires_at"))
    return 0


def cmd_tokens_create(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    new = _run(runtime.tokens.create(runtime.resolver.owner, args.label, args.expires_in_days))
    print(new.token)
    print(
        f"Token {new.info['id']} for {runtime.resolver.owner!r}; it is shown only now.",
        file=sys.stderr,
    )
    return 0


def cmd_tokens_revoke(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    _run(runtime.tokens.delete(runtime.resolver.owner, args.id))
    print(f"Revoked token {args.id}.")
    return 0


# -- agents -----------------------------------------------------------------------------


def _gateway_url(args: argparse.Namespace) -> str:
    if args.url:
        return str(args.url)
    from .server_info import running_servers

    urls = sorted({server.gateway_url for server in running_servers()})
    if len(urls) != 1:
        found = ", ".join(urls) if urls else "none"
        raise DodoError(
            f"Give the gateway URL with --url (e.g. http://127.0.0.1:8888/dodo/mcp): "
            f"running Jupyter servers with dodo found: {found}."
        )
    return urls[0]


def cmd_agents_configure(args: argparse.Namespace) -> int:
    from .agent_config import TARGETS, configure, snippet

    url = _gateway_url(args)
    runtime = _runtime(args)
    owner = runtime.resolver.owner
    root, home = Path(args.root).resolve(), Path.home()
    if args.target == "print":
        label = args.label or "agent: printed config"
        new = _run(runtime.tokens.create(owner, label, args.expires_in_days))
        for target in TARGETS.values():
            print(f"# {target.description}: {target.path(root, home)}")
            print(json.dumps(snippet(target, url, new.token, args.name), indent=2))
        print(f"Token {new.info['id']} is shown only now.", file=sys.stderr)
        return 0
    target = TARGETS[args.target]
    report = _run(
        configure(
            runtime.tokens,
            owner,
            target,
            root=root,
            home=home,
            url=url,
            name=args.name,
            label=args.label,
            expires_in_days=args.expires_in_days,
        )
    )
    verb = "Replaced" if report.replaced else "Added"
    print(f"{verb} {args.name!r} in {report.path} ({target.description} → {url}).")
    if report.backup is not None:
        print(f"The previous file is kept as {report.backup}.")
    if report.revoked_token_id is not None:
        print(f"Revoked the token it held before ({report.revoked_token_id}).")
    print(f"Token {report.token_id}; revoke it with `jupyter dodo agents remove {target.name}`.")
    return 0


def cmd_agents_remove(args: argparse.Namespace) -> int:
    from .agent_config import TARGETS, unconfigure

    url = _gateway_url(args)
    runtime = _runtime(args)
    target = TARGETS[args.target]
    root, home = Path(args.root).resolve(), Path.home()
    report = _run(
        unconfigure(
            runtime.tokens,
            runtime.resolver.owner,
            target,
            root=root,
            home=home,
            url=url,
            name=args.name,
        )
    )
    path = target.path(root, home)
    if report is None:
        print(f"{path} has no {args.name!r} entry; nothing changed.")
        return 0
    print(f"Removed {args.name!r} from {path}; the previous file is kept as {report.backup}.")
    if report.revoked_token_id is not None:
        print(f"Revoked its token {report.revoked_token_id}.")
    return 0


# -- store ------------------------------------------------------------------------------


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from .store import migrate
    from .store.database import Database

    app = load_settings(args)
    db = Database(app.db_url)
    try:
        before = migrate.upgrade(db.engine)
    finally:
        db.close()
    print(f"Database at revision {migrate.HEAD} (was {before or 'empty'}).")
    return 0


def cmd_rotate_key(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    if runtime.store.vault_error is not None:
        raise runtime.store.vault_error
    count = runtime.store.rotate_key_sync()
    if runtime.store.key_source == "env":
        print(
            f"Re-encrypted {count} secret(s) with the first key of DODO_CRYPT_KEY; "
            "you may now remove the old keys from it."
        )
    else:
        print(f"Re-encrypted {count} secret(s) with a new key written to {runtime.store.key_file}.")
    return 0


# -- demo -------------------------------------------------------------------------------


def cmd_demo_server(args: argparse.Namespace) -> int:
    from .demo.__main__ import main as demo_main

    return demo_main(args.demo_args)


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo_launcher import run_demo

    return run_demo(lab_port=args.port, demo_port=args.demo_port, lab_args=args.lab_args)


def _agent_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="the gateway URL (default: the running Jupyter server's)")
    p.add_argument("--name", default="dodo", help="the server's name in the config")
    p.add_argument(
        "--root", default=".", help="the project directory (jupyter-ai, claude-code; default .)"
    )


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: given after the subcommand they count, else the top-level value stays.
    common.add_argument(
        "--config", default=argparse.SUPPRESS, help="a Jupyter config file (.py or .json) to read"
    )
    common.add_argument(
        "--db-url",
        default=argparse.SUPPRESS,
        help="SQLAlchemy URL of the database (default: the running server's, else as configured)",
    )

    parser = argparse.ArgumentParser(
        prog="jupyter dodo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version")
    parser.add_argument("--config", help="a Jupyter config file (.py or .json) to read")
    parser.add_argument(
        "--db-url",
        help="SQLAlchemy URL of the database (default: the running server's, else as configured)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    catalog = sub.add_parser("catalog", help="the approved catalog of MCP servers")
    csub = catalog.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = csub.add_parser("list", parents=[common], help="list entries")
    p.add_argument("--all", action="store_true", help="include deleted entries")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_catalog_list)
    p = csub.add_parser("add", parents=[common], help="approve an MCP server")
    p.add_argument("--id", help="short id: lowercase letters, digits, '-' (max 32)")
    p.add_argument("--url", help="the server's https:// MCP endpoint")
    p.add_argument("--display-name")
    p.add_argument("--description", help="at most 100 characters")
    p.add_argument("--setup-guide")
    p.add_argument("--transport", choices=["streamable-http", "sse"], default="streamable-http")
    p.add_argument("--auth-type", choices=["oauth", "static_headers", "none"], default="oauth")
    p.add_argument("--header", action="append", help="a header users supply (static_headers)")
    p.add_argument("--disabled", action="store_true", help="add it disabled")
    p.add_argument("--allow", action="append", help="tool-name glob agents may use (repeat)")
    p.add_argument("--deny", action="append", help="tool-name glob agents may not use (repeat)")
    p.add_argument("--read-only", action="store_true", help="offer only read-only tools")
    p.add_argument("--approval", choices=["never", "destructive", "always"], default="never")
    p.add_argument("--calls-per-minute", type=int, help="per-user rate limit")
    p.add_argument("--review-new-tools", action="store_true", help="new tools wait for review")
    p.add_argument("--file", help="a JSON file holding one entry (instead of the flags)")
    p.set_defaults(func=cmd_catalog_add)
    p = csub.add_parser("remove", parents=[common], help="soft-delete an entry")
    p.add_argument("id")
    p.set_defaults(func=cmd_catalog_remove)
    p = csub.add_parser(
        "import", parents=[common], help="import an MCP Registry server.json or a dodo entries file"
    )
    p.add_argument("file")
    p.set_defaults(func=cmd_catalog_import)

    tokens = sub.add_parser("tokens", help="your gateway tokens (for the local owner)")
    tsub = tokens.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = tsub.add_parser("list", parents=[common], help="list tokens (no secrets)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_tokens_list)
    p = tsub.add_parser("create", parents=[common], help="create a token; printed once")
    p.add_argument("--label", default="cli")
    p.add_argument("--expires-in-days", type=int)
    p.set_defaults(func=cmd_tokens_create)
    p = tsub.add_parser("revoke", parents=[common], help="delete a token by id")
    p.add_argument("id")
    p.set_defaults(func=cmd_tokens_revoke)

    agents = sub.add_parser("agents", help="point agents at your MCP gateway")
    asub = agents.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = asub.add_parser(
        "configure",
        parents=[common],
        help="write (or print) an agent's MCP config with a new gateway token",
    )
    p.add_argument("target", choices=["jupyter-ai", "nbi", "claude-code", "print"])
    _agent_arguments(p)
    p.add_argument("--label", help="the token's label")
    p.add_argument("--expires-in-days", type=int)
    p.set_defaults(func=cmd_agents_configure)
    p = asub.add_parser(
        "remove", parents=[common], help="remove dodo from an agent's MCP config; revoke its token"
    )
    p.add_argument("target", choices=["jupyter-ai", "nbi", "claude-code"])
    _agent_arguments(p)
    p.set_defaults(func=cmd_agents_remove)

    db = sub.add_parser("db", help="the database")
    dsub = db.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = dsub.add_parser("upgrade", parents=[common], help="apply migrations")
    p.set_defaults(func=cmd_db_upgrade)

    p = sub.add_parser(
        "rotate-key", parents=[common], help="re-encrypt every stored secret with a new key"
    )
    p.set_defaults(func=cmd_rotate_key)

    p = sub.add_parser(
        "demo-server",
        add_help=False,
        help="serve the OAuth-protected demo MCP server (options: demo-server --help)",
    )
    p.add_argument("demo_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_demo_server)
    p = sub.add_parser(
        "demo", help="JupyterLab with dodo and the demo MCP server (offline, throwaway config)"
    )
    p.add_argument("--port", type=int, default=8888, help="JupyterLab port (default 8888)")
    p.add_argument(
        "--demo-port", type=int, default=9797, help="demo MCP server port (default 9797)"
    )
    p.set_defaults(func=cmd_demo)  # further arguments go to jupyter lab
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["demo-server"]:
        # Everything after it belongs to the demo server's own parser (--help included).
        return cmd_demo_server(argparse.Namespace(demo_args=argv[1:]))
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "func", None) is cmd_demo:
        args.lab_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.version:
        from ._version import __version__

        print(__version__)
        return 0
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return func(args)
    except ValueError as e:  # a setting that cannot work (the message names it)
        print(f"jupyter dodo: error: {e}", file=sys.stderr)
        return 1
    except DodoError as e:
        print(f"jupyter dodo: error: {e.message}", file=sys.stderr)
        fields = e.details.get("fields")
        if fields:
            for name, problem in fields.items():
                print(f"  {name}: {problem}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
