"""Timestamps as the API writes them: metav1.Time (RFC 3339, whole seconds, UTC, ``Z``)
and metav1.MicroTime (the same with microseconds, what Leases carry)."""

from __future__ import annotations

from datetime import datetime, timezone


def now() -> datetime:
    return datetime.now(timezone.utc)


def rfc3339(t: datetime | None = None) -> str:
    """A metav1.Time on the wire: second precision, like Go's time.RFC3339 in UTC."""
    return (t or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(t: datetime | None = None) -> str:
    """A metav1.MicroTime on the wire (RFC 3339 with microseconds)."""
    return (t or now()).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_unix(seconds: float) -> datetime:
    """A Unix time as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, timezone.utc)


def parse_time(value: str | None) -> datetime | None:
    """A metav1.Time or MicroTime string back to an aware datetime; None when unset."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
