"""Query parameters a route does not declare are refused (422), not ignored.

An ignored ``stat=closed`` answers with the unfiltered list, which a client reads as its
answer. The parameters a route declares are read from its FastAPI dependant once per route.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from opcatflow.engine.filters import check_parameters

_DECLARED: dict[str, frozenset[str]] = {}  # by the route's unique id (its operation)


def _declared(route: APIRoute) -> frozenset[str]:
    found = _DECLARED.get(route.unique_id)
    if found is not None:
        return found
    names: set[str] = set()
    pending: list[Dependant] = [route.dependant]
    while pending:  # the route's parameters and those of its dependencies
        dependant = pending.pop()
        names.update(p.alias for p in dependant.query_params)
        pending.extend(dependant.dependencies)
    found = _DECLARED[route.unique_id] = frozenset(names)
    return found


def known_query(request: Request) -> None:
    """A route dependency. Raises: InvalidFilter (422) for an undeclared query parameter."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    if isinstance(route, APIRoute):
        check_parameters(request.query_params.keys(), _declared(route))
