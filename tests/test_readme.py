"""The README's Python example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"


@pytest.mark.skipif(not README.exists(), reason="outside a checkout (the wheel test)")
def test_the_python_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    [example] = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    exec(compile(example, str(README), "exec"), {})  # our own README, nothing from outside
    printed = capsys.readouterr().out
    assert "data - missing required field(s): complaint_type, institution, theme" in printed
    assert "stale: now at version 2" in printed
