"""ServiceAccounts (pkg/registry/core/serviceaccount): the generic rules; the
``token`` subresource (TokenRequest) is served by the API core."""

from __future__ import annotations

from .. import tables
from ..apiresource import Resource, Subresource
from .strategy import Printing, Strategy

RESOURCE = Resource("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", True, ("sa",),
                    subresources=(Subresource("token", "TokenRequest", ("create",), group="authentication.k8s.io"),))


class ServiceAccountStrategy(Strategy):
    table = Printing(tables.SERVICE_ACCOUNT_COLUMNS, tables.print_service_account)


STRATEGY = ServiceAccountStrategy(RESOURCE)
