"""The fire's fast path (``adapters/http/fastpath.py``): it answers a request exactly as the
FastAPI route does, and hands FastAPI every request it does not read as FastAPI would, body
included.

The first test drives one real server with two apps over one database, one as built and one
without the fast path, and compares what each answers, stores and logs for any request."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from helpers import changes, make_registry
from http_server import DEFINITIONS, KEYS, LiveServer, live_server_fixture  # noqa: F401
from hypothesis import example, given, settings
from hypothesis import strategies as st
from starlette.types import Message, Receive, Scope, Send

from opcatflow.adapters.http import ApiConfig, ApiKeys, create_app
from opcatflow.adapters.http.auth import Caller
from opcatflow.adapters.http.fastpath import FireFastPath
from opcatflow.adapters.http.idempotency import Reply
from opcatflow.adapters.http.instances import _answer
from opcatflow.engine import Engine, FrozenClock, TransitionRefused
from opcatflow.engine.results import FireResult

PLAIN = b'{"trigger": "edit", "data": {"score": 3}}'


@dataclass
class Side:
    """One of the two apps, and the JSON lines it logged."""

    app: FastAPI
    log: io.StringIO

    def events(self) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.log.getvalue().splitlines()]
        self.log.seek(0)
        self.log.truncate()
        for line in lines:
            line.pop("duration_ms", None)
        return lines


def _side(engine: Engine, *, fast: bool) -> Side:
    log = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(log),
        processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
    )
    app = create_app(engine, ApiConfig(auth_failure_limit=0), logger=logger)
    if not fast:  # Starlette builds its middleware stack from this list on the first request
        app.user_middleware = [m for m in app.user_middleware if m.cls is not FireFastPath]
    return Side(app, log)


@dataclass
class TwoApps:
    engine: Engine
    server: LiveServer
    client: httpx.Client
    tokens: dict[str, str]
    fast: Side
    plain: Side

    def send(self, side: Side, path: str, raw: bytes, headers: dict[str, str]) -> httpx.Response:
        self.server.slot.app = side.app
        return self.client.post(path, content=raw, headers=headers)


@pytest.fixture
def two(live_server: LiveServer, db_url: str, clock: FrozenClock) -> Iterator[TwoApps]:
    with (
        Engine.open(db_url, [DEFINITIONS], make_registry(), clock=clock) as engine,
        httpx.Client(base_url=live_server.url, timeout=30) as client,
    ):
        keys = ApiKeys(engine.store, clock)
        tokens = {name: keys.create(f"{name}-actor", roles)[1] for name, roles in KEYS.items()}
        revoked, tokens["revoked"] = keys.create("revoked-actor", ["clerk"])
        keys.revoke(revoked.id)
        tokens["unknown"] = "opf_0123456789ab_not-a-secret"
        both = TwoApps(
            engine, live_server, client, tokens, _side(engine, fast=True), _side(engine, fast=False)
        )
        for token in tokens.values():  # each key's first call fills the key cache
            live_server.slot.app = both.fast.app
            client.get("/workflows", headers={"Authorization": f"Bearer {token}"})
        both.fast.events()
        try:
            yield both
        finally:
            live_server.slot.app = None


values = st.one_of(
    st.none(), st.integers(-3, 9), st.text(max_size=4), st.lists(st.text(max_size=3), max_size=2)
)
bodies = st.fixed_dictionaries(
    {"trigger": st.sampled_from(["edit", "submit", "close", "nope", "Not-A-Name", ""])},
    optional={
        "data": st.dictionaries(
            st.sampled_from(["title", "name", "score", "tags", "unknown"]), values, max_size=3
        ),
        "reason": st.one_of(st.none(), st.text(max_size=8)),
        "role": st.sampled_from(["clerk", "reviewer", "observer", "warden", "admin"]),
        "extra": st.just(1),
    },
).map(lambda body: json.dumps(body).encode())
raws = st.one_of(
    bodies,
    bodies.map(lambda raw: raw.decode().encode("utf-16")),
    st.sampled_from([b"", b"{", b"[]", b"null", b'"edit"', b'{"trigger": "edit"} x', b"\xff"]),
    st.sampled_from(  # refused by the model's validators: limits, text, nesting
        [
            b'{"trigger": "edit", "reason": "\\udfff"}',
            b'{"trigger": "edit", "data": {"\\udc80": 1}}',
            b'{"trigger": "edit", "data": {"title": "caf\xe9"}}',
            json.dumps({"trigger": "edit", "data": {"title": "x" * 1_001}}).encode(),
            json.dumps({"trigger": "edit", "data": {"tags": ["a"] * 1_001}}).encode(),
            b'{"trigger": "edit", "data": {"tags": ' + b"[" * 40 + b"]" * 40 + b"}}",
            b"[" * 100_000 + b"]" * 100_000,
        ]
    ),
)
edits = st.fixed_dictionaries(
    {"trigger": st.sampled_from(["edit", "submit", "close"])},
    optional={
        "data": st.fixed_dictionaries({}, optional={"score": st.integers(0, 9), "tags": values}),
        "reason": st.text(max_size=8),
        "role": st.sampled_from(["clerk", "reviewer"]),
    },
).map(lambda body: json.dumps(body).encode())
fire_options = {
    "target": st.sampled_from(["case", "case", "case", "nowhere"]),
    "score": st.one_of(st.none(), st.integers(0, 9)),
    "submitted": st.booleans(),
    # each side sends its own key (one key used on both would be a reuse)
    "idempotency_key": st.sampled_from([None, None, "k-{side}-{n}", '"k-{side}-{n}"', "a b"]),
    "if_match": st.sampled_from([None, None, '"1"', '"2"', 'W/"2"', "*", "garbage"]),
    "sent": st.sampled_from([1, 1, 2]),  # a second time: a retry
}
# Half of them as a well-behaved client sends them (what the fast path takes), half anything.
requests = st.one_of(
    st.fixed_dictionaries(
        {
            "raw": edits,
            "who": st.sampled_from(["clerk", "reviewer", "multi", "observer"]),
            "auth": st.just("Bearer"),
            "content_type": st.just("application/json"),
            "query": st.just(""),
            **fire_options,
        }
    ),
    st.fixed_dictionaries(
        {
            "raw": raws,
            "who": st.sampled_from(
                ["clerk", "reviewer", "multi", "observer", "revoked", "unknown"]
            ),
            "auth": st.sampled_from(["Bearer", "bearer", "Basic", None]),
            "content_type": st.sampled_from(
                ["application/json", None, "text/plain", "application/json; charset=utf-8"]
            ),
            "query": st.sampled_from(["", "?role=clerk"]),
            **fire_options,
        }
    ),
)
EDIT = {
    "raw": b'{"trigger": "edit", "data": {"score": 4}}',
    "who": "clerk",
    "auth": "Bearer",
    "content_type": "application/json",
    "query": "",
    "target": "case",
    "score": 1,
    "submitted": False,
    "idempotency_key": None,
    "if_match": None,
    "sent": 1,
}


def test_the_fast_path_answers_stores_and_logs_as_the_route_does(two: TwoApps) -> None:
    numbers = itertools.count()

    @settings(max_examples=60, deadline=None, derandomize=True, database=None)
    @given(request=requests)
    @example(request={**EDIT, "idempotency_key": "k-{side}-{n}", "sent": 2})  # a retry
    @example(request={**EDIT, "idempotency_key": "a b"})  # a malformed key
    @example(request={**EDIT, "if_match": '"1"'})
    @example(request={**EDIT, "if_match": '"2"', "idempotency_key": "k-{side}-{n}"})
    @example(request={**EDIT, "raw": b'{"trigger": "edit", "role": "reviewer"}'})
    def check(request: dict[str, Any]) -> None:
        seen = []
        for side in (two.fast, two.plain):
            data = {"title": "A case", "score": request["score"]}
            case = two.engine.start("casefile", actor="clerk-actor", role="clerk", data=data)
            if request["submitted"] and request["score"] is not None:
                two.engine.fire(case.id, "submit", actor="clerk-actor", role="clerk")
            instance_id = case.id if request["target"] == "case" else "nowhere"
            headers = {}
            if request["auth"] is not None:
                headers["Authorization"] = f"{request['auth']} {two.tokens[request['who']]}"
            if request["content_type"] is not None:
                headers["Content-Type"] = request["content_type"]
            if request["idempotency_key"] is not None:
                key = request["idempotency_key"].format(side=id(side), n=next(numbers))
                headers["Idempotency-Key"] = key
            if request["if_match"] is not None:
                headers["If-Match"] = request["if_match"]
            path = f"/instances/{instance_id}/transitions{request['query']}"
            answers = [
                two.send(side, path, request["raw"], headers) for _ in range(request["sent"])
            ]
            stored = [
                (r.outcome, r.trigger, r.actor, r.role, r.reason, r.to_state)
                for r in changes(two.engine, case.id)
            ]
            logged = side.events()
            found = [
                [a.status_code, {k: v for k, v in a.headers.items() if k != "date"}, a.text]
                for a in answers
            ]
            seen.append(json.loads(json.dumps([found, stored, logged]).replace(case.id, "<id>")))
        assert seen[0] == seen[1]

    check()


def test_a_streamed_body_over_the_limit_is_answered_as_the_route_does(two: TwoApps) -> None:
    def streamed() -> Iterator[bytes]:  # no Content-Length: the limit is met while reading
        yield b'{"trigger": "edit", "reason": "'
        for _ in range(40):
            yield b"x" * 32_768
        yield b'"}'

    seen = []
    for side in (two.fast, two.plain):
        case = two.engine.start("casefile", actor="clerk-actor", role="clerk", data={"title": "A"})
        headers = {
            "Authorization": f"Bearer {two.tokens['clerk']}",
            "Content-Type": "application/json",
        }
        two.server.slot.app = side.app
        answer = two.client.post(
            f"/instances/{case.id}/transitions", content=streamed(), headers=headers
        )
        answered = {k: v for k, v in answer.headers.items() if k != "date"}
        found = [answer.status_code, answered, answer.text, side.events()]
        seen.append(json.loads(json.dumps(found).replace(case.id, "<id>")))
        assert len(changes(two.engine, case.id)) == 1
    assert seen[0] == seen[1]
    assert seen[0][0] == 413


def test_an_address_held_back_is_answered_429_even_with_a_verified_key(
    live_server: LiveServer, db_url: str, clock: FrozenClock
) -> None:
    with Engine.open(db_url, [DEFINITIONS], make_registry(), clock=clock) as engine:
        _, token = ApiKeys(engine.store, clock).create("clerk-actor", ["clerk"])
        live_server.slot.app = create_app(engine, ApiConfig(auth_failure_limit=2))
        case = engine.start("casefile", actor="clerk-actor", role="clerk", data={"title": "A"})
        try:
            with httpx.Client(base_url=live_server.url, timeout=30) as client:
                path = f"/instances/{case.id}/transitions"
                good = {"Authorization": f"Bearer {token}"}
                assert client.post(path, json={"trigger": "edit"}, headers=good).status_code == 200
                wrong = {"Authorization": "Bearer opf_0123456789ab_not-the-secret"}
                for _ in range(2):
                    assert client.post(path, json={"trigger": "edit"}, headers=wrong).is_error
                refused = client.post(path, json={"trigger": "edit"}, headers=good)
        finally:
            live_server.slot.app = None
        assert refused.status_code == 429
        assert len(changes(engine, case.id)) == 2  # the start and the first edit


# -- the middleware alone: what it answers, and what it hands on ------------------------------


class Behind:
    """The app behind the fast path: records the body of each request it gets."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        self.bodies.append(b"".join(chunks))
        await send({"type": "http.response.start", "status": 599, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _call(
    app: FastAPI, path: str, raw: bytes, headers: list[tuple[bytes, bytes]], query: bytes = b""
) -> tuple[int, bytes, Behind]:
    behind = Behind()
    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "root_path": "",
        "query_string": query,
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "app": app,
    }
    chunks = [raw[: len(raw) // 2], raw[len(raw) // 2 :]]  # the body in two parts
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(FireFastPath(behind)(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]), behind


@pytest.fixture
def engine(db_url: str, clock: FrozenClock) -> Iterator[Engine]:
    with Engine.open(db_url, [DEFINITIONS], make_registry(), clock=clock) as opened:
        yield opened


@pytest.fixture
def alone(engine: Engine, clock: FrozenClock) -> tuple[FastAPI, str, str]:
    """An app over ``engine`` (not served) whose key cache holds a clerk's key, and a case."""
    key, token = ApiKeys(engine.store, clock).create("clerk-actor", ["clerk"])
    app = create_app(engine)
    app.state.api.key_cache.put(token, key)
    case = engine.start("casefile", actor="clerk-actor", role="clerk", data={"title": "A"})
    return app, token, case.id


def test_a_plain_fire_is_answered_without_the_app_behind(
    alone: tuple[FastAPI, str, str], engine: Engine
) -> None:
    app, token, case_id = alone
    headers = [
        (b"authorization", f"Bearer {token}".encode()),
        (b"content-type", b"application/json"),
    ]
    status, body, behind = _call(app, f"/instances/{case_id}/transitions", PLAIN, headers)
    assert (status, behind.bodies) == (200, [])
    assert json.loads(body)["data"]["score"] == 3
    assert changes(engine, case_id)[-1].trigger == "edit"


@pytest.mark.parametrize(
    ("extra", "raw", "status"),
    [
        ([(b"idempotency-key", b"k1")], PLAIN, 200),
        ([(b"if-match", b'"1"')], PLAIN, 200),
        ([(b"if-match", b'"7"')], PLAIN, 412),
        ([(b"idempotency-key", b"not a key")], PLAIN, 400),
        ([], b'{"trigger": "edit", "role": "reviewer"}', 403),  # not the key's role
        ([], b'{"trigger": "close"}', 409),  # refused by the engine, and audited
    ],
)
def test_keys_versions_roles_and_refusals_are_answered_here(
    alone: tuple[FastAPI, str, str],
    extra: list[tuple[bytes, bytes]],
    raw: bytes,
    status: int,
) -> None:
    app, token, case_id = alone
    headers = [
        (b"authorization", f"Bearer {token}".encode()),
        (b"content-type", b"application/json"),
    ]
    path = f"/instances/{case_id}/transitions"
    answered, body, behind = _call(app, path, raw, headers + extra)
    assert (answered, behind.bodies) == (status, [])
    if extra and extra[0][0] == b"idempotency-key" and status == 200:  # a retry is replayed
        assert _call(app, path, raw, headers + extra)[:2] == (200, body)


@pytest.mark.parametrize(
    ("path", "query", "raw"),
    [
        ("/instances/{id}/transitions", b"role=clerk", PLAIN),
        ("/instances/{id}/transitions/", b"", PLAIN),
        ("/instances/{id}/transitions", b"", b'{"trigger": "edit", "extra": 1}'),
        ("/instances/{id}/transitions", b"", b"{not json"),
    ],
)
def test_another_path_a_query_or_a_body_the_model_refuses_goes_on_with_the_body(
    alone: tuple[FastAPI, str, str], engine: Engine, path: str, query: bytes, raw: bytes
) -> None:
    app, token, case_id = alone
    headers = [
        (b"authorization", f"Bearer {token}".encode()),
        (b"content-type", b"application/json"),
    ]
    status, _, behind = _call(app, path.format(id=case_id), raw, headers, query)
    assert (status, behind.bodies) == (599, [raw])
    assert len(changes(engine, case_id)) == 1  # nothing fired here


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-type", b"application/json")],  # no key
        [(b"authorization", b"Bearer opf_0123456789ab_x"), (b"content-type", b"application/json")],
        [(b"authorization", b"Bearer {token}")],  # no content type
        [(b"authorization", b"Bearer {token}"), (b"content-type", b"text/plain")],
    ],
)
def test_an_unverified_key_or_another_content_type_goes_on(
    alone: tuple[FastAPI, str, str], headers: list[tuple[bytes, bytes]]
) -> None:
    app, token, case_id = alone
    filled = [(k, v.replace(b"{token}", token.encode())) for k, v in headers]
    status, _, behind = _call(app, f"/instances/{case_id}/transitions", PLAIN, filled)
    assert (status, behind.bodies) == (599, [PLAIN])


def test_a_fire_run_again_after_a_failed_commit_answers_with_its_last_run(
    engine: Engine,
) -> None:
    # Group commit runs a fire again alone when its batch's commit failed: the reply must be
    # the run that committed, not the first one's.
    case = engine.start("casefile", actor="clerk-actor", role="clerk", data={"title": "A"})
    who = Caller("k", "clerk-actor", ("clerk",))
    replies: list[Reply] = []
    also = _answer(engine, who, None, replies)
    for refused_by in ("state", "guard"):
        refusal = TransitionRefused(case.id, "close", refused_by, "no")
        result = FireResult(case, None, refusal, "close", "clerk-actor", "clerk", ())
        with engine.store.read() as uow:
            also(uow, result)
    assert [reply.body["kind"] for reply in replies] == ["guard"]


def test_a_client_that_leaves_mid_body_is_handed_on_as_it_left(
    alone: tuple[FastAPI, str, str], engine: Engine
) -> None:
    app, token, case_id = alone
    sent_by_client: list[Message] = [
        {"type": "http.request", "body": PLAIN[:10], "more_body": True},
        {"type": "http.disconnect"},
    ]
    seen: list[Message] = []

    async def behind(scope: Scope, receive: Receive, send: Send) -> None:
        for _ in sent_by_client:
            seen.append(await receive())

    arriving = iter(sent_by_client)

    async def receive() -> Message:
        return next(arriving)

    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": f"/instances/{case_id}/transitions",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
        ],
        "client": ("127.0.0.1", 50000),
        "app": app,
    }

    async def send(message: Message) -> None:
        raise AssertionError("nothing is answered to a client that left")

    asyncio.run(FireFastPath(behind)(scope, receive, send))
    assert seen == sent_by_client
    assert len(changes(engine, case_id)) == 1
