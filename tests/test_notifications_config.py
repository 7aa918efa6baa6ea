"""The recipients directory and the settings file (validated, every problem located, the
directory re-read when it changes), and the checks `opcatflow validate` runs on a
definition's notifications."""

from __future__ import annotations

import dataclasses
import itertools
import os
from datetime import date
from pathlib import Path

import pytest
import structlog
from notify_helpers import NOTICE, SECRET, TEMPLATES

from opcatflow.config import __file__ as config_init
from opcatflow.engine import DefinitionError, Registry, compile_text
from opcatflow.engine.settings import Settings
from opcatflow.notifications.check import check_workflow
from opcatflow.notifications.directory import ConfigError, DirectoryFile, parse_directory
from opcatflow.notifications.redaction import Audience, redact, shown_fields
from opcatflow.notifications.settings import load_settings
from opcatflow.notifications.templates import TemplateSet
from opcatflow.workflows.shipped import shipped_bodies

CONFIG = Path(config_init).parent


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_directory(text, "dir.yaml", environ=lambda name: None)
    return [str(p) for p in caught.value.problems]


def test_the_example_directory_and_settings_are_valid(tmp_path: Path) -> None:
    secret_env = {"OPCATFLOW_WEBHOOK_CASE_SYSTEM": SECRET}.get
    text = (CONFIG / "recipients.example.yaml").read_text()
    directory = parse_directory(text, "recipients.example.yaml", environ=secret_env)
    assert [t.key for t in directory.with_role("complaint", "head")] == ["r.haddad"]
    assert [t.key for t in directory.with_role("complaint", "management")] == [
        "focal.central-prison"
    ]
    assert directory.with_role("visit", "management") == []
    assert [e.id for e in directory.subscribers("complaint", "transition")] == ["case-system"]
    settings_text = (CONFIG / "notifications.example.yaml").read_text()
    (tmp_path / "notifications.yaml").write_text(settings_text)
    settings = load_settings(
        tmp_path / "notifications.yaml", environ={"OPCATFLOW_SMTP_PASSWORD": "x"}.get
    )
    assert settings.directory_path == tmp_path / "recipients.yaml"
    assert settings.dispatch.policy().max_attempts == 8


def test_directory_problems_are_all_reported_with_their_position() -> None:
    text = """\
defaults: {locale: en}
people:
  - {id: a, name: A, email: not-an-address, roles: [head]}
  - {id: a, name: B, email: b@npm.example, roles: [Head]}
  - {id: c, name: C}
  - {id: d, name: D, channel: pigeon}
webhooks:
  - {id: w, url: 'ftp://x', secret: whsec_abc}
  - {id: v, url: 'https://x.example/h', secret: 'whsec_!!'}
  - {id: u, url: 'https://x.example/h', secret_env: MISSING_VAR}
"""
    found = problems(text)
    assert "dir.yaml:3:29: 'not-an-address' is not an email address" in found
    assert any(p.startswith("dir.yaml:4:52: String should match pattern") for p in found)
    assert "dir.yaml:6:31: Input should be 'email', 'log' or 'file'" in found
    assert any(p.startswith("dir.yaml:8:18: String should match pattern") for p in found)


def test_directory_cross_checks_are_located() -> None:
    text = """\
people:
  - {id: a, name: A, email: a@npm.example}
  - {id: a, name: B, email: b@npm.example}
  - {id: c, name: C}
webhooks:
  - {id: v, url: 'https://x.example/h', secret: 'whsec_!!'}
  - {id: u, url: 'https://x.example/h', secret_env: MISSING_VAR}
  - {id: t, url: 'https://x.example/h', secret: 'whsec_c2hvcnQ='}
"""
    assert problems(text) == [
        "dir.yaml:3:10: person id 'a' is used twice",
        "dir.yaml:4:5: 'c' is reached by email but has no 'email'",
        "dir.yaml:6:49: a webhook secret is 'whsec_' followed by base64",
        "dir.yaml:7:53: environment variable MISSING_VAR is not set",
        "dir.yaml:8:49: a webhook secret needs at least 24 bytes of key (32 recommended)",
    ]


