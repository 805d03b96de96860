"""Roles, ClusterRoles and their bindings (pkg/registry/rbac/*/strategy.go): names
are any path segment (``system:node``), rules and subjects validated, a binding's
roleRef immutable."""

from __future__ import annotations

from ...contracts import Obj
from .. import rbacvalidation, tables
from ..apiresource import Resource
from ..fielderrors import FieldErrors
from ..pathnames import name_problems as path_segment_problems
from .strategy import Printing, Strategy

GROUP = "rbac.authorization.k8s.io"


class _RbacStrategy(Strategy):
    def name_problems(self, name: str) -> list[str]:
        return path_segment_problems(name)


class RoleStrategy(_RbacStrategy):
    table = Printing(tables.ROLE_COLUMNS, tables.print_role)

    def validate(self, errs: FieldErrors, obj: Obj) -> None:
        rbacvalidation.validate_role(errs, obj)


class ClusterRoleStrategy(RoleStrategy):
    def validate(self, errs: FieldErrors, obj: Obj) -> None:
        rbacvalidation.validate_cluster_role(errs, obj)


class RoleBindingStrategy(_RbacStrategy):
    table = Printing(tables.ROLE_BINDING_COLUMNS, tables.print_role_binding)

    def validate(self, errs: FieldErrors, obj: Obj) -> None:
        rbacvalidation.validate_role_binding(errs, obj)

    def validate_update(self, errs: FieldErrors, new: Obj, old: Obj) -> None:
        rbacvalidation.validate_binding_update(errs, new, old)


class ClusterRoleBindingStrategy(RoleBindingStrategy):
    def validate(self, errs: FieldErrors, obj: Obj) -> None:
        rbacvalidation.validate_cluster_role_binding(errs, obj)


ROLES = RoleStrategy(Resource(GROUP, "v1", "roles", "role", "Role", True))
ROLE_BINDINGS = RoleBindingStrategy(Resource(GROUP, "v1", "rolebindings", "rolebinding", "RoleBinding", True))
CLUSTER_ROLES = ClusterRoleStrategy(Resource(GROUP, "v1", "clusterroles", "clusterrole", "ClusterRole", False))
CLUSTER_ROLE_BINDINGS = ClusterRoleBindingStrategy(
    Resource(GROUP, "v1", "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", False))
