"""The README's Python example runs as written."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from opcatflow.engine import compile_text
from opcatflow.engine.firing import Refused, decide
from opcatflow.workflows import registry

README = Path(__file__).parent.parent / "README.md"


@pytest.mark.skipif(not README.exists(), reason="outside a checkout (the wheel test)")
def test_the_python_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    _, example, _ = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    exec(compile(example, str(README), "exec"), {})  # our own README, nothing from outside
    printed = capsys.readouterr().out
    assert "data - missing required field(s): complaint_type, institution, theme" in printed
    assert "data - role 'intake' may not write do_no_harm (only head may write it)" in printed
    assert "stale: now at version 2" in printed


@pytest.mark.skipif(not README.exists(), reason="outside a checkout (the wheel test)")
def test_the_in_memory_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    _, _, example = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    exec(compile(example, str(README), "exec"), {})  # our own README, nothing from outside
    printed = [line for line in capsys.readouterr().out.splitlines() if "[info" not in line]
    assert printed == ["2026-03-09", "acknowledged met"]


@pytest.mark.skipif(not README.exists(), reason="outside a checkout (the wheel test)")
def test_the_definition_example_is_valid() -> None:
    [example] = re.findall(r"```yaml\n(id: .*?)```", README.read_text(), re.S)
    workflow = compile_text(example, "README.md", registry)
    answer = {"answer": "Yes.", "answered_by": "a visitor"}
    refused = decide(
        workflow,
        instance_id="i",
        state="sent",
        data={},
        trigger="record_answer",
        actor="v",
        role="visitor",
        supplied=answer,
        now=datetime(2026, 3, 2, tzinfo=UTC),
    )
    assert refused == Refused(
        "data", "role 'visitor' may not write answered_by (only head may write it)"
    )


@pytest.mark.skipif(not README.exists(), reason="outside a checkout (the wheel test)")
def test_the_webhook_verification_example_accepts_what_opcatflow_signs() -> None:
    from opcatflow.adapters.channels.webhook import sign

    [example] = re.findall(r"## Webhooks.*?```python\n(.*?)```", README.read_text(), re.S)
    space: dict[str, object] = {}
    exec(compile(example, str(README), "exec"), space)  # our own README
    verify = space["verify"]
    assert callable(verify)
    body, now = b'{"type":"x"}', int(datetime.now(UTC).timestamp())
    headers = {
        "webhook-id": "msg-1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(b"secret", "msg-1", now, body),
    }
    assert verify(b"secret", headers, body) is True
    assert verify(b"other", headers, body) is False
    assert verify(b"secret", headers, body + b" ") is False
