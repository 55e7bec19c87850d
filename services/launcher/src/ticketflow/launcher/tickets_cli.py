"""`ticketflow tickets ...`: the operator CLI over the api's HTTP interface.

List and show tickets, approve or reject one that waits for a human. A decision whose answer did
not come (503 ``decision_outcome_unknown``, a timeout, a dropped connection) is sent again, the
same request, until the api answers (bounded): the api applies the same decision once and gives
the first answer again, so the human is never asked to decide twice.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ticketflow.runtime import EXIT_BAD_SETTINGS, load_settings

from ._api_client import (
    EXIT_CONFLICT,
    EXIT_NOT_FOUND,
    EXIT_REFUSED,
    EXIT_UNAVAILABLE,
    ApiClient,
    ApiFailure,
    CliSettings,
    Retries,
    TokenError,
    read_token,
)
from ._ticket_views import decision_text, ticket_table, ticket_text

__all__ = ["add_tickets_parser", "run_tickets"]

PROG = "ticketflow"
EXIT_OK = 0

DESCRIPTION = """\
Operate on tickets through the api's HTTP interface: list the approval queue, show a ticket,
approve or reject one that waits for a human, cancel one nobody decided yet. Output is a table
for people; --json prints the api's JSON as it is, for scripts.

A decision the api may have applied without confirming it (503 decision_outcome_unknown, a
timeout, a dropped connection) is sent again, the very same request, after the api's Retry-After:
the api applies the same decision once and answers the first answer again, so nobody has to
decide twice. Other 503s and refused connections are retried the same bounded way (--tries, within
--retry-for seconds), with one line on stderr per retry.
"""

EPILOG = """\
environment (all optional):
  TICKETFLOW_API_URL     http://127.0.0.1:8000   the api (or --api)
  TICKETFLOW_TOKEN       (unset)                 bearer token: an approver's to decide; a
                                                 viewer's or approver's to read when the api
                                                 has TICKETFLOW_VIEWER_TOKENS (never printed)
  TICKETFLOW_TOKEN_FILE  (unset)                 a file holding the token (or --token-file), e.g.
                                                 the <data dir>/approver-token `ticketflow up`
                                                 writes; without a token or a file, that one is
                                                 used when it exists
  TICKETFLOW_DATA_DIR    ./var                   where `ticketflow up` keeps approver-token
The token is taken from --token-file, else TICKETFLOW_TOKEN, else TICKETFLOW_TOKEN_FILE, else
<data dir>/approver-token; it is sent with reads too.

exit codes:
  0  done
  1  the api refused the request (401/403: no or wrong token; 422: bad input; other 4xx and 5xx
     but 503); the api's message is printed
  2  usage or settings are wrong (an option, TICKETFLOW_API_URL, an unreadable token file)
  3  no such ticket (404)
  4  conflict (409): the ticket is not waiting for a decision: someone else decided, its approval
     window closed, or it finished (cancel: it is already decided or finished); the api's
     message says which
  5  unavailable: the api did not answer or answered 503 after the bounded retries (for a
     decision: it may have been applied; run the same command again)
