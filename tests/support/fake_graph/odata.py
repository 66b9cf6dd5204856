"""OData on the fake Graph: ``$filter`` parsing, ``$select`` projections, entities and
collections, and paging with ``@odata.nextLink`` (``$skiptoken``)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from .model import GraphCall, GraphError, Json, _b64url
from .state import TenantState

# Properties Graph returns for a user when there is no $select (the default set).
_DEFAULT_USER_PROPERTIES = ("businessPhones", "displayName", "givenName", "jobTitle", "mail",
                            "mobilePhone", "officeLocation", "preferredLanguage", "surname",
                            "userPrincipalName", "id")  # fmt: skip
# Filtering on these needs an advanced query (ConsistencyLevel: eventual, $count=true).
_ADVANCED_ONLY = {"onPremisesSamAccountName", "employeeId"}
_CLAUSE = re.compile(
    r"(?P<prop>[A-Za-z]+(?:/[A-Za-z]+)?) (?:(?P<op>eq|ge|le) "
    r"(?P<value>'(?:[^']|'')*'|[0-9][0-9TZ:.\-]*|true|false)|in \((?P<list>[^)]*)\))"
)
_JOIN = re.compile(r" (and|or) ")


class OData(TenantState):
    # -- OData ---------------------------------------------------------------------------

    def _filtered(self, rows: list[Json], call: GraphCall, kind: str) -> list[Json]:
        text = call.query.get("$filter")
        if not text:
            return rows
        test = self._parse_filter(text, call.advanced or kind == "SignIn", kind)
        return [row for row in rows if test(row)]

    def _parse_filter(self, text: str, advanced: bool, kind: str) -> Callable[[Json], bool]:
        tests: list[Callable[[Json], bool]] = []
        joins: set[str] = set()
        position = 0
        while True:
            clause = _CLAUSE.match(text, position)
            if clause is None:
                raise GraphError(400, "BadRequest", f"Invalid filter clause: {text[position:]!r}")
            prop = clause["prop"]
            if prop in _ADVANCED_ONLY and not advanced:
                raise GraphError(
                    400,
                    "Request_UnsupportedQuery",
                    f"Unsupported or invalid query filter clause specified for property "
                    f"'{prop}' of resource '{kind}'.",
                )
            tests.append(self._clause_test(clause))
            position = clause.end()
            if position == len(text):
                break
            join = _JOIN.match(text, position)
            if join is None:
                raise GraphError(400, "BadRequest", f"Syntax error at position {position}.")
            joins.add(join[1])
            position = join.end()
        if len(joins) > 1:
            raise GraphError(400, "BadRequest", "This fake does not mix 'and' with 'or'.")
        if joins == {"or"}:
            return lambda row: any(t(row) for t in tests)
        return lambda row: all(t(row) for t in tests)

    @staticmethod
    def _clause_test(clause: re.Match[str]) -> Callable[[Json], bool]:
        def value_of(row: Json) -> Any:
            value: Any = row
            for step in clause["prop"].split("/"):
                value = value.get(step) if isinstance(value, dict) else None
            return value

        if clause["list"] is not None:
            wanted = {v.strip().strip("'").casefold() for v in clause["list"].split(",")}
            return lambda row: str(value_of(row) or "").casefold() in wanted
        raw = clause["value"]
        if raw.startswith("'"):
            text = raw[1:-1].replace("''", "'").casefold()
            return lambda row: str(value_of(row) or "").casefold() == text
        if raw in ("true", "false"):
            return lambda row: value_of(row) is (raw == "true")
        if raw.isdigit():
            return lambda row: value_of(row) == int(raw)
        moment = datetime.fromisoformat(raw)
        if clause["op"] == "ge":
            return lambda row: datetime.fromisoformat(str(value_of(row))) >= moment
        return lambda row: datetime.fromisoformat(str(value_of(row))) <= moment

    def _project(self, row: Json, select: str | None, kind: str) -> Json:
        if select is None:
            if kind != "users":
                return row
            fields = [f for f in _DEFAULT_USER_PROPERTIES if f in row]
        else:
            fields = [f for f in select.split(",") if f]
            if kind == "directoryObjects":  # mixed types: each shows what it has
                fields = [f for f in fields if f in row]
            for name in fields:
                if name not in row:
                    raise GraphError(
                        400,
                        "Request_BadRequest",
                        f"Could not find a property named '{name}' on type 'microsoft.graph.user'.",
                    )
        typed = {"@odata.type": row["@odata.type"]} if "@odata.type" in row else {}
        return {**typed, **{name: row[name] for name in fields}}

    def _entity(self, kind: str, row: Json, query: dict[str, str]) -> Json:
        select = query.get("$select")
        context = f"{self.graph_url}/$metadata#{kind}" + (f"({select})" if select else "")
        return {"@odata.context": context + "/$entity", **self._project(row, select, kind)}

    def _collection(self, kind: str, rows: list[Json], query: dict[str, str], path: str) -> Json:
        select = query.get("$select") or None
        projected = [self._project(row, select, kind) for row in rows]
        context = f"{self.graph_url}/$metadata#{kind}" + (f"({select})" if select else "")
        size = max(1, min(int(query.get("$top") or 100), self.page_size))
        kept = {k: v for k, v in query.items() if k in ("$select", "$top", "$filter", "$count")}
        page = self._page(projected, size, context, path, kept)
        if query.get("$count") == "true":
            page = {"@odata.context": context, "@odata.count": len(projected), **page}
        return page

    def _page(
        self, rows: list[Json], size: int, context: str, path: str, kept: dict[str, str]
    ) -> Json:
        result: Json = {"@odata.context": context}
        if rows[size:]:
            token = _b64url(secrets.token_bytes(24))
            self._pages[token] = (rows[size:], size, context, path, kept)
            result["@odata.nextLink"] = f"{self.graph_url}{path}?" + urlencode(
                {**kept, "$skiptoken": token}, safe="$,'()", quote_via=quote
            )
        result["value"] = rows[:size]
        return result

    def _next_page(self, token: str) -> Json:
        stored = self._pages.pop(token, None)
        if stored is None:
            raise GraphError(400, "Request_BadRequest", "The skip token is invalid or has expired.")
        rows, size, context, path, kept = stored
        return self._page(rows, size, context, path, kept)
