"""Roles mean the same thing in every bundled workflow, and docs/roles.md says who may do what."""

from __future__ import annotations

from pathlib import Path

import pytest
from casework import catalog

from opcatflow.workflows.roles import (
    BEGIN,
    END,
    SYSTEM,
    descriptions,
    may_write,
    rewrite,
    system_only,
    table,
)

PAGE = Path(__file__).resolve().parents[1] / "docs" / "roles.md"


def test_a_role_has_one_description_in_every_workflow() -> None:
    found = descriptions(catalog().latest())
    assert {name: whats for name, whats in found.items() if len(whats) > 1} == {}


def test_every_role_is_described_in_the_roles_page() -> None:
    if not PAGE.is_file():
        pytest.skip("not running from a checkout (no docs/roles.md)")
    page = PAGE.read_text(encoding="utf-8")
    hand_written = page.split(BEGIN, 1)[0]
    roles = set(descriptions(catalog().latest())) | set(SYSTEM)
    assert {r for r in roles if f"| `{r}` |" not in hand_written} == set()


def test_the_who_may_do_what_table_is_current() -> None:
    if not PAGE.is_file():
        pytest.skip("not running from a checkout (no docs/roles.md)")
    page = PAGE.read_text(encoding="utf-8")
    assert rewrite(page, table(catalog().latest())) == page, (
        "docs/roles.md is out of date: run `python -m opcatflow.workflows.roles docs/roles.md`"
    )


def test_the_table_lists_what_a_role_may_start_and_fire() -> None:
    text = table([catalog().get("visit")])
    assert text.startswith(BEGIN)
    assert text.endswith(END)
    assert "| `expert` | `visit` |  | `comment_draft` |" in text.splitlines()
    assert "| `scheduler` | `visit` |  | `factual_check_lapsed` |" in text.splitlines()


def test_rewrite_appends_a_missing_block_and_replaces_an_old_one() -> None:
    assert rewrite("# Roles\n", "B") == "# Roles\n\nB\n"
    assert rewrite(f"a\n{BEGIN}\nold\n{END}\nz\n", "NEW") == "a\nNEW\nz\n"


def test_the_table_lists_what_a_role_may_write() -> None:
    lines = table([catalog().get("visit"), catalog().get("expert")]).splitlines()
    assert "| `expert` | `expert` | `conflicts_of_interest` (only on their own record) |" in lines
    assert (
        "| `liaison` | `visit` | `correction`, `correction_to`, `authority_comment`, "
        "`authority_comment_on`, `factual_check_meeting_on` |" in lines
    )
    assert (
        "| `visit` | `draft_comments`, `corrections`, `authority_comments`, "
        "`factual_check_lapsed`, `access_denied_escalated`, `reprisal_follow_up_decision` |"
        in lines
    )


def test_what_a_role_may_write_follows_the_roles_page() -> None:
    complaint, reprisal = catalog().get("complaint"), catalog().get("reprisal")
    assert "do_no_harm" not in may_write(complaint, "intake")
    assert "do_no_harm" not in may_write(complaint, "caseworker")
    assert "persons" in may_write(complaint, "caseworker")  # the persons and their consents
    assert "do_no_harm" in may_write(complaint, "head")
    assert "persons_at_risk" not in may_write(reprisal, "coordinator")  # may not read it
    assert system_only(complaint) == ["actions_taken"]
