"""A graph-sim tenant, through its control API.

usage: tenant.py roots SIM_URL       prints the ids of the groups no other group contains
       tenant.py change SIM_URL [N]  makes N changes, a quarter each: new users (added to a
                                     group), renames, deletions and removals from groups;
                                     deterministic, prints how many it made"""
import json
import sys
import urllib.request

command, sim = sys.argv[1], sys.argv[2].rstrip("/")
n = int(sys.argv[3]) if len(sys.argv) > 3 else 100


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(sim + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"{}")


tenant = call("GET", "/_sim/tenant")
if command == "roots":
    nested = {m for g in tenant["groups"] for m in g["members"]}
    print("\n".join(g["id"] for g in tenant["groups"] if g["id"] not in nested))
    sys.exit(0)
users = sorted(u["id"] for u in tenant["users"])
user_ids = set(users)
groups = sorted(tenant["groups"], key=lambda g: g["id"])
quarter = n // 4
step = max(1, len(users) // (3 * quarter + 1))
renamed = users[0::step][:quarter]
deleted = users[step // 2 :: step][:quarter]
leavers = [(g["id"], m) for g in groups for m in sorted(g["members"]) if m in user_ids and m not in deleted]
leavers = leavers[0 :: max(1, len(leavers) // quarter)][:quarter]

for i in range(n - 3 * quarter):
    uid = "00000000-0000-4000-8000-%012d" % (900000 + i)
    call("POST", "/_sim/users", {"id": uid, "userPrincipalName": f"bench.new{i}@{tenant['domain']}",
                                 "mail": f"bench.new{i}@example.org", "displayName": f"Bench New {i}"})
    call("PUT", f"/_sim/groups/{groups[i % len(groups)]['id']}/members/{uid}")
for uid in renamed:
    call("PATCH", f"/_sim/users/{uid}", {"displayName": "Renamed by the benchmark", "jobTitle": "Renamed"})
for uid in deleted:
    call("DELETE", f"/_sim/users/{uid}")
for gid, uid in leavers:
    call("DELETE", f"/_sim/groups/{gid}/members/{uid}")
print(n - 3 * quarter + len(renamed) + len(deleted) + len(leavers))
