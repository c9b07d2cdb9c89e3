"""Microsoft's own Python clients against graph-sim.

MSAL, azure-identity and msgraph-sdk talk to the real Microsoft hosts; a transport that
rewrites https://login.microsoftonline.com and https://graph.microsoft.com to graph-sim on
127.0.0.1 carries the traffic (setup B of shared/reference/graph-wire.md §5.4). graph-sim is
started with --public-*-url so that its links and discovery documents name the real hosts,
exactly what the SDKs follow verbatim. Nothing leaves the machine.

Usage: python conformance.py path/to/graph-sim
"""

import asyncio
import json
import os
import subprocess
import sys
import tempfile

import httpx
import msal
import requests
from azure.core.pipeline.transport import RequestsTransport
from azure.identity import ClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph_core import GraphClientFactory

LOGIN = "https://login.microsoftonline.com"
GRAPH = "https://graph.microsoft.com"
SCOPES = ["https://graph.microsoft.com/.default"]
NO_ROLES_CLIENT = "0c0c0c0c-0000-4000-8000-000000000001"
NO_ROLES_SECRET = "no-consent-secret"

failures = []


def check(condition, what):
    print(("ok    " if condition else "FAIL  ") + what, flush=True)
    if not condition:
        failures.append(what)


def start_sim(binary, workdir):
    tenant_path = os.path.join(workdir, "tenant.json")
    subprocess.run(
        [binary, "--generate", "users=230,groups=8,nesting=3,guests=10,disabled=5,seed=9", "--write-tenant", tenant_path],
        check=True,
    )
    with open(tenant_path) as f:
        tenant = json.load(f)
    # An app registration without admin consent: tokens, but 403 from Graph.
    tenant["apps"].append({"clientId": NO_ROLES_CLIENT, "roles": [],
                           "secrets": [{"value": NO_ROLES_SECRET, "expires": "2030-01-01T00:00:00Z"}]})
    with open(tenant_path, "w") as f:
        json.dump(tenant, f)
    proc = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0", "--tenant-file", tenant_path,
         "--public-login-url", LOGIN, "--public-graph-url", GRAPH],
        stdout=subprocess.PIPE, text=True,
    )
    first = proc.stdout.readline().strip()
    assert first.startswith("listening on http://127.0.0.1:"), first
    return proc, first.split(" ", 2)[2], tenant


def transitive_users(tenant, group_id):
    groups = {g["id"]: g["members"] for g in tenant["groups"]}
    users = {u["id"] for u in tenant["users"]}
    seen, found, stack = {group_id}, set(), [group_id]
    while stack:
        for m in groups.get(stack.pop(), []):
            if m in users:
                found.add(m)
            elif m in groups and m not in seen:
                seen.add(m)
                stack.append(m)
    return found


def main(binary):
    workdir = tempfile.mkdtemp(prefix="graph-sim-sdk-")
    proc, sim, tenant = start_sim(binary, workdir)
    try:
        run(sim, tenant)
    finally:
        proc.terminate()
        proc.wait()
    if failures:
        print(f"{len(failures)} check(s) failed", flush=True)
        sys.exit(1)
    print("Microsoft's SDKs work against graph-sim", flush=True)