def test_yaml_errors_in_the_directory_are_located() -> None:
    assert problems("people: [\n") == [
        "dir.yaml:2:1: YAML: expected the node content, but found '<stream end>'"
    ]
    assert problems("- 1\n") == ["dir.yaml:1:1: the recipients directory must be a mapping"]


def test_the_directory_file_is_reread_when_it_changes_and_a_bad_edit_is_ignored(
    tmp_path: Path,
) -> None:
    path = tmp_path / "recipients.yaml"
    path.write_text("people: [{id: a, name: A, email: a@npm.example, roles: [head]}]\n")
    ticks = itertools.count()
    with structlog.testing.capture_logs() as logs:
        source = DirectoryFile(path, interval=10, timer=lambda: float(next(ticks)) * 5)
        assert [t.key for t in source.current().with_role("w", "head")] == ["a"]
        path.write_text("people: [{id: b, name: B, email: b@npm.example, roles: [head]}]\n")
        os.utime(path, ns=(1, 1))
        assert [t.key for t in source.current().with_role("w", "head")] == ["b"]
        path.write_text("people: [{id: c, name: C, roles: [head]}]\n")  # no email
        os.utime(path, ns=(2, 2))
        for _ in range(3):
            assert [t.key for t in source.current().with_role("w", "head")] == ["b"]
    assert [e["event"] for e in logs] == [
        "recipients_directory_loaded",
        "recipients_directory_invalid",
    ]
    assert "has no 'email'" in logs[1]["problems"][0]


def test_settings_problems_are_located(tmp_path: Path) -> None:
    path = tmp_path / "n.yaml"
    path.write_text(
        "directory: r.yaml\ntemplates: [missing]\nsmtp: {sender: nobody, ssl: true, starttls: true}\n"
        "dispatch: {max_attempts: 0}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    found = [str(p) for p in caught.value.problems]
    assert found == [
        f"{path}:3:16: 'nobody' is not an email address",
        f"{path}:4:26: Input should be greater than or equal to 1",
    ]


def test_inactive_people_and_unknown_ids_are_not_recipients() -> None:
    text = "people: [{id: a, name: A, email: a@x.example, roles: [head], active: false}]\n"
    directory = parse_directory(text, "d")
    assert directory.with_role("w", "head") == []
    assert directory.by_ids(["a", "zz"]) == ([], ["a", "zz"])


# -- redaction rules ----------------------------------------------------------------------------

# the shipped bodies, as the authority register holds them once seeded
POLICY = dataclasses.replace(Settings.default().policy, bodies=shipped_bodies())


def test_a_webhook_sees_no_personal_field_whatever_consent_covers() -> None:
    person = {
        "ref": "P1",
        "uses": ["refer"],
        "consent_obtained_by": "x",
        "consent_obtained_on": "2026-03-01",
        "consent_how": "orally",
    }
    data = {"story": "s", "persons": [person]}
    audience = Audience(body="ombudsperson", consent_uses=frozenset({"refer"}))
    today = date(2026, 3, 2)
    assert shown_fields(data, {"story"}, audience, POLICY, today) == {"story"}
    machine = Audience(body="ombudsperson", consent_uses=frozenset({"refer"}), machine=True)
    assert shown_fields(data, {"story"}, machine, POLICY, today) == frozenset()
    shown = redact(data, ["story"], {"story"}, machine, policy=POLICY, today=today)
    assert shown.data == {"story": "[withheld]"}
    assert shown.reason_allowed is False


# -- definitions -------------------------------------------------------------------------------


def notice(change: tuple[str, str] | None = None) -> str:
    text = NOTICE.read_text()
    return text.replace(*change) if change else text


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("to: [head]", "to: [chief]"), "notice.yaml:44:10: unknown role 'chief'"),
        (
            ("{assignees: assigned}", "{assignees: assignee}"),
            "notice.yaml:49:21: unknown field 'assignee' (did you mean 'assigned'?)",
        ),
        (
            ("{assignees: assigned}", "{assignees: count}"),
            "notice.yaml:49:21: field 'count' is integer, not text or a list of text",
        ),
        (
            ("{address: focal_email,", "{address: relatives,"),
            "notice.yaml:50:19: field 'relatives' is list, not text",
        ),
        (
            ("to: [{role: authority}]", "to: [{role: authority, body: X}]"),
            "notice.yaml:53:10: 'body' and 'consent_uses' are for addresses; the recipients directory says them for people",
        ),
        (
            ("to: [{role: authority}]", "to: [{roles: authority}]"),
            "notice.yaml:53:10: unknown key 'roles'",
        ),
    ],
)
def test_definition_recipients_are_checked_with_their_position(
    change: tuple[str, str], expected: str
) -> None:
    with pytest.raises(DefinitionError) as caught:
        compile_text(notice(change), "notice.yaml", Registry())
    assert expected in [str(p) for p in caught.value.problems]


