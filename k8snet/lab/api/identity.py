"""Who a request acts as: a user name, its groups, uid and extra attributes
(apiserver's ``user.Info``), and the identities of the lab's own components.

The groups are what RBAC bindings name: ``system:masters`` (every permission, the
admin's client certificate), ``system:authenticated`` (every authenticated caller),
``system:serviceaccounts`` and ``system:serviceaccounts:<namespace>`` (service
accounts), ``system:nodes`` (kubelets).
"""

from __future__ import annotations

from dataclasses import dataclass

MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
SERVICE_ACCOUNTS = "system:serviceaccounts"
NODES = "system:nodes"
SA_PREFIX = "system:serviceaccount:"
NODE_PREFIX = "system:node:"

Extra = tuple[tuple[str, tuple[str, ...]], ...]  # sorted (key, values) pairs: hashable


@dataclass(frozen=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: Extra = ()

    def extra_dict(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.extra}


def service_account_groups(namespace: str) -> tuple[str, ...]:
    return (SERVICE_ACCOUNTS, f"{SERVICE_ACCOUNTS}:{namespace}")


def service_account_user(namespace: str, name: str, uid: str = "", extra: Extra = ()) -> UserInfo:
    """A service account as its token authenticates it (serviceaccount.UserInfo)."""
    return UserInfo(f"{SA_PREFIX}{namespace}:{name}", (*service_account_groups(namespace), AUTHENTICATED), uid, extra)


def split_service_account(username: str) -> tuple[str, str] | None:
    """(namespace, name) of ``system:serviceaccount:<namespace>:<name>``, else None."""
    if not username.startswith(SA_PREFIX):
        return None
    namespace, sep, name = username[len(SA_PREFIX):].partition(":")
    if not sep or not namespace or not name or ":" in name:
        return None
    return namespace, name


# -- the lab's own components ------------------------------------------------------------
# The API server's loopback client (bootstrap objects, readiness checks) is in
# system:masters, as kube-apiserver's own is.
APISERVER = UserInfo("system:apiserver", (MASTERS, AUTHENTICATED))
# kube-controller-manager and kube-scheduler run as their kubeadm users (their
# kubeconfigs' client certificates carry these CNs); see bootstrappolicy.
CONTROLLER_MANAGER = UserInfo("system:kube-controller-manager", (AUTHENTICATED,))
# kube-proxy and the LoadBalancer announcer run as service accounts in kube-system,
# as kubeadm's kube-proxy DaemonSet and MetalLB's speaker do.
KUBE_PROXY = service_account_user("kube-system", "kube-proxy")
LB_ANNOUNCER = service_account_user("kube-system", "lb-announcer")


def node_user(node: str) -> UserInfo:
    """A kubelet's identity: the CN and O of its client certificate on kubeadm nodes."""
    return UserInfo(f"{NODE_PREFIX}{node}", (NODES, AUTHENTICATED))