def run(sim, tenant):
    def rewrite(url):
        for real in (LOGIN, GRAPH):
            if url.startswith(real):
                return sim + url[len(real):]
        raise AssertionError(f"request to an unexpected host: {url}")

    class RewriteSession(requests.Session):  # MSAL and azure-identity use requests
        def request(self, method, url, *args, **kwargs):
            return super().request(method, rewrite(url), *args, **kwargs)

    class RewriteTransport(httpx.AsyncHTTPTransport):  # msgraph-sdk uses httpx
        async def handle_async_request(self, request):
            request.url = httpx.URL(rewrite(str(request.url)))
            return await super().handle_async_request(request)

    tenant_id = tenant["tenantId"]
    app = tenant["apps"][0]
    client_id, secret = app["clientId"], app["secrets"][0]["value"]

    # 1. MSAL: token, cache, and AADSTS errors as MSAL reports them.
    msal_app = msal.ConfidentialClientApplication(
        client_id, client_credential=secret, authority=f"{LOGIN}/{tenant_id}", http_client=RewriteSession())
    first = msal_app.acquire_token_for_client(scopes=SCOPES)
    second = msal_app.acquire_token_for_client(scopes=SCOPES)
    check("access_token" in first and first.get("token_type") == "Bearer", "msal: client-credentials token")
    check(second.get("token_source") == "cache", "msal: second call served from its cache (expires_in honoured)")
    wrong = msal.ConfidentialClientApplication(
        client_id, client_credential="ff5756c2-03fa-45d3-wrong", authority=f"{LOGIN}/{tenant_id}",
        http_client=RewriteSession())
    bad = wrong.acquire_token_for_client(scopes=SCOPES)
    check(bad.get("error") == "invalid_client" and 7000215 in bad.get("error_codes", []),
          "msal: wrong secret is invalid_client AADSTS7000215")

    def graph_client(cid, csecret):
        cred = ClientSecretCredential(tenant_id, cid, csecret,
                                      transport=RequestsTransport(session=RewriteSession(), session_owner=False))
        http = GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(transport=RewriteTransport()))
        return GraphServiceClient(request_adapter=GraphRequestAdapter(
            AzureIdentityAuthenticationProvider(cred, scopes=SCOPES), client=http))

    async def graph_checks():
        client = graph_client(client_id, secret)
        # 2. Users with $select/$top over several pages, following @odata.nextLink verbatim.
        qp = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            select=["id", "displayName", "accountEnabled", "userType"], top=50)
        page = await client.users.get(request_configuration=RequestConfiguration(query_parameters=qp))
        users, pages = list(page.value), 1
        while page.odata_next_link:
            check(page.odata_next_link.startswith(GRAPH + "/v1.0/users?"), "sdk: nextLink is absolute")
            page = await client.users.with_url(page.odata_next_link).get()
            users += page.value
            pages += 1
        check(len(users) == len(tenant["users"]) and pages == 5, f"sdk: {len(users)} users over {pages} pages of 50")
        disabled = sum(1 for u in users if u.account_enabled is False)
        check(disabled == sum(1 for u in tenant["users"] if not u["accountEnabled"]), "sdk: accountEnabled selected")
        check(all(u.user_principal_name is None for u in users), "sdk: only selected properties returned")

        # 3. Transitive members of a nested group: users among other directory objects.
        top = next(g for g in tenant["groups"] if any(m in {x["id"] for x in tenant["groups"]} for m in g["members"]))
        members = await client.groups.by_group_id(top["id"]).transitive_members.get()
        got = list(members.value)
        while members.odata_next_link:
            members = await client.groups.by_group_id(top["id"]).transitive_members.with_url(
                members.odata_next_link).get()
            got += members.value
        user_ids = {m.id for m in got if m.odata_type == "#microsoft.graph.user"}
        check(user_ids == transitive_users(tenant, top["id"]), f"sdk: {len(user_ids)} transitive user members")
        check(any(m.odata_type != "#microsoft.graph.user" for m in got), "sdk: non-user members typed as such")

        # 4. A delta round to its deltaLink, then a round with no changes. graph-sim is as
        # strict as Graph: a round may start with an empty page, and a user may come twice.
        async def delta_round(first):
            d, ids, pages = first, set(), 1
            ids.update(u.id for u in d.value)
            while d.odata_next_link:
                d = await client.users.delta.with_url(d.odata_next_link).get()
                ids.update(u.id for u in d.value)
                pages += 1
            return d, ids, pages
        d, seen, pages = await delta_round(await client.users.delta.get())
        check(seen == {u["id"] for u in tenant["users"]} and d.odata_delta_link is not None,
              f"sdk: delta round of {len(seen)} users over {pages} pages")
        d2, changed, _ = await delta_round(await client.users.delta.with_url(d.odata_delta_link).get())
        check(not changed and d2.odata_delta_link, "sdk: next delta round is empty with a new deltaLink")

        # 5. Missing admin consent surfaces as the SDK's ODataError.
        denied = graph_client(NO_ROLES_CLIENT, NO_ROLES_SECRET)
        try:
            await denied.users.get()
            check(False, "sdk: 403 raises ODataError")
        except ODataError as e:
            check(e.response_status_code == 403 and e.error.code == "Authorization_RequestDenied",
                  "sdk: 403 Authorization_RequestDenied raises ODataError")

        # 6. 404 on an unknown user, as the SDK expects.
        try:
            await client.users.by_user_id("00000000-0000-4000-8000-00000000dead").get()
            check(False, "sdk: 404 raises ODataError")
        except ODataError as e:
            check(e.response_status_code == 404 and e.error.code == "Request_ResourceNotFound",
                  "sdk: 404 Request_ResourceNotFound raises ODataError")

    asyncio.run(graph_checks())


if __name__ == "__main__":
    main(sys.argv[1])
