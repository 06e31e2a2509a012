#!/usr/bin/env python
"""An issue tracker as an MCP server, for ``bench/codemode.py``: tools whose answers are
the size real ones are (a list of 500 issues is about 300 kB of JSON).

``python bench/_issues_upstream.py --port P`` serves, on 127.0.0.1 (the MCP SDK's
``MCPServer`` under uvicorn), five tools with typed results (so each answer carries
``structuredContent`` as well as its JSON text, as SDK servers send them; ``GET /health``
answers 200 once it serves):

* ``list_issues(state, label)``: every issue in that state (with that label), summaries;
* ``get_issue(number)``: one issue in full (body, events);
* ``list_comments(number)``: its comments;
* ``get_user(login)``: a profile;
* ``add_comment(number, body)``: posts a comment, answers its id.

The data is generated from a fixed seed, so every run and both ways of working in the
benchmark see the same tracker. :data:`WORKFLOW` is the ten dependent steps both do.
"""

from __future__ import annotations

import argparse
import random
from typing import Any, Literal

from mcp.server.mcpserver import MCPServer

__all__ = ["ISSUES", "WORKFLOW", "WORKFLOW_SEQUENTIAL", "build_server"]

LABELS = ("bug", "feature", "docs", "p1", "p2", "p3", "ui", "api", "security", "perf")
LOGINS = tuple(f"dev{i:02d}" for i in range(40))
WORDS = (
    "kernel session token gateway sidebar catalog notebook widget server client timeout "
    "refresh schema cache proxy retry render theme launcher upload export import"
).split()


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def _issues(count: int = 500, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    issues = []
    for number in range(1, count + 1):
        labels = sorted(rng.sample(LABELS, rng.randint(1, 3)))
        issues.append(
            {
                "number": number,
                "title": _sentence(rng, rng.randint(4, 9))[:-1],
                "state": "open" if rng.random() < 0.7 else "closed",
                "labels": labels,
                "assignee": rng.choice(LOGINS),
                "comments": rng.randint(0, 40),
                "created_at": f"2026-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d}T10:00:00Z",
                "updated_at": f"2026-11-{rng.randint(1, 30):02d}T12:00:00Z",
                "url": f"https://tracker.test/issues/{number}",
                "excerpt": " ".join(_sentence(rng, 12) for _ in range(2)),
            }
        )
    return issues


ISSUES = _issues()


def _detail(number: int) -> dict[str, Any]:
    rng = random.Random(number * 31)
    issue = ISSUES[number - 1]
    return {
        **issue,
        "body": "\n\n".join(" ".join(_sentence(rng, 14) for _ in range(4)) for _ in range(4)),
        "events": [
            {
                "event": rng.choice(("labeled", "assigned", "referenced", "renamed")),
                "actor": rng.choice(LOGINS),
                "at": f"2026-11-{day:02d}T09:00:00Z",
            }
            for day in range(1, rng.randint(6, 20))
        ],
        "reactions": {"+1": rng.randint(0, 30), "-1": rng.randint(0, 3), "eyes": rng.randint(0, 9)},
    }


def _comments(number: int) -> list[dict[str, Any]]:
    rng = random.Random(number * 17)
    return [
        {
            "id": number * 1000 + i,
            "author": rng.choice(LOGINS),
            "created_at": f"2026-11-{rng.randint(1, 30):02d}T08:00:00Z",
            "body": " ".join(_sentence(rng, 12) for _ in range(3)),
        }
        for i in range(ISSUES[number - 1]["comments"])
    ]


def _user(login: str) -> dict[str, Any]:
    rng = random.Random(login)
    return {
        "login": login,
        "name": f"Developer {login[3:]}",
        "team": rng.choice(("platform", "notebooks", "hub", "security")),
        "timezone": rng.choice(("UTC", "Europe/Paris", "America/Chicago", "Asia/Tokyo")),
        "open_assignments": rng.randint(0, 25),
        "bio": _sentence(rng, 20),
    }


def build_server() -> MCPServer:
    """The tracker's MCP server (state: the comments posted while it runs)."""
    mcp = MCPServer("tracker")
    posted: list[dict[str, Any]] = []

    @mcp.custom_route("/health", methods=["GET"])
    async def health(request: Any) -> Any:
        from starlette.responses import PlainTextResponse

        return PlainTextResponse("ok")

    @mcp.tool()
    def list_issues(
        state: Literal["open", "closed", "all"] = "open", label: str | None = None
    ) -> list[dict[str, Any]]:
        """List the tracker's issues (summaries: number, title, labels, assignee, comment
        count, dates, an excerpt). Filter by state and by one label."""
        return [
            i
            for i in ISSUES
            if (state == "all" or i["state"] == state) and (label is None or label in i["labels"])
        ]

    @mcp.tool()
    def get_issue(number: int) -> dict[str, Any]:
        """One issue in full: its body, events and reactions besides the summary."""
        if not 1 <= number <= len(ISSUES):
            raise ValueError(f"there is no issue {number}")
        return _detail(number)

    @mcp.tool()
    def list_comments(number: int) -> list[dict[str, Any]]:
        """The comments on an issue, oldest first."""
        return _comments(number)

    @mcp.tool()
    def get_user(login: str) -> dict[str, Any]:
        """A tracker user's profile: name, team, time zone, open assignments."""
        return _user(login)

    @mcp.tool()
    def add_comment(number: int, body: str) -> dict[str, Any]:
        """Post a comment on an issue; answers the new comment's id."""
        posted.append({"number": number, "body": body})
        return {"id": 900_000 + len(posted), "number": number}

    return mcp


#: The workflow's last steps, the same in both codes: the summary from what was fetched.
_SUMMARY = """\
lines = [
    f"#{{d['number']}} {{d['title']}} ({{len(c)}} comments, {{d['reactions']['+1']}} +1)"
    for d, c in zip(details, threads)
]
lines += [f"owner: {{u['name']}} ({{u['team']}}, {{u['timezone']}})" for u in owners]
summary = "Top open P1 bugs:\\n" + "\\n".join(lines)
"""

#: The benchmark's ten dependent steps, as the code an agent writes in code mode: the
#: steps that need only the issue list run together (``.aio`` and ``asyncio.gather``), as a
#: program can and a model calling one tool per turn cannot. The classic client makes the
#: same calls one by one (``bench/codemode.py``); so does :data:`WORKFLOW_SEQUENTIAL`.
WORKFLOW = (
    """\
import asyncio
from dodo_jupyter import tools

t = tools.{server}
bugs = [
    i for i in await t.list_issues.aio(state="open") if "bug" in i["labels"] and "p1" in i["labels"]
]
top = sorted(bugs, key=lambda i: -i["comments"])[:3]
details, threads = await asyncio.gather(
    asyncio.gather(*(t.get_issue.aio(number=i["number"]) for i in top)),
    asyncio.gather(*(t.list_comments.aio(number=i["number"]) for i in top)),
)
owners = await asyncio.gather(*(t.get_user.aio(login=d["assignee"]) for d in details[:2]))
"""
    + _SUMMARY
    + """await t.add_comment.aio(number=1, body=summary)
summary
"""
)

#: The same steps one call after the other (the figure without concurrency).
WORKFLOW_SEQUENTIAL = (
    """\
from dodo_jupyter import tools

t = tools.{server}
bugs = [i for i in t.list_issues(state="open") if "bug" in i["labels"] and "p1" in i["labels"]]
top = sorted(bugs, key=lambda i: -i["comments"])[:3]
details = [t.get_issue(number=i["number"]) for i in top]
threads = [t.list_comments(number=i["number"]) for i in top]
owners = [t.get_user(login=d["assignee"]) for d in details[:2]]
"""
    + _SUMMARY
    + """t.add_comment(number=1, body=summary)
summary
"""
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    import uvicorn

    app = build_server().streamable_http_app(host="127.0.0.1")
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
