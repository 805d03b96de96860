"""Per-namespace defaults: the ``default`` ServiceAccount (serviceaccounts-controller)
and the ``kube-root-ca.crt`` ConfigMap carrying the lab CA (root-ca-cert-publisher),
created in every active namespace and recreated when deleted.

Pods need both: ServiceAccount admission refuses pods whose account is missing, and
the projected token volume mounts ``ca.crt`` from the ConfigMap.
"""

from __future__ import annotations

from ..config import LabConfig
from ..contracts import ApiClient, Obj
from ..errors import ApiError
from ..pki import Pki
from .base import Controller, Informers
from .util import is_deleting

SERVICE_ACCOUNT = "default"
ROOT_CA = "kube-root-ca.crt"
ROOT_CA_DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
                       "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
                       "guaranteed across distributions of Kubernetes clusters.")


class ServiceAccountController(Controller):
    component = "serviceaccount-controller"

    def __init__(self, client: ApiClient, config: LabConfig, *, informers: Informers | None = None):
        super().__init__(client, config, informers=informers)
        self.namespaces = self.watch("namespaces", self._on_namespace)
        self.accounts = self.watch("serviceaccounts", self._on_account)
        self.configmaps = self.watch("configmaps", self._on_configmap)
        self._ca_pem: str | None = None

    def _on_namespace(self, etype: str, ns: Obj) -> None:
        if etype != "DELETED":
            self.queue.add(ns["metadata"]["name"])

    def _on_account(self, etype: str, sa: Obj) -> None:
        if etype == "DELETED" and sa["metadata"]["name"] == SERVICE_ACCOUNT:
            self.queue.add(sa["metadata"]["namespace"])

    def _on_configmap(self, etype: str, cm: Obj) -> None:
        if cm["metadata"]["name"] == ROOT_CA:
            self.queue.add(cm["metadata"]["namespace"])

    def resync(self) -> None:
        for ns in self.namespaces.items():
            self.queue.add(ns["metadata"]["name"])

    def ca_pem(self) -> str:
        if self._ca_pem is None:
            self._ca_pem = Pki(self.config.pki_dir).ca_cert.read_text()
        return self._ca_pem

    async def reconcile(self, name: str) -> None:
        ns = self.namespaces.get("", name)
        if ns is None or is_deleting(ns):
            return  # no new content in a terminating namespace
        if self.accounts.get(name, SERVICE_ACCOUNT) is None:
            await self._create("serviceaccounts", name, {
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": SERVICE_ACCOUNT, "namespace": name}})
        data = {"ca.crt": self.ca_pem()}
        cm = self.configmaps.get(name, ROOT_CA)
        if cm is None:
            await self._create("configmaps", name, {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": ROOT_CA, "namespace": name,
                             "annotations": {"kubernetes.io/description": ROOT_CA_DESCRIPTION}},
                "data": data})
        elif cm.get("data") != data:
            await self.client.update("configmaps", name, ROOT_CA, {**cm, "data": data})

    async def _create(self, key: str, namespace: str, body: Obj) -> None:
        try:
            await self.client.create(key, namespace, body)
        except ApiError as err:
            # 409: it exists and the cache is behind. 403: the namespace began terminating.
            if err.code not in (409, 403):
                raise
