"""Kubernetes ``Status`` errors, as the real API server reports them.

Raise :class:`ApiError` anywhere below the HTTP layer; the server turns it into a
``Status`` object with the same code, reason and message kubectl expects
(apimachinery/pkg/api/errors). It sits at the bottom of the lab's layers (no imports of
the lab), like apimachinery below every client and server: the store, informers,
controllers, the kubelet and the helper's ``Cluster`` raise and catch the same type.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        # metav1.Status's field order (details before code): clients compare the body as text
        if self.details is not None:
            # StatusDetails.group is omitempty: the core group's is left out
            body["details"] = {k: v for k, v in self.details.items() if not (k == "group" and v == "")}
        body["code"] = self.code
        return body


class PortForwardError(Exception):
    """``pods/portforward``: nothing in the pod accepted the connection; the message is
    the runtime's (the kubelet raises it, the API server sends it on the error stream)."""


def _qualified(group: str, plural: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(group: str, plural: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{_qualified(group, plural)} "{name}" not found',
                    {"name": name, "group": group, "kind": plural})


def already_exists(group: str, plural: str, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{_qualified(group, plural)} "{name}" already exists',
                    {"name": name, "group": group, "kind": plural})


def conflict(group: str, plural: str, name: str, why: str) -> ApiError:
    return ApiError(409, "Conflict",
                    f'Operation cannot be fulfilled on {_qualified(group, plural)} "{name}": {why}',
                    {"name": name, "group": group, "kind": plural})


def invalid(group: str, kind: str, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """422 Invalid. ``causes`` are (reason, field, message) triples, e.g.
    ("FieldValueRequired", "spec.containers", "Required value")."""
    text = ", ".join(f"{f}: {m}" for _, f, m in causes)
    gk = f"{kind}.{group}" if group else kind
    return ApiError(422, "Invalid", f'{gk} "{name}" is invalid: {text}', {
        "name": name, "group": group, "kind": kind,
        "causes": [{"reason": r, "message": m, "field": f} for r, f, m in causes],
    })


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def too_large_resource_version(requested: int, current: int) -> ApiError:
    """504: a version the server has not reached (storage.NewTooLargeResourceVersionError);
    clients retry after a second or fall back to a list from the latest version."""
    return ApiError(504, "Timeout", f"Timeout: Too large resource version: {requested}, current: {current}", {
        "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
        "retryAfterSeconds": 1,
    })


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def method_not_allowed(message: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types include: "
                    f"application/json, application/yaml, application/vnd.kubernetes.protobuf; got {content_type!r}")


def forbidden(group: str, plural: str, name: str, message: str) -> ApiError:
    """apierrors.NewForbidden: ``<resource>[.<group>] ["<name>"] is forbidden: <message>``,
    or ``forbidden: <message>`` when no resource is named (a non-resource path)."""
    if not plural:
        text = f"forbidden: {message}"
    elif name:
        text = f'{_qualified(group, plural)} "{name}" is forbidden: {message}'
    else:
        text = f"{_qualified(group, plural)} is forbidden: {message}"
    return ApiError(403, "Forbidden", text, {"name": name, "group": group, "kind": plural} if plural else {})
