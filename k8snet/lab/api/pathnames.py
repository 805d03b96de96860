"""Names in request paths, checked as apimachinery's ``path.ValidatePathSegmentName``.

The routing works on the path as the client sent it (``raw_path``), not on the
normalised one: a URL normaliser turns ``/api/v1/namespaces/..`` into ``/api/v1``
and would answer a question nobody asked. A name in the path may not be ``.`` or
``..`` and may not contain ``/`` or ``%`` (400 ``Name parameter invalid``), as the
generic registry's key functions refuse it.
"""

from __future__ import annotations

from urllib.parse import unquote

from ..errors import ApiError, bad_request

_NOT_NAMES = (".", "..")
_FORBIDDEN_PARTS = ("/", "%")


def segments(raw_path: str) -> list[str]:
    """The non-empty, percent-decoded segments of a raw request path (no query)."""
    path = raw_path.split("?", 1)[0]
    return [unquote(p) for p in path.split("/") if p]


def name_problems(name: str) -> list[str]:
    """apimachinery's IsValidPathSegmentName messages."""
    if name in _NOT_NAMES:
        return [f"may not be '{name}'"]
    return [f"may not contain '{part}'" for part in _FORBIDDEN_PARTS if part in name]


def check_name(name: str, what: str = "Name") -> None:
    problems = name_problems(name)
    if problems:
        raise invalid_name(name, problems, what)


def invalid_name(name: str, problems: list[str], what: str = "Name") -> ApiError:
    return bad_request(f'{what} parameter invalid: "{name}": {";".join(problems)}')
