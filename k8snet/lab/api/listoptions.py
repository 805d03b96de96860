"""ListOptions as kube-apiserver 1.37 reads them: defaults, then validation.

Only the options whose meaning depends on each other live here: ``watch``,
``resourceVersion``, ``resourceVersionMatch``, ``sendInitialEvents`` and
``allowWatchBookmarks``. The rules follow apimachinery's
``SetListOptionsDefaults`` and ``ValidateListOptions`` with the WatchList
feature on (the default since 1.34):

- a watch from ``resourceVersion`` "" or "0" that names neither
  ``sendInitialEvents`` nor ``resourceVersionMatch`` is a streaming list
  (``sendInitialEvents=true``, ``resourceVersionMatch=NotOlderThan``), so it
  starts with the current objects as ADDED events, as watches always did;
- ``sendInitialEvents`` needs ``resourceVersionMatch=NotOlderThan``, and a watch
  may name ``resourceVersionMatch`` only together with ``sendInitialEvents``;
- a list may not name ``sendInitialEvents``, and names ``resourceVersionMatch``
  only with a ``resourceVersion``.

A violation is one 422 ``ListOptions.meta.k8s.io "" is invalid`` Status.
"""

from __future__ import annotations

from dataclasses import dataclass

from .fielderrors import FieldErrors

NOT_OLDER_THAN = "NotOlderThan"
EXACT = "Exact"
# The annotation on the BOOKMARK that ends a streaming list's initial events.
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


@dataclass(frozen=True)
class WatchOptions:
    """A watch request's starting point after defaulting and validation."""

    resource_version: str  # "" when not given
    send_initial_events: bool | None
    allow_bookmarks: bool

    @property
    def streams_initial_events(self) -> bool:
        """Whether the watch starts with the current objects as ADDED events."""
        return bool(self.send_initial_events)

    @property
    def ends_initial_events_with_bookmark(self) -> bool:
        """The cacher's ``isListWatchRequest``: the end of the initial events is
        marked by a BOOKMARK only when the client accepts bookmarks."""
        return bool(self.send_initial_events) and self.allow_bookmarks


def watch_options(resource_version: str | None, resource_version_match: str | None,
                  send_initial_events: bool | None, allow_bookmarks: bool) -> WatchOptions:
    """The defaulted and validated options of a watch; raises ApiError 422."""
    rv, match = resource_version or "", resource_version_match or ""
    if send_initial_events is None and not match and rv in ("", "0"):
        send_initial_events, match = True, NOT_OLDER_THAN
    errs = FieldErrors()
    if send_initial_events is not None and match != NOT_OLDER_THAN:
        errs.forbidden("resourceVersionMatch", f"sendInitialEvents requires setting resourceVersionMatch to "
                                               f"{NOT_OLDER_THAN}")
    if match:
        if send_initial_events is None:
            errs.forbidden("resourceVersionMatch",
                           "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided")
        if match != NOT_OLDER_THAN:
            errs.not_supported("resourceVersionMatch", match, [NOT_OLDER_THAN])
    errs.raise_if_any("meta.k8s.io", "ListOptions", "")
    return WatchOptions(rv, send_initial_events, allow_bookmarks)


def check_list_options(resource_version: str | None, resource_version_match: str | None,
                       send_initial_events: bool | None) -> None:
    """Validation of a (non-watch) list's options; raises ApiError 422."""
    rv, match = resource_version or "", resource_version_match or ""
    errs = FieldErrors()
    if match:
        if not rv:
            errs.forbidden("resourceVersionMatch", "resourceVersionMatch is forbidden unless resourceVersion is provided")
        if match not in (EXACT, NOT_OLDER_THAN):
            errs.not_supported("resourceVersionMatch", match, [EXACT, NOT_OLDER_THAN, ""])
        if match == EXACT and rv == "0":
            errs.forbidden("resourceVersionMatch", 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"')
    if send_initial_events is not None:
        errs.forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list")
    errs.raise_if_any("meta.k8s.io", "ListOptions", "")
