"""``python -m dodo_jupyter.demo``: serve the demo MCP server in the foreground.

    python -m dodo_jupyter.demo --port 9797 [--access-token-ttl 60] [--no-refresh-tokens]
        [--auto-approve]

Prints the MCP URL to paste into dodo, then serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .server import DEFAULT_PORT, DemoConfig, run_demo_server

__all__ = ["build_parser", "config_from_args", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The command line parser (also reusable by ``jupyter dodo demo-server``)."""
    parser = argparse.ArgumentParser(
        prog="python -m dodo_jupyter.demo",
        description="Serve an OAuth-protected demo MCP server on loopback.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="loopback address (default %(default)s)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default %(default)s)")
    parser.add_argument(
        "--access-token-ttl",
        type=int,
        default=300,
        metavar="SECONDS",
        help="access token lifetime (default %(default)s)",
    )
    parser.add_argument(
        "--auto-approve",
        action="store_true",
        help="skip the consent page and approve every authorization request",
    )
    parser.add_argument(
        "--no-refresh-tokens",
        action="store_true",
        help="issue access tokens only, as the MCP SDK's simple-auth example does",
    )
    parser.add_argument(
        "--no-iss", action="store_true", help="do not send or advertise the RFC 9207 iss parameter"
    )
    parser.add_argument(
        "--require-resource",
        action="store_true",
        help="refuse authorization requests without an RFC 8707 resource parameter",
    )
    parser.add_argument(
        "--log-level", default="info", help="uvicorn log level (default %(default)s)"
    )
    return parser


def config_from_args(args: argparse.Namespace) -> DemoConfig:
    """The :class:`DemoConfig` the parsed arguments describe."""
    return DemoConfig(
        host=args.host,
        port=args.port,
        access_token_ttl=args.access_token_ttl,
        issue_refresh_tokens=not args.no_refresh_tokens,
        auto_approve=args.auto_approve,
        advertise_iss_parameter=not args.no_iss,
        require_resource=args.require_resource,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and serve; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        run_demo_server(config, log_level=args.log_level)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
