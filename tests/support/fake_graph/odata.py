"""OData on the fake Graph: ``$filter`` parsing, ``$search`` on names (tokenised, as
Graph does it for directory objects), ``$orderby``, ``$select`` projections, entities and
collections, ``@odata.count`` (only with ``ConsistencyLevel: eventual``, as Graph), and
paging with ``@odata.nextLink`` (``$skiptoken``)."""

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
# One $search clause: "property:text", with \" and \\ escaped inside the quotes.
_SEARCH = re.compile(r'"(?P<prop>[A-Za-z]+):(?P<text>(?:[^"\\]|\\.)*)"')
# Graph's tokens: runs of letters, runs of digits, and each symbol on its own.
_PIECE = re.compile(r"[^\W\d_]+|\d+|[^\w\s]|_")
_CASE_CHANGE = re.compile(r"(?<=[a-z])(?=[A-Z])")  # only lower to upper splits a word


def search_tokens(text: str) -> set[str]:
    """Graph's tokenisation of names for ``$search``: words split at spaces, at a change
    from lower to upper case, between letters and digits and at symbols; words joined
    only by symbols also count as one (``hello-world`` gives ``helloworld``)."""
    tokens: set[str] = set()
    for word in text.split():
        pieces: list[str] = []
        for piece in _PIECE.findall(word):
            pieces += _CASE_CHANGE.split(piece) if piece.isalpha() else [piece]
        tokens.update(piece.casefold() for piece in pieces)
        if any(not piece.isalnum() for piece in pieces):
            tokens.add("".join(piece for piece in pieces if piece.isalnum()).casefold())
    return tokens


def search_matches(value: str, text: str) -> bool:
    """Every token of the search text starts a token of the value, in any order."""
    have = search_tokens(value)
    return all(any(token.startswith(wanted) for token in have) for wanted in search_tokens(text))


class OData(TenantState):
    # -- OData ---------------------------------------------------------------------------

    def _filtered(self, rows: list[Json], call: GraphCall, kind: str) -> list[Json]:
        text = call.query.get("$filter")
        if not text:
            return rows
        test = self._parse_filter(text, call.advanced or kind == "SignIn", kind)
        return [row for row in rows if test(row)]

    def _searched(self, rows: list[Json], call: GraphCall) -> list[Json]:
        """``$search="displayName:..."`` (one clause): tokenised on displayName and
        description, a plain ``startswith`` on other properties."""
        text = call.query.get("$search")
        if text is None:
            return rows
        if not call.eventual:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                "Request with $search query parameter only works through MSGraph with a "
                "special request header: 'ConsistencyLevel: eventual'",
            )
        clause = _SEARCH.fullmatch(text)
        if clause is None:
            raise GraphError(400, "BadRequest", f"Syntax error: invalid $search {text!r}.")
        prop = clause["prop"]
        wanted = re.sub(r"\\(.)", r"\1", clause["text"])
        if prop in ("displayName", "description"):
            return [row for row in rows if search_matches(str(row.get(prop) or ""), wanted)]
        folded = wanted.casefold()
        return [row for row in rows if str(row.get(prop) or "").casefold().startswith(folded)]

    @staticmethod
    def _ordered(rows: list[Json], call: GraphCall) -> list[Json]:
        """``$orderby=displayName`` (the one sort this fake knows, as Graph does it for
        groups: by default alone, as an advanced query with ``$filter`` or ``$search``)."""
        order = call.query.get("$orderby")
        if order is None:
            return rows
        prop, _, direction = order.partition(" ")
        mixed = "$filter" in call.query or "$search" in call.query
        if (
            prop != "displayName"
            or direction not in ("", "asc", "desc")
            or (mixed and not call.advanced)
        ):
            raise GraphError(
                400, "Request_UnsupportedQuery", "Sorting not supported for current query."
            )
        return sorted(rows, key=lambda row: str(row.get(prop) or "").casefold(),
                      reverse=direction == "desc")  # fmt: skip

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

    def _collection(
        self,
        kind: str,
        rows: list[Json],
        query: dict[str, str],
        path: str,
        *,
        eventual: bool = False,
    ) -> Json:
        """A page of ``rows``; ``@odata.count`` when ``$count=true`` and ``eventual`` (Graph
        silently ignores ``$count`` without ``ConsistencyLevel: eventual``)."""
        select = query.get("$select") or None
        projected = [self._project(row, select, kind) for row in rows]
        context = f"{self.graph_url}/$metadata#{kind}" + (f"({select})" if select else "")
        size = max(1, min(int(query.get("$top") or 100), self.page_size))
        names = ("$select", "$top", "$filter", "$count", "$search", "$orderby", "$expand")
        kept = {k: v for k, v in query.items() if k in names}
        page = self._page(projected, size, context, path, kept)
        if query.get("$count") == "true" and eventual:
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
