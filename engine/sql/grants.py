"""``db grant ROLE``: a PostgreSQL role that runs opcatflow and owns nothing.

Only a table's owner (or a superuser) may ``ALTER TABLE`` it, disable its triggers or drop
it, and only a role granted ``TRUNCATE`` may truncate it. So ``serve`` and ``worker`` run as
a role that owns no table and holds only what they need: reading and writing rows, the audit
table's ``SELECT`` and ``INSERT`` alone. The owner (who runs ``db upgrade`` and ``db
encrypt``) keeps the tools of a rewrite; the application's credentials, the ones most
exposed, do not have them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opcatflow.engine.errors import OpcatflowError
from opcatflow.engine.sql import tables as t

_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# What the application does to each table; every other table gets the full row rights.
_RIGHTS = {
    "audit": "SELECT, INSERT",  # append-only: no UPDATE, DELETE or TRUNCATE to grant
    "audit_position": "SELECT, UPDATE",
    "alembic_version": "SELECT",
}
_ROWS = "SELECT, INSERT, UPDATE, DELETE"


class GrantRefused(OpcatflowError):
    """The role cannot be made an application role (named in the message)."""


@dataclass
class GrantReport:
    role: str
    created: bool
    tables: list[str] = field(default_factory=list)


def grant_application_role(conn: Connection, role: str) -> GrantReport:
    """Give ``role`` (made, with LOGIN and no password, if missing) the rights the
    application needs on the current database and schema, and nothing more.

    Raises:
        GrantRefused: not PostgreSQL, a malformed name, a superuser, or a role that owns
            something in the schema (it could disable the audit triggers).
    """
    if conn.dialect.name != "postgresql":
        raise GrantRefused("db grant is for PostgreSQL: a SQLite file has no roles")
    if not _ROLE_NAME.fullmatch(role):
        raise GrantRefused(
            f"role name {role!r}: lower-case letters, digits and _, at most 63, "
            "not starting with a digit"
        )
    quoted = f'"{role}"'
    found = conn.execute(
        sa.text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :r"), {"r": role}
    ).first()
    if found is not None and found.rolsuper:
        raise GrantRefused(f"role {role} is a superuser: it can do anything, grants or not")
    owned = conn.execute(
        sa.text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND pg_get_userbyid(c.relowner) = :r "
            "ORDER BY 1"
        ),
        {"r": role},
    ).scalars()
    owned_names = list(owned)
    if owned_names:
        raise GrantRefused(
            f"role {role} owns {', '.join(owned_names[:5])}: an owner may disable the audit "
            "triggers; run the application as another role"
        )
    if found is None:
        conn.exec_driver_sql(f"CREATE ROLE {quoted} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
    schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
    database = conn.execute(sa.text("SELECT current_database()")).scalar_one()
    conn.exec_driver_sql(f'GRANT CONNECT ON DATABASE "{database}" TO {quoted}')
    conn.exec_driver_sql(f'GRANT USAGE ON SCHEMA "{schema}" TO {quoted}')
    conn.exec_driver_sql(f'REVOKE CREATE ON SCHEMA "{schema}" FROM {quoted}')
    report = GrantReport(role, created=found is None)
    for name in [*sorted(t.metadata.tables), "alembic_version"]:
        conn.exec_driver_sql(f'REVOKE ALL ON "{schema}"."{name}" FROM {quoted}')
        rights = _RIGHTS.get(name, _ROWS)
        conn.exec_driver_sql(f'GRANT {rights} ON "{schema}"."{name}" TO {quoted}')
        report.tables.append(name)
    conn.exec_driver_sql(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "{schema}" TO {quoted}')
    return report