"""


def add_tickets_parser(commands: Any) -> None:
    """Add `tickets` and its subcommands to the `ticketflow` parser's subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--api", metavar="URL", help="the api (default: $TICKETFLOW_API_URL)")
    common.add_argument(
        "--token-file", metavar="FILE", type=Path, help="read the bearer token from FILE"
    )
    common.add_argument("--json", action="store_true", help="print the api's JSON as it is")
    common.add_argument(
        "--tries", type=_positive_int, default=5, metavar="N", help="send at most N times (5)"
    )
    common.add_argument(
        "--retry-for",
        type=_positive_float,
        default=60.0,
        metavar="SECONDS",
        help="stop retrying after this long in all (60)",
    )
    kw: dict[str, Any] = {
        "epilog": EPILOG,
        "formatter_class": argparse.RawDescriptionHelpFormatter,
        "parents": [common],
    }
    tickets = commands.add_parser(
        "tickets",
        help="list, show, approve, reject or cancel tickets through the api",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = tickets.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="tickets by status, a page at a time", **kw)
    listing.add_argument("--status", metavar="S", help="e.g. WAITING_APPROVAL (the queue)")
    listing.add_argument("--limit", type=_positive_int, metavar="N", help="per page (api: 50)")
    listing.add_argument("--page-token", metavar="T", help="the page after a previous one")
    listing.add_argument("--all", action="store_true", help="follow every page to the last")
    show = actions.add_parser("show", help="what happened to a ticket", **kw)
    show.add_argument("ticket_id", metavar="ID")
    for verb in ("approve", "reject"):
        decide = actions.add_parser(verb, help=f"{verb} a ticket waiting for approval", **kw)
        decide.add_argument("ticket_id", metavar="ID")
        decide.add_argument("--reason", required=True, metavar="TEXT", help="why (recorded)")
    cancel = actions.add_parser(
        "cancel", help="stop a ticket nobody decided yet (it ends ESCALATED)", **kw
    )
    cancel.add_argument("ticket_id", metavar="ID")


def run_tickets(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {"api_url": args.api} if args.api else {}
    settings = load_settings(CliSettings, PROG, overrides=overrides)
    try:
        token = read_token(settings, args.token_file)
    except TokenError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    client = ApiClient(
        settings.api_url,
        token,
        retries=Retries(tries=args.tries, total_s=args.retry_for),
    )
    try:
        _ACTIONS[args.action](client, args)
    except ApiFailure as failure:
        print(f"{PROG}: {failure.message}", file=sys.stderr)
        return failure.exit_code
    finally:
        client.close()
    return EXIT_OK


def _list(client: ApiClient, args: argparse.Namespace) -> None:
    page = client.list_tickets(args.status, args.limit, args.page_token)
    tickets = list(page.get("tickets", []))
    while args.all and page.get("next_page_token"):
        page = client.list_tickets(args.status, args.limit, page["next_page_token"])
        tickets.extend(page.get("tickets", []))
    if args.json:
        # --all: one answer of the same shape, every page's tickets in it.
        _print_json({**page, "tickets": tickets} if args.all else page)
        return
    print(ticket_table(tickets))
    footer = f"{len(tickets)} of {page.get('total', len(tickets))}"
    if page.get("next_page_token"):
        footer += f"; next page: --page-token {page['next_page_token']}"
    print(footer)


def _show(client: ApiClient, args: argparse.Namespace) -> None:
    view = client.get_ticket(args.ticket_id)
    if args.json:
        _print_json(view)
    else:
        print(ticket_text(view))


def _decide(client: ApiClient, args: argparse.Namespace) -> None:
    answer = client.decide(args.ticket_id, approved=args.action == "approve", reason=args.reason)
    if args.json:
        _print_json(answer)
        return
    decision = answer.get("decision")
    what = decision_text(decision) if decision else "decision accepted"
    print(f"ticket {answer.get('ticket_id')}: {what}; status now {answer.get('status')}")


def _cancel(client: ApiClient, args: argparse.Namespace) -> None:
    answer = client.cancel(args.ticket_id)
    if args.json:
        _print_json(answer)
        return
    if answer.get("already"):
        print(f"ticket {answer.get('ticket_id')}: already cancelled; status {answer.get('status')}")
    else:
        print(
            f"ticket {answer.get('ticket_id')}: cancel requested while {answer.get('status')}; "
            "it ends ESCALATED and the customer is told"
        )


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


_ACTIONS = {
    "list": _list,
    "show": _show,
    "approve": _decide,
    "reject": _decide,
    "cancel": _cancel,
}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


# Named in the help above; kept importable for tests and scripts.
EXIT_CODES = {
    "ok": EXIT_OK,
    "refused": EXIT_REFUSED,
    "usage": EXIT_BAD_SETTINGS,
    "not_found": EXIT_NOT_FOUND,
    "conflict": EXIT_CONFLICT,
    "unavailable": EXIT_UNAVAILABLE,
}
