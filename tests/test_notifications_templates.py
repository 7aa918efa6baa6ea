"""Templates: locale fallback, text and HTML from one file, checks of the variables they read,
the sandbox refusing known escapes, and renders bounded in time and size."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from opcatflow.engine.sandbox import Limits
from opcatflow.notifications.templates import TemplateProblem, TemplateSet

CONTEXT = {
    "workflow": {"id": "w", "version": 1, "title": "W"},
    "instance": {
        "id": "i-1",
        "state": "s",
        "state_label": "S",
        "version": 1,
        "parent_id": None,
        "created_at": "x",
    },
    "event": {
        "kind": "transition",
        "trigger": "t",
        "due_at": None,
        "due_on": None,
        "at": "2026-03-02",
    },
    "recipient": {"name": "Rania", "locale": "fr"},
    "data": {"place": "Prison <A>", "items": ["a", "b"]},
    "labels": {},
    "withheld": [],
    "reason": None,
}


def template_set(tmp_path: Path, files: dict[str, str], **kw: object) -> TemplateSet:
    for name, body in files.items():
        (tmp_path / name).write_text(body, "utf-8")
    return TemplateSet([tmp_path], include_bundled=False, **kw)  # type: ignore[arg-type]


def one(body: str) -> dict[str, str]:
    return {
        "m.en.jinja": "{% block subject %}s{% endblock %}{% block text %}" + body + "{% endblock %}"
    }


def test_the_recipients_locale_is_used_then_its_language_then_english(tmp_path: Path) -> None:
    files = {
        "m.en.jinja": "{% block subject %}Hello {{ recipient.name }}{% endblock %}{% block text %}en{% endblock %}",
        "m.fr.jinja": "{% block subject %}Bonjour {{ recipient.name }}{% endblock %}{% block text %}fr{% endblock %}",
    }
    templates = template_set(tmp_path, files)
    assert templates.render("m", "fr", CONTEXT).subject == "Bonjour Rania"
    assert templates.render("m", "fr-CA", CONTEXT).locale == "fr"
    assert templates.render("m", "es", CONTEXT).subject == "Hello Rania"
    assert templates.render("m", None, CONTEXT).locale == "en"


def test_one_file_gives_a_plain_subject_a_text_body_and_an_escaped_html_body(
    tmp_path: Path,
) -> None:
    files = {
        "m.en.jinja": "{% block subject %}  New\n  case   at {{ data.place }}{% endblock %}\n"
        "{% block text %}At {{ data.place }}{% endblock %}\n"
        "{% block html %}<p>At {{ data.place }}</p>{% endblock %}"
    }
    message = template_set(tmp_path, files).render("m", "en", CONTEXT)
    assert message.subject == "New case at Prison <A>"
    assert message.text == "At Prison <A>\n"
    assert message.html == "<p>At Prison &lt;A&gt;</p>\n"


def test_an_operator_folder_overrides_a_bundled_template(tmp_path: Path) -> None:
    (tmp_path / "test_message.en.jinja").write_text(
        "{% block subject %}ours{% endblock %}{% block text %}x{% endblock %}"
    )
    context = {**CONTEXT, "event": {**CONTEXT["event"], "at": "now"}}
    assert TemplateSet([tmp_path]).render("test_message", "en", context).subject == "ours"
    assert TemplateSet().render("test_message", "en", context).subject == "opcatflow test message"


def test_an_edited_template_is_used_from_the_next_render(tmp_path: Path) -> None:
    templates = template_set(tmp_path, one("first"))
    assert templates.render("m", "en", CONTEXT).text == "first\n"
    path = tmp_path / "m.en.jinja"
    path.write_text(path.read_text().replace("first", "second edition"))
    assert templates.render("m", "en", CONTEXT).text == "second edition\n"


def test_an_undefined_variable_is_an_error_not_an_empty_string(tmp_path: Path) -> None:
    with pytest.raises(TemplateProblem, match="UndefinedError"):
        template_set(tmp_path, one("{{ data.missing }}")).render("m", "en", CONTEXT)


def test_a_missing_template_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TemplateProblem, match="no template 'other'"):
        template_set(tmp_path, one("x")).render("other", "en", CONTEXT)


def test_check_reports_unknown_templates_variables_fields_and_blocks(tmp_path: Path) -> None:
    files = {
        "m.en.jinja": "{% block subject %}{{ data.place }} {{ data.ghost }}{% endblock %}"
        "{% block text %}{{ event.kind }} {{ event.colour }} {{ secret }}{% endblock %}"
        "{% block footer %}{% endblock %}",
        "m.fr.jinja": "{% block subject %}{{ data.place }{% endblock %}",
        "n.en.jinja": "{% block subject %}{{ data['place'] }} {{ data.items() }}{% endblock %}{% block text %}{% endblock %}",
    }
    templates = template_set(tmp_path, files)
    problems = templates.check("m", ["place"])
    assert "m.en.jinja: unknown variable 'secret'" in problems
    assert "m.en.jinja: line 1: data.ghost is not a field" in problems
    assert any(p.startswith("m.en.jinja: line 1: event has no 'colour'") for p in problems)
    assert "m.en.jinja: unknown block 'footer' (use subject, text, html)" in problems
    assert any(p.startswith("m.fr.jinja: line 1: unexpected '}'") for p in problems)
    assert templates.check("n", ["place"]) == []
    assert templates.check("nope", []) == [
        "unknown template 'nope': no nope.en.jinja (known: m, n)"
    ]


ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__dict__ }}",
    "{{ ''|attr('__class__') }}",
    "{{ (''|attr('__class__')|attr('__mro__'))[1] }}",
    "{{ '{0.__class__.__mro__}'.format('') }}",
    "{{ '{0.__globals__}'.format(cycler.reset) }}",
    "{{ data.__class__ }}",
    "{{ data.items.__self__ }}",
    "{{ range.__globals__ }}",
    "{{ lipsum.__globals__ }}",
    "{{ config }}",
    "{{ request }}",
    "{% set x = data.update({'a': 1}) %}",
    "{{ data['items'].append(1) }}",
    "{{ 'a'.replace('a', 'b') }}",
    "{% include '/etc/passwd' %}",
    "{% include '../../../etc/passwd' %}",
]


@pytest.mark.parametrize("body", ESCAPES)
def test_known_sandbox_escapes_are_refused(tmp_path: Path, body: str) -> None:
    with pytest.raises(TemplateProblem) as caught:
        template_set(tmp_path, one(body)).render("m", "en", CONTEXT)
    assert any(
        kind in str(caught.value)
        for kind in ("SecurityError", "UndefinedError", "TemplateNotFound", "not safely callable")
    )


BOMBS = [
    ("{{ 'a' * 1000000000 }}", "built a value"),
    ("{{ [1] * 1000000000 }}", "built a value"),
    ("{{ 9 ** 999999999 }}", "built a value"),
    (
        "{% set ns = namespace(n=3) %}{% for i in range(64) %}{% set ns.n = ns.n * ns.n %}{% endfor %}",
        "built a value",
    ),
    (
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "built a value",
    ),
    (
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
        "built a value",
    ),
    ("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "produced more than"),
    (
        "{% set x %}{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}{% endset %}",
        "produced more than",
    ),
    (
        "{% macro m() %}{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}{% endmacro %}{% set y = m() %}",
        "produced more than",
    ),
    ("{{ 'a'.ljust(1000000000) }}", "passed the number"),
    ("{{ 'a'|center(1000000000) }}", "passed the number"),
    ("{{ 'a'|indent(1000000000) }}", "passed the number"),
    ("{{ ('\\n' * 100000)|indent('x' * 1000) }}", "built a value"),
    ("{{ ('a' * 1000)|replace('', 'b' * 1000) }}", "built a value"),
    ("{{ range(100000)|join('x' * 100000) }}", "built a value"),
    ("{{ ('a' * 100000)|wordwrap(1, wrapstring='x' * 100) }}", "built a value"),
    ("{{ '{:>1000000000}'.format(1) }}", "passed the number"),
    ("{{ '{:{}}'.format(1, 5) }}", "nested format fields"),
    ("{{ '%1000000000s' % 1 }}", "passed the number"),
    ("{{ '%*s' % (1000000000, 1) }}", "widths are not allowed"),
    ("{{ '%s'|format(1) }}{{ '%1000000000d'|format(1) }}", "passed the number"),
    (
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        "loop iterations",
    ),
    (
        "{% for a in data['items'] * 1000 %}{% for b in range(1000) %}{% endfor %}{% endfor %}",
        "loop iterations",
    ),
]


@pytest.mark.parametrize(("body", "why"), BOMBS)
def test_a_runaway_template_is_stopped(tmp_path: Path, body: str, why: str) -> None:
    with pytest.raises(TemplateProblem, match=why):
        template_set(tmp_path, one(body)).render("m", "en", CONTEXT)


def test_a_slow_template_is_stopped_when_its_time_is_up(tmp_path: Path) -> None:
    ticks = itertools.count()  # a clock that moves one second per reading
    templates = template_set(
        tmp_path,
        one(
            "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(30) }}"
        ),
        limits=Limits(seconds=50),
        timer=lambda: float(next(ticks)),
    )
    with pytest.raises(TemplateProblem, match="took longer than 50 s"):
        templates.render("m", "en", CONTEXT)


def test_a_slow_template_is_stopped_on_the_real_clock_too(tmp_path: Path) -> None:
    body = (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"
    )
    templates = template_set(tmp_path, one(body), limits=Limits(seconds=0.2))
    with pytest.raises(TemplateProblem, match="took longer"):
        templates.render("m", "en", CONTEXT)


def test_ordinary_templates_render_within_the_limits(tmp_path: Path) -> None:
    body = (
        "{% for k, v in data.items() %}{{ k }}={{ v }};{% endfor %}"
        "{{ data['items']|join(', ')|upper }} {{ '%05d'|format(42) }} {{ '{:>6}'.format('x') }}"
        " {{ 'Prison'.ljust(8) }}| {{ range(3)|list }} {{ 'a b'.split()|length }}"
    )
    text = template_set(tmp_path, one(body)).render("m", "en", CONTEXT).text
    assert text == "place=Prison <A>;items=['a', 'b'];A, B 00042      x Prison  | [0, 1, 2] 2\n"