def test_templates_and_consent_uses_of_a_definition_are_checked_with_their_position() -> None:
    text = notice(
        (
            "template: notice_opened\n  - on: {enter: done}",
            "template: notice_openned\n  - on: {enter: done}",
        )
    )
    text = text.replace("consent_uses: [report_to_authority]", "consent_uses: [report_to_autority]")
    wf = compile_text(text, "notice.yaml", Registry())
    templates = TemplateSet([TEMPLATES], include_bundled=False)
    found = [str(p) for p in check_workflow(wf, templates, ["en", "fr"])]
    assert found == [
        "notice.yaml:50:63: unknown consent use 'report_to_autority' (did you mean 'report_to_authority'?)",
        "notice.yaml:51:15: unknown template 'notice_openned': no notice_openned.en.jinja (known: notice_opened) (did you mean 'notice_opened'?)",
    ]


def test_a_template_missing_in_a_configured_language_is_located(tmp_path: Path) -> None:
    settings_file = tmp_path / "notifications.yaml"
    (tmp_path / "recipients.yaml").write_text("people: []\n")
    settings_file.write_text("directory: recipients.yaml\nlanguages: [en, fr, de]\n")
    languages = load_settings(settings_file).languages
    wf = compile_text(notice(), "notice.yaml", Registry())
    templates = TemplateSet([TEMPLATES], include_bundled=False)
    found = [str(p) for p in check_workflow(wf, templates, languages)]
    assert found[0] == (
        "notice.yaml:45:15: template 'notice_opened' has no de version (languages "
        "configured: en, fr, de); add notice_opened.de.jinja"
    )
    assert check_workflow(wf, templates, ["en", "fr"]) == []


def test_a_template_reading_a_field_the_workflow_lacks_is_reported(tmp_path: Path) -> None:
    (tmp_path / "notice_opened.en.jinja").write_text(
        "{% block subject %}{{ data.ghost }}{% endblock %}{% block text %}{{ nobody }}{% endblock %}"
    )
    wf = compile_text(notice(), "notice.yaml", Registry())
    templates = TemplateSet([tmp_path], include_bundled=False)
    found = [str(p) for p in check_workflow(wf, templates, ["en"])]
    assert "notice.yaml:45:15: notice_opened.en.jinja: unknown variable 'nobody'" in found
    assert "notice.yaml:45:15: notice_opened.en.jinja: line 1: data.ghost is not a field" in found


NOTIFICATIONS_API = {
    "STATUSES", "WITHHELD", "Audience", "Channel", "ConfigError",
    "DeliveryError", "Directory", "DirectoryFile", "DirectorySource", "DispatchPolicy",
    "DispatchStats", "Dispatcher", "Limits", "NotificationSettings", "Outgoing", "OutboxEntry",
    "OutboxWriter", "RenderLimitExceeded", "Rendered", "TemplateProblem", "TemplateSet",
    "check_catalog", "check_workflow", "load_directory", "load_settings", "parse_directory",
}  # fmt: skip


def test_the_public_api_of_notifications_and_channels_is_pinned() -> None:
    from opcatflow import notifications
    from opcatflow.adapters import channels

    assert set(notifications.__all__) == NOTIFICATIONS_API
    assert all(hasattr(notifications, name) for name in notifications.__all__)
    assert set(channels.__all__) == {
        "FileChannel",
        "LogChannel",
        "SmtpChannel",
        "WebhookChannel",
        "sign",
    }
