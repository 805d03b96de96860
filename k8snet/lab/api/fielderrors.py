"""Field errors as apimachinery's ``field.ErrorList`` renders them.

Validation collects :class:`FieldErrors` and turns them into one 422 ``Invalid``
Status (``errors.invalid``), each cause being ``(reason, field, message)`` where the
message is Go's ``field.Error.ErrorBody()``: ``Required value``,
``Invalid value: "A": <detail>``, ``Unsupported value: "x": supported values: …``.
"""

from __future__ import annotations

import json
from typing import Any

from k8snet.lab.errors import invalid


def render(value: Any) -> str:
    """A bad value as the error text shows it (strings quoted, lists and maps as JSON)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"), sort_keys=isinstance(value, dict))


class FieldErrors(list[tuple[str, str, str]]):
    """An ordered list of (reason, field, message) causes."""

    def required(self, path: str, detail: str = "") -> None:
        self.append(("FieldValueRequired", path, "Required value" + (f": {detail}" if detail else "")))

    def invalid(self, path: str, value: Any, detail: str) -> None:
        self.append(("FieldValueInvalid", path, f"Invalid value: {render(value)}: {detail}"))

    def not_supported(self, path: str, value: Any, supported: list[str] | tuple[str, ...]) -> None:
        choices = ", ".join(json.dumps(s) for s in sorted(supported))
        self.append(("FieldValueNotSupported", path, f"Unsupported value: {render(value)}: supported values: {choices}"))

    def duplicate(self, path: str, value: Any) -> None:
        self.append(("FieldValueDuplicate", path, f"Duplicate value: {render(value)}"))

    def forbidden(self, path: str, detail: str) -> None:
        self.append(("FieldValueForbidden", path, f"Forbidden: {detail}"))

    def not_found(self, path: str, value: Any) -> None:
        self.append(("FieldValueNotFound", path, f"Not found: {render(value)}"))

    def too_long(self, path: str, limit: int) -> None:
        self.append(("FieldValueTooLong", path, f"Too long: may not be more than {limit} bytes"))

    def immutable(self, path: str, value: Any) -> None:
        self.invalid(path, value, "field is immutable")

    def each_invalid(self, path: str, value: Any, messages: list[str]) -> None:
        """One Invalid cause per message of a string check (``is_dns1123_label`` …)."""
        for m in messages:
            self.invalid(path, value, m)

    def raise_if_any(self, group: str, kind: str, name: str) -> None:
        if self:
            raise invalid(group, kind, name, list(self))
