"""Events, in both APIs (pkg/registry/core/event and events.k8s.io, the same stored
type seen two ways): a core event's involvedObject is required and in its namespace."""

from __future__ import annotations

from ...contracts import Obj
from .. import tables
from ..apiresource import Resource
from ..fielderrors import FieldErrors
from .strategy import Printing, Strategy

RESOURCE = Resource("", "v1", "events", "event", "Event", True, ("ev",))
EVENTS_V1_RESOURCE = Resource("events.k8s.io", "v1", "events", "event", "Event", True, ("ev",))


def _validate_event(errs: FieldErrors, ev: Obj) -> None:
    involved = ev.get("involvedObject")
    if not isinstance(involved, dict):
        errs.required("involvedObject")
        return
    ns = (ev.get("metadata") or {}).get("namespace")
    if involved.get("namespace") and ns and involved["namespace"] != ns:
        errs.invalid("involvedObject.namespace", involved["namespace"], "does not match event.namespace")


class EventStrategy(Strategy):
    table = Printing(tables.EVENT_COLUMNS, tables.print_event)


class CoreEventStrategy(EventStrategy):
    def validate(self, errs: FieldErrors, obj: Obj) -> None:
        _validate_event(errs, obj)


STRATEGY = CoreEventStrategy(RESOURCE)
EVENTS_V1_STRATEGY = EventStrategy(EVENTS_V1_RESOURCE)
