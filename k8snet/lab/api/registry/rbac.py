"""Roles, ClusterRoles and their bindings (pkg/registry/rbac/*/strategy.go): names
are any path segment (``system:node``), rules and subjects validated, a binding's
roleRef immutable."""

from __future__ import annotations

from typing import Callable

from ...contracts import Obj
from .. import rbacvalidation, tables
from ..apiresource import Resource
from ..fielderrors import FieldErrors
from ..pathnames import name_problems
from .strategy import Strategy

GROUP = "rbac.authorization.k8s.io"


class _RbacStrategy(Strategy):
    name_check = staticmethod(name_problems)
    validator: Callable[[FieldErrors, Obj], None]

    def validate(self, errs: FieldErrors, obj: Obj) -> None:
        type(self).validator(errs, obj)


class RoleStrategy(_RbacStrategy):
    columns = tables.ROLE_COLUMNS
    printer = staticmethod(tables.print_role)
    validator = staticmethod(rbacvalidation.validate_role)


class ClusterRoleStrategy(RoleStrategy):
    validator = staticmethod(rbacvalidation.validate_cluster_role)


class RoleBindingStrategy(_RbacStrategy):
    columns = tables.ROLE_BINDING_COLUMNS
    printer = staticmethod(tables.print_role_binding)
    validator = staticmethod(rbacvalidation.validate_role_binding)

    def validate_update(self, errs: FieldErrors, new: Obj, old: Obj) -> None:
        rbacvalidation.validate_binding_update(errs, new, old)


class ClusterRoleBindingStrategy(RoleBindingStrategy):
    validator = staticmethod(rbacvalidation.validate_cluster_role_binding)


ROLES = RoleStrategy(Resource(GROUP, "v1", "roles", "role", "Role", True))
ROLE_BINDINGS = RoleBindingStrategy(Resource(GROUP, "v1", "rolebindings", "rolebinding", "RoleBinding", True))
CLUSTER_ROLES = ClusterRoleStrategy(Resource(GROUP, "v1", "clusterroles", "clusterrole", "ClusterRole", False))
CLUSTER_ROLE_BINDINGS = ClusterRoleBindingStrategy(
    Resource(GROUP, "v1", "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", False))
