"""RBAC's privilege-escalation prevention (kube-apiserver's pkg/registry/rbac/*/policybased
storages and pkg/registry/rbac/validation ``ConfirmNoEscalation``).

Nobody can grant, through a Role, ClusterRole or binding, a permission they do not
hold themselves:

- a Role or ClusterRole may be written only by someone whose own rules (cluster-wide,
  plus the namespace's for a Role) cover every rule in it, or who has the
  ``escalate`` verb on ``roles``/``clusterroles``; an ``aggregationRule`` can gather
  anything, so it takes full authority (``*`` on everything);
- a RoleBinding or ClusterRoleBinding may be written only by someone who holds every
  rule of the role it references, or who has the ``bind`` verb on that role.

``system:masters`` is exempt (``EscalationAllowed``), and so is an update that
touches nothing but the fields the garbage collector writes.
"""

from __future__ import annotations

from typing import Callable

from .. import errors
from ..contracts import Obj
from . import rbaccovers
from .authorizer import CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, ROLE_BINDINGS, ROLES, Authorizer
from .clone import clone
from .core import forbidden
from .identity import MASTERS, UserInfo
from .rbac import GROUP, Attributes
from .rbaccovers import go_quote, go_quoted
from .resources import Resource

Getter = Callable[[str, str, str], "Obj | None"]  # (key, namespace, name) -> stored object

# what an aggregationRule needs (the clusterrole storage's fullAuthority)
FULL_AUTHORITY: list[Obj] = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
                             {"verbs": ["*"], "nonResourceURLs": ["*"]}]
# metadata the garbage collector and deletion change (IsOnlyMutatingGCFields)
_GC_FIELDS = ("ownerReferences", "finalizers", "deletionTimestamp", "deletionGracePeriodSeconds",
              "resourceVersion", "managedFields")


def only_gc_fields_changed(new: Obj, old: Obj) -> bool:
    new, old = clone(new), clone(old)
    for obj in (new, old):
        meta = obj.get("metadata") or {}
        for field in _GC_FIELDS:
            meta.pop(field, None)
    return new == old


class EscalationCheck:
    """The write guard for the four RBAC kinds (see core.WriteGuard)."""

    def __init__(self, authorizer: Authorizer, get: Getter):
        self.authorizer = authorizer
        self.get = get

    def __call__(self, user: UserInfo, operation: str, res: Resource, namespace: str, name: str,
                 new: Obj | None, old: Obj | None, subresource: str | None) -> None:
        if res.key not in (ROLES, CLUSTER_ROLES, ROLE_BINDINGS, CLUSTER_ROLE_BINDINGS) or new is None:
            return  # deletes grant nothing
        if MASTERS in user.groups:
            return
        if old is not None and only_gc_fields_changed(new, old):
            return
        if res.key in (ROLES, CLUSTER_ROLES):
            # RoleEscalationAuthorized asks about the request's name: none on a create
            self._check_role(user, res, namespace, "" if operation == "CREATE" else name, name, new, old)
        else:
            self._check_binding(user, res, namespace, name, new)

    # -- roles ---------------------------------------------------------------------------
    def _check_role(self, user: UserInfo, res: Resource, namespace: str, url_name: str, object_name: str,
                    new: Obj, old: Obj | None) -> None:
        if self._allowed(user, Attributes("escalate", True, namespace, GROUP, res.plural, "", url_name)):
            return
        self._confirm(user, res, namespace, object_name, _rules(new))
        if res.key == CLUSTER_ROLES and (_aggregates(new) or (old is not None and _aggregates(old))):
            if rbaccovers.uncovered(self.authorizer.rules_for(user, ""), FULL_AUTHORITY):
                raise forbidden(res, object_name, "must have cluster-admin privileges to use the aggregationRule")

    # -- bindings ------------------------------------------------------------------------
    def _check_binding(self, user: UserInfo, res: Resource, namespace: str, object_name: str, new: Obj) -> None:
        ref = new.get("roleRef") or {}
        kind, role_name = ref.get("kind"), str(ref.get("name") or "")
        role_key = {"ClusterRole": CLUSTER_ROLES, "Role": ROLES}.get(str(kind))
        if role_key is None:
            return  # validation has refused it already
        plural = role_key.rpartition("/")[2]
        if self._allowed(user, Attributes("bind", True, namespace, str(ref.get("apiGroup") or ""), plural, "",
                                          role_name)):
            return
        role = self.get(role_key, namespace if role_key == ROLES else "", role_name)
        if role is None:  # GetRoleReferenceRules' error, as the role getter reports it
            raise errors.not_found(GROUP, plural, role_name)
        self._confirm(user, res, namespace, object_name, _rules(role))

    # -- shared --------------------------------------------------------------------------
    def _allowed(self, user: UserInfo, attrs: Attributes) -> bool:
        return self.authorizer.authorize(user, attrs).allowed

    def _confirm(self, user: UserInfo, res: Resource, namespace: str, name: str, rules: list[Obj]) -> None:
        """ConfirmNoEscalation: the user's rules where the object lives must cover ``rules``."""
        missing = rbaccovers.uncovered(self.authorizer.rules_for(user, namespace), rules)
        if missing:
            raise forbidden(res, name, f"user {go_quote(user.name)} (groups={go_quoted(list(user.groups))}) "
                                       "is attempting to grant RBAC permissions not currently held:\n"
                                       + rbaccovers.missing_description(missing))


def _rules(role: Obj) -> list[Obj]:
    return [r for r in role.get("rules") or [] if isinstance(r, dict)]


def _aggregates(role: Obj) -> bool:
    rule = role.get("aggregationRule")
    return isinstance(rule, dict) and bool(rule.get("clusterRoleSelectors"))
