"""The same listing `safegpt sync` does, written with Microsoft's Python SDK (msgraph-sdk with
azure-identity): every user with the same $select and $top=999, following @odata.nextLink.
graph-sim runs with --public-*-url set to the real Microsoft hosts; a transport rewrites them
to graph-sim on 127.0.0.1, as in tests/sdk-conformance. Prints the number of users listed.

usage: python sdk_list_users.py SIM_URL TENANT_ID CLIENT_ID CLIENT_SECRET
"""

import asyncio
import sys

import httpx
import requests
from azure.core.pipeline.transport import RequestsTransport
from azure.identity import ClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph_core import GraphClientFactory

LOGIN = "https://login.microsoftonline.com"
GRAPH = "https://graph.microsoft.com"
SELECT = ["id", "userPrincipalName", "mail", "displayName", "givenName", "surname", "jobTitle", "department",
          "accountEnabled", "userType"]


def main(sim, tenant_id, client_id, secret):
    def rewrite(url):
        for real in (LOGIN, GRAPH):
            if url.startswith(real):
                return sim + url[len(real):]
        raise AssertionError(f"request to an unexpected host: {url}")

    class RewriteSession(requests.Session):
        def request(self, method, url, *args, **kwargs):
            return super().request(method, rewrite(url), *args, **kwargs)

    class RewriteTransport(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request):
            request.url = httpx.URL(rewrite(str(request.url)))
            return await super().handle_async_request(request)

    async def list_users():
        cred = ClientSecretCredential(tenant_id, client_id, secret,
                                      transport=RequestsTransport(session=RewriteSession(), session_owner=False))
        http = GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(transport=RewriteTransport()))
        client = GraphServiceClient(request_adapter=GraphRequestAdapter(
            AzureIdentityAuthenticationProvider(cred, scopes=[GRAPH + "/.default"]), client=http))
        qp = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(select=SELECT, top=999)
        page = await client.users.get(request_configuration=RequestConfiguration(query_parameters=qp))
        users = list(page.value)
        while page.odata_next_link:
            page = await client.users.with_url(page.odata_next_link).get()
            users += page.value
        return len(users)

    print(asyncio.run(list_users()))


if __name__ == "__main__":
    main(*sys.argv[1:5])
