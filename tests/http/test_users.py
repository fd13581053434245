"""test_users.py: several users on one service (issue 16).

- `mnistd users add|list|revoke|rotate`: tokens, exit codes, one-line errors,
  on the server's database while it runs (a new, revoked or rotated user
  counts within AUTH_CACHE_MS, one second, without a restart).
- With no users and no --token nothing changes; once a user exists every
  route but /healthz and the dashboard's files needs a token; GET /me.
- The isolation matrix, derived from the route table (route_cases()): for
  every route, user A on user B's resource, A on its own, the admin on
  both, no token, a revoked token. Another user's resource is 404 as if it
  did not exist; nothing is created or changed when the answer is 4xx
  (the admin's view of everything is compared before and after).
- Sharing: built-in datasets, public uploads, models made by an admin
  (predicted through /predict, v2 and TF Serving).
"""
import json
import re
import subprocess
import time

import pytest

from conftest import (LINEAR_SMALL, PATH_SAMPLES, api, expect_error, require_bin, route_cases,
                      time_scale)

CACHE_S = 1.1           # auth.h AUTH_CACHE_MS, and a margin
TOKEN_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*\.[A-Za-z0-9_-]{43}$")
PIXELS = [0.0] * 784
CSV10 = "".join(f"{i % 10}," + ",".join(["0"] * 784) + "\n" for i in range(10))


def users_cli(db, *args, env=None):
    """Runs `mnistd users ARGS --db db`; returns the CompletedProcess."""
    return subprocess.run([str(require_bin()), "users", *args, "--db", str(db)],
                          capture_output=True, text=True, timeout=60 * time_scale(), env=env)


def add_user(db, name, admin=False):
    r = users_cli(db, "add", name, *(["--admin"] if admin else []))
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert TOKEN_RE.match(token) and token.startswith(name + "."), token
    return token


def bearer(token):
    return {"Authorization": f"Bearer {token}"} if token else {}


# ---------------------------------------------------------------- the CLI


def cli_db(tmp_path, start_server):
    """A database path the CLI may use: SQLite file, or (on PostgreSQL) the
    URI of a schema a server created."""
    s = start_server()
    s.stop()
    return s.db


def test_cli_add_list_revoke_rotate(tmp_path, start_server):
    db = cli_db(tmp_path, start_server)
    a = add_user(db, "alice")
    b = add_user(db, "bob", admin=True)
    assert a != b
    r = users_cli(db, "list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].split() == ["NAME", "ROLE", "CREATED", "REVOKED"]
    rows = {ln.split()[0]: ln.split() for ln in lines[1:]}
    assert rows["alice"][1] == "user" and rows["alice"][3] == "-"
    assert rows["bob"][1] == "admin"
    assert a not in r.stdout  # tokens are shown once, at add
    # the same name twice: exit 1, one line
    r = users_cli(db, "add", "alice")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip().count("\n") == 0 and "alice" in r.stderr and "exists" in r.stderr
    r = users_cli(db, "revoke", "alice")
    assert r.returncode == 0, r.stderr
    r = users_cli(db, "revoke", "alice")
    assert r.returncode == 1 and "already revoked" in r.stderr
    assert users_cli(db, "list").stdout.splitlines()[1].split()[3] != "-"
    # rotate: a new token, the user reinstated
    r = users_cli(db, "rotate", "alice")
    assert r.returncode == 0, r.stderr
    a2 = r.stdout.strip()
    assert TOKEN_RE.match(a2) and a2 != a
    assert users_cli(db, "list").stdout.splitlines()[1].split()[3] == "-"
    for args in (("revoke", "zed"), ("rotate", "zed")):
        r = users_cli(db, *args)
        assert r.returncode == 1 and r.stderr.strip() == f"mnistd users {args[0]}: no user 'zed'"


@pytest.mark.parametrize("args,words", [
    ((), "subcommand"),
    (("frobnicate",), "unknown subcommand"),
    (("add",), "NAME"),
    (("add", "Alice"), "[a-z0-9]"),
    (("add", "-x"), "unknown flag"),
    (("add", "a.b"), "[a-z0-9]"),
    (("add", "alice", "bob"), "unexpected argument"),
    (("list", "--admin"), "unknown flag"),
    (("revoke",), "NAME"),
    (("add", "alice", "--db"), "--db needs a value"),
    (("add", "token"), "reserved"),
])
def test_cli_bad_usage_exits_2(tmp_path, args, words):
    cmd = [str(require_bin()), "users", *args]
    if "--db" not in args:
        cmd += ["--db", str(tmp_path / "never.db")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60 * time_scale())
    assert r.returncode == 2, (args, r.stdout, r.stderr)
    assert r.stdout == "" and r.stderr.count("\n") == 1 and words in r.stderr, r.stderr
    assert not (tmp_path / "never.db").exists()  # nothing opened


def test_cli_unusable_database_exits_1(tmp_path):
    r = subprocess.run([str(require_bin()), "users", "list", "--db", str(tmp_path / "no" / "dir.db")],
                       capture_output=True, text=True, timeout=60 * time_scale())
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and r.stderr.startswith("mnistd users list: ")


# ---------------------------------------------------------------- tokens


def test_no_users_no_token_is_todays_behaviour(start_server, validate):
    s = start_server()
    c = s.client
    assert validate(c.get("/me"), "/me", "get", 200) == {"name": None, "admin": True}
    run = c.create_run({"model": "linear", "steps": 4, "periods": 1})
    assert run["owner"] is None
    validate(c.get("/runs"), "/runs", "get", 200)


def test_users_added_and_revoked_while_serving(start_server, validate):
    s = start_server()
    c = s.client
    validate(c.get("/runs"), "/runs", "get", 200)  # open: no users yet
    alice = add_user(s.db, "alice")
    # within a second (auth.h's AUTH_CACHE_MS) the server sees the user: a
    # token is needed now
    time.sleep(CACHE_S)
    expect_error(c.get("/runs"), "/runs", "get", 401, "unauthorized", "Bearer")
    expect_error(c.get("/me", headers=bearer(alice + "x")), "/me", "get", 401, "unauthorized")
    expect_error(c.get("/me", headers=bearer("bob." + alice.split(".")[1])), "/me", "get", 401,
                 "unauthorized")
    expect_error(c.get("/me", headers=bearer("nodot")), "/me", "get", 401, "unauthorized")
    me = validate(c.get("/me", headers=bearer(alice)), "/me", "get", 200)
    assert me == {"name": "alice", "admin": False}
    # /healthz and the dashboard stay open
    validate(c.get("/healthz"), "/healthz", "get", 200)
    validate(c.get("/"), "/", "get", 200)
    r = c.get("/runs")
    assert r.headers.get("WWW-Authenticate") == "Bearer"
    assert users_cli(s.db, "revoke", "alice").returncode == 0
    time.sleep(CACHE_S)
    expect_error(c.get("/me", headers=bearer(alice)), "/me", "get", 401, "unauthorized", "revoked")
    # revoking the last user does not open the service
    expect_error(c.get("/runs"), "/runs", "get", 401, "unauthorized")
    new = users_cli(s.db, "rotate", "alice").stdout.strip()
    time.sleep(CACHE_S)
    expect_error(c.get("/me", headers=bearer(alice)), "/me", "get", 401, "unauthorized")
    assert validate(c.get("/me", headers=bearer(new)), "/me", "get", 200)["name"] == "alice"


def test_shared_token_is_an_admin_beside_users(start_server, validate):
    s = start_server(args=["--token", "s3cret-token"])
    alice = add_user(s.db, "alice")
    c = s.client
    me = validate(c.get("/me", headers=bearer("s3cret-token")), "/me", "get", 200)
    assert me == {"name": "token", "admin": True}
    run = validate(c.post("/runs", json=dict(LINEAR_SMALL, steps=4), headers=bearer(alice)),
                   "/runs", "post", 202)
    assert run["owner"] == "alice"
    listed = validate(c.get("/runs", headers=bearer("s3cret-token")), "/runs", "get", 200)
    assert [r["id"] for r in listed["runs"]] == [run["id"]]
    mine = validate(c.post("/runs", json=dict(LINEAR_SMALL, steps=4), headers=bearer("s3cret-token")),
                    "/runs", "post", 202)
    assert mine["owner"] is None
    # the user does not see what the shared token made
    listed = validate(c.get("/runs", headers=bearer(alice)), "/runs", "get", 200)
    assert [r["id"] for r in listed["runs"]] == [run["id"]]
    expect_error(c.get(f"/runs/{mine['id']}", headers=bearer(alice)), "/runs/{id}", "get", 404,
                 "not_found", f"no run '{mine['id']}'")


def test_audit_lines_name_the_user(start_server):
    s = start_server()
    alice = add_user(s.db, "alice")
    r = s.client.post("/models", json={"name": "audited"}, headers=bearer(alice))
    assert r.status_code == 201, r.text
    deadline = time.monotonic() + 10 * time_scale()
    while time.monotonic() < deadline:
        lines = [e for e in s.events() if e.get("event") == "audit"]
        if lines:
            break
        time.sleep(0.05)
    assert lines and lines[-1]["user"] == "alice" and lines[-1]["resource"] == {"model": "audited"}


# ---------------------------------------------------------------- the world


class World:
    """A server with users alice and bob, the admin root and a revoked
    user, each of alice and bob holding one of every kind of resource."""

    def __init__(self, server):
        self.s = server
        self.c = server.client
        self.tok = {"alice": add_user(server.db, "alice"), "bob": add_user(server.db, "bob"),
                    "root": add_user(server.db, "root", admin=True),
                    "gone": add_user(server.db, "gone")}
        assert users_cli(server.db, "revoke", "gone").returncode == 0
        self.tok["none"] = None
        self.res = {}
        self.seq = 0
        for u in ("alice", "bob"):
            self.res[u] = self.make_all(u)

    def req(self, who, method, path, **kw):
        kw.setdefault("timeout", 60 * time_scale())
        headers = {**kw.pop("headers", {}), **bearer(self.tok[who])}
        return self.c.request(method, path, headers=headers, **kw)

    def ok(self, who, method, path, status, **kw):
        """The JSON answer of a request that must answer status (one, or a
        tuple of them)."""
        r = self.req(who, method, path, **kw)
        want = status if isinstance(status, tuple) else (status,)
        assert r.status_code in want, f"{who} {method} {path}: {r.status_code} {r.text[:400]}"
        return r.json() if r.content and r.headers.get("Content-Type", "").startswith("application/json") else None

    def name(self, prefix):
        self.seq += 1
        return f"{prefix}{self.seq}"

    def wait_run(self, who, rid, statuses):
        deadline = time.monotonic() + 120 * time_scale()
        while time.monotonic() < deadline:
            run = self.ok(who, "GET", f"/runs/{rid}", 200)
            if run["status"] in statuses:
                return run
            time.sleep(0.05)
        pytest.fail(f"run {rid} not {statuses}: {run}")

    def make_run(self, who, ended_only=False):
        if ended_only:  # cancelled while queued: cheap, and deletable
            run = self.ok(who, "POST", "/runs", 202,
                          json={"model": "linear", "steps": 1000000, "periods": 1})
            self.req(who, "POST", f"/runs/{run['id']}/cancel")
            return self.wait_run(who, run["id"], ("cancelled", "succeeded"))["id"]
        run = self.ok(who, "POST", "/runs", 202, json=dict(LINEAR_SMALL, steps=20, periods=1))
        return self.wait_run(who, run["id"], ("succeeded",))["id"]

    def make_sweep(self, who):
        sw = self.ok(who, "POST", "/sweeps", SWEEP_CREATED,
                     json={"base": {"model": "linear", "steps": 10, "periods": 1},
                           "space": {"learning_rate": {"values": [0.03]}},
                           "algorithm": "grid", "parallel": 1})
        deadline = time.monotonic() + 120 * time_scale()
        while time.monotonic() < deadline:
            got = self.ok(who, "GET", f"/sweeps/{sw['id']}", 200)
            if got["status"] not in ("queued", "running"):  # ended
                return got["id"]
            time.sleep(0.05)
        pytest.fail(f"sweep {sw['id']} did not end")

    def make_dataset(self, who):
        name = self.name(f"ds-{who}-")
        r = self.c.post(f"/datasets?name={name}", data=CSV10,
                        headers={**bearer(self.tok[who]), "Content-Type": "text/csv"})
        assert r.status_code == 201, r.text
        return name

    def make_model(self, who, run):
        name = self.name(f"m-{who}-")
        self.ok(who, "POST", "/models", 201, json={"name": name})
        self.ok(who, "POST", f"/models/{name}/versions", 201, json={"run": run})
        self.ok(who, "PUT", f"/models/{name}/aliases/production", (200, 201), json={"version": 1})
        return name

    def make_all(self, who):
        run = self.make_run(who)
        return {"run": run, "sweep": self.make_sweep(who), "dataset": self.make_dataset(who),
                "model": self.make_model(who, run)}

    def snapshot(self):
        """The admin's view of what a request could create, delete or
        change: every run and sweep (id, owner; runs and sweeps that train
        meanwhile change by themselves, so only the world's own ended ones
        in full), every dataset and model, the world's models in full."""
        out = {}
        fixed = {str(self.res[u][k]) for u in self.res for k in ("run", "sweep")}
        for path, key in (("/runs?limit=1000", "runs"), ("/sweeps?limit=100", "sweeps")):
            items = self.ok("root", "GET", path, 200)[key]
            out[path] = [x if x["id"] in fixed else [x["id"], x["owner"]] for x in items]
        for path in ("/datasets", "/models"):
            out[path] = self.ok("root", "GET", path, 200)
        for u in ("alice", "bob"):
            m = self.res[u]["model"]
            out[m] = self.ok("root", "GET", f"/models/{m}", 200)
        return json.dumps(out, sort_keys=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory, data_dir):
    from conftest import Server
    s = Server(tmp_path_factory.mktemp("users-world")).start()
    w = World(s)
    yield w
    s.stop()


def test_world_resources_have_their_owners(world):
    for u in ("alice", "bob"):
        res = world.res[u]
        assert world.ok(u, "GET", f"/runs/{res['run']}", 200)["owner"] == u
        assert world.ok(u, "GET", f"/sweeps/{res['sweep']}", 200)["owner"] == u
        assert world.ok(u, "GET", f"/datasets/{res['dataset']}", 200)["owner"] == u


# ---------------------------------------------------------------- the matrix

# the kind of resource a path's first parameter names, by path prefix
KINDS = [("/runs/{id}", "run"), ("/sweeps/{id}", "sweep"), ("/datasets/{name}", "dataset"),
         ("/models/{name}", "model"), ("/v2/models/{name}", "model"), ("/v1/models/{name}", "model")]
# operations whose success destroys the resource: A on its own and the
# admin act on a throwaway one
DESTROY = {("DELETE", "/runs/{id}"), ("DELETE", "/sweeps/{id}"), ("DELETE", "/datasets/{name}"),
           ("DELETE", "/models/{name}"), ("DELETE", "/models/{name}/aliases/{alias}")}
SWEEP_CREATED = 202
# operations whose body names a resource (a run, a dataset): A's request
# naming B's is answered as for one that does not exist
NAMES_A_RESOURCE = {("POST", "/runs"), ("POST", "/sweeps"), ("POST", "/predict"),
                    ("POST", "/models/{name}/versions"), ("POST", "/runs/{id}/evaluate")}
V2_INFER = {"inputs": [{"name": "pixels", "shape": [1, 784], "datatype": "FP32", "data": PIXELS}]}


def kind_of(template):
    for prefix, kind in KINDS:
        if template == prefix or template.startswith(prefix + "/") or template.startswith(prefix + ":"):
            return kind
    return None


def body_for(method, template, res, other):
    """(kwargs for the request, whether it names `other`'s resource) of one
    operation, for a caller whose resources are res; other: the resources
    to name in the body (A on B's), or None."""
    names = other or res
    table = {
        ("POST", "/runs"): {"json": {"model": "linear", "steps": 4, "periods": 1,
                                     "batch_size": 2, "dataset": names["dataset"]}},
        ("POST", "/sweeps"): {"json": {"base": {"model": "linear", "steps": 4, "periods": 1,
                                                "batch_size": 2, "dataset": names["dataset"]},
                                       "space": {"learning_rate": {"values": [0.03]}},
                                       "algorithm": "grid"}},
        ("POST", "/predict"): {"json": {"run": names["run"], "pixels": PIXELS}},
        ("POST", "/models/{name}/versions"): {"json": {"run": names["run"]}},
        ("POST", "/runs/{id}/evaluate"): {"json": {"dataset": names["dataset"]}},
        ("POST", "/models"): {"json": {"name": None}},
        ("POST", "/datasets"): {"data": CSV10, "headers": {"Content-Type": "text/csv"}},
        ("PATCH", "/datasets/{name}"): {"json": {"public": False}},
        ("PUT", "/models/{name}/aliases/{alias}"): {"json": {"version": 1}},
        ("POST", "/v2/models/{name}/infer"): {"json": V2_INFER},
        ("POST", "/v2/models/{name}/versions/{version}/infer"): {"json": V2_INFER},
        ("POST", "/v1/models/{name}:predict"): {"json": {"instances": [PIXELS]}},
        ("POST", "/v1/models/{name}/versions/{version}:predict"): {"json": {"instances": [PIXELS]}},
        ("POST", "/v1/models/{name}/labels/{alias}:predict"): {"json": {"instances": [PIXELS]}},
    }
    body_ops = {(m.upper(), p) for p, item in api().doc["paths"].items() for m, op in item.items()
                if isinstance(op, dict) and "requestBody" in op}
    if (method, template) in body_ops:
        assert (method, template) in table, f"no sample body for {method} {template}: add one"
    return dict(table.get((method, template), {})), (method, template) in NAMES_A_RESOURCE and \
        other is not None


def concrete(world, method, template, owner, who):
    """The path of template on owner's resource (a throwaway one when the
    operation destroys it), with what the request needs."""
    kind = kind_of(template)
    res = dict(world.res[owner])
    if (method, template) in DESTROY:
        if kind == "run":
            res["run"] = world.make_run(owner, ended_only=True)
        elif kind == "sweep":
            res["sweep"] = world.make_sweep(owner)
        elif kind == "dataset":
            res["dataset"] = world.make_dataset(owner)
        elif template == "/models/{name}":
            res["model"] = world.name(f"m-{owner}-")
            world.ok(owner, "POST", "/models", 201, json={"name": res["model"]})
        else:  # an alias of its own model
            world.ok(owner, "PUT", f"/models/{res['model']}/aliases/tmp", (200, 201), json={"version": 1})
    values = dict(PATH_SAMPLES)
    values["alias"] = "tmp" if (method, template) in DESTROY else "production"
    if kind in ("run", "sweep"):
        values["id"] = str(res[kind])
    elif kind:
        values["name"] = res[kind]
    path = re.sub(r"\{([^}]+)\}", lambda m: values[m.group(1)], template)
    if template == "/datasets" and method == "POST":
        path += f"?name={world.name(f'up-{who}-')}"
    return path, res


def route_id(case):
    return f"{case[0]} {case[2]}"


CASES = route_cases()
ACTORS = ("A_on_B", "A_on_own", "admin_on_A", "admin_on_B", "no_token", "revoked")


def test_matrix_size():
    """The matrix: every route of the table times the six actors."""
    n = len(CASES) * len(ACTORS)
    print(f"isolation matrix: {len(CASES)} routes x {len(ACTORS)} actors = {n} cases")
    assert len(CASES) >= 60 and n == len(CASES) * 6


@pytest.mark.parametrize("method,path,template", CASES, ids=[route_id(c) for c in CASES])
def test_isolation_matrix(world, method, path, template):
    op = api().doc["paths"][template][method.lower()]
    exempt = op.get("security") == []
    kind = kind_of(template)
    validate = api().validate
    for actor in ACTORS:
        who, owner = {"A_on_B": ("alice", "bob"), "A_on_own": ("alice", "alice"),
                      "admin_on_A": ("root", "alice"), "admin_on_B": ("root", "bob"),
                      "no_token": ("none", "alice"), "revoked": ("gone", "alice")}[actor]
        destroys = (method, template) in DESTROY and actor in ("A_on_own", "admin_on_A", "admin_on_B")
        # A on B's: B's resource in the path, or (a route without one) A's
        # request naming B's resource in its body
        p, res = concrete(world, method, template, owner if kind else who if who in world.res
                          else "alice", who)
        kw, names_other = body_for(method, template, world.res["alice"] if actor == "A_on_B" else res,
                                   world.res["bob"] if actor == "A_on_B" else None)
        if kw.get("json", {}).get("name", 1) is None:
            kw["json"] = {"name": world.name(f"new-{who}-")}
        before = world.snapshot()
        r = world.req(who, method, p, stream=template.endswith("/events"), **kw)
        if template.endswith("/events"):
            # an ended run's stream replays and ends; read it whole
            content = r.raw.read(2_000_000, decode_content=True) if r.status_code == 200 else None
            r._content = content if content is not None else r.content
        where = f"{actor}: {who} {method} {p} -> {r.status_code} {r.text[:300]}"
        if actor in ("no_token", "revoked"):
            if exempt:
                assert r.status_code != 401, where
            else:
                assert r.status_code == 401, where
                assert r.headers.get("WWW-Authenticate") == "Bearer", where
        elif exempt:
            assert r.status_code not in (401, 404) or template == "/static/{name}", where
        elif actor == "A_on_B" and (kind or names_other):
            if kind or template in ("/predict",) or (method, template) == ("POST", "/models/{name}/versions"):
                assert r.status_code == 404, where
            else:  # a body naming B's dataset: unknown dataset, 400
                assert r.status_code == 400 and "does not exist" in r.text, where
        elif actor == "A_on_B":
            # no resource of B's in the answer (a list shows A's own only)
            assert r.status_code not in (401, 404), where
            assert '"owner":"bob"' not in r.text.replace(" ", ""), where
        else:
            assert r.status_code not in (401, 404), where
            if kind == "run" and r.status_code == 200 and r.headers.get("Content-Type", "").startswith("application/json") \
                    and template == "/runs/{id}":
                assert r.json()["owner"] == owner, where
        if r.status_code != 405:
            validate(r, template, method)
        if 400 <= r.status_code < 500:
            assert world.snapshot() == before, f"a {r.status_code} changed the store: {where}"
        elif not destroys and r.status_code < 300 and method == "GET":
            assert world.snapshot() == before, where


# ---------------------------------------------------------------- sharing


def test_public_dataset_is_readable_and_trainable(world, validate):
    w = world
    ds = w.make_dataset("bob")
    expect_error(w.req("alice", "GET", f"/datasets/{ds}"), "/datasets/{name}", "get", 404, "not_found")
    r = w.req("alice", "POST", "/runs", json={"model": "linear", "steps": 4, "periods": 1, "dataset": ds})
    expect_error(r, "/runs", "post", 400, "bad_field", "does not exist")
    got = validate(w.req("bob", "PATCH", f"/datasets/{ds}", json={"public": True}),
                   "/datasets/{name}", "patch", 200)
    assert got["public"] is True and got["owner"] == "bob"
    names = [d["name"] for d in validate(w.req("alice", "GET", "/datasets"), "/datasets", "get", 200)["datasets"]]
    assert ds in names and "mnist" in names and w.res["bob"]["dataset"] not in names
    validate(w.req("alice", "GET", f"/datasets/{ds}"), "/datasets/{name}", "get", 200)
    validate(w.req("alice", "GET", f"/datasets/{ds}/examples/0"), "/datasets/{name}/examples/{index}",
             "get", 200)
    run = validate(w.req("alice", "POST", "/runs", json={"model": "linear", "steps": 4, "periods": 1,
                                                          "dataset": ds, "examples": 10,
                                                          "validation_examples": 2, "batch_size": 2}),
                   "/runs", "post", 202)
    assert run["owner"] == "alice"
    # public is for reading: changing it stays the owner's (404 as ever)
    for method in ("PATCH", "DELETE"):
        r = w.req("alice", method, f"/datasets/{ds}", **({"json": {"public": False}} if method == "PATCH" else {}))
        expect_error(r, "/datasets/{name}", method.lower(), 404, "not_found")
    validate(w.req("bob", "PATCH", f"/datasets/{ds}", json={"public": False}), "/datasets/{name}", "patch", 200)
    expect_error(w.req("alice", "GET", f"/datasets/{ds}"), "/datasets/{name}", "get", 404, "not_found")
    for bad in ({}, {"public": 1}, {"public": True, "x": 1}, []):
        expect_error(w.req("bob", "PATCH", f"/datasets/{ds}", json=bad), "/datasets/{name}", "patch",
                     400, "bad_field", "public")
    expect_error(w.req("bob", "PATCH", "/datasets/mnist", json={"public": True}), "/datasets/{name}",
                 "patch", 409, "dataset_builtin")


def test_admin_model_is_everyones_to_predict(world, validate, mnist):
    w = world
    run = w.make_run("root")
    name = w.make_model("root", run)
    imgs, labels = mnist.images("test", 3)
    pixels = [mnist.scaled(i) for i in imgs]
    models = validate(w.req("alice", "GET", "/models"), "/models", "get", 200)["models"]
    mine = {m["name"]: m for m in models}
    assert name in mine and mine[name]["shared"] is True and mine[name]["owner"] == "root"
    assert w.res["bob"]["model"] not in mine and w.res["alice"]["model"] in mine
    p = validate(w.req("alice", "POST", "/predict", json={"model": name, "pixels": pixels}),
                 "/predict", "post", 200)
    assert p["run"] == run
    raw = b"".join(imgs)
    r = w.c.post(f"/predict?model={name}&alias=production", data=raw,
                 headers={**bearer(w.tok["bob"]), "Content-Type": "application/octet-stream"})
    assert validate(r, "/predict", "post", 200)["run"] == run
    v2 = {"inputs": [{"name": "pixels", "shape": [3, 784], "datatype": "UINT8",
                      "data": [b for i in imgs for b in i]}]}
    out = validate(w.req("bob", "POST", f"/v2/models/{name}/infer", json=v2), "/v2/models/{name}/infer",
                   "post", 200)
    assert len(out["outputs"]) >= 1
    tfs = validate(w.req("alice", "POST", f"/v1/models/{name}/labels/production:predict",
                         json={"instances": pixels}), "/v1/models/{name}/labels/{alias}:predict", "post", 200)
    assert len(tfs["predictions"]) == 3
    validate(w.req("alice", "GET", f"/v2/models/{name}"), "/v2/models/{name}", "get", 200)
    # shared for reading only: a user cannot change the admin's model
    expect_error(w.req("alice", "DELETE", f"/models/{name}"), "/models/{name}", "delete", 404, "not_found")
    expect_error(w.req("alice", "PUT", f"/models/{name}/aliases/mine", json={"version": 1}),
                 "/models/{name}/aliases/{alias}", "put", 404, "not_found")
    # ... nor predict with the admin's run by its id: the run is not shared
    r = w.req("alice", "POST", "/predict", json={"run": run, "pixels": PIXELS})
    expect_error(r, "/predict", "post", 404, "not_found", f"no run '{run}'")
    # a user's model stays its own
    r = w.req("bob", "POST", f"/v2/models/{w.res['alice']['model']}/infer", json=V2_INFER)
    validate(r, "/v2/models/{name}/infer", "post", 404)
    assert r.json() == {"error": f"no model '{w.res['alice']['model']}'"}


def test_predict_without_run_serves_the_users_newest(world, validate):
    w = world
    p = validate(w.req("alice", "POST", "/predict", json={"pixels": PIXELS}), "/predict", "post", 200)
    own = validate(w.req("alice", "GET", "/runs?status=succeeded&limit=1000"), "/runs", "get", 200)
    assert p["run"] == own["runs"][0]["id"]
    assert all(r["owner"] == "alice" for r in own["runs"])


def test_admin_lists_everything_and_filters_by_owner(world, validate):
    w = world
    for path, key in (("/runs", "runs"), ("/sweeps", "sweeps"), ("/datasets", "datasets"), ("/models", "models")):
        every = validate(w.req("root", "GET", path), path, "get", 200)[key]
        owners = {x.get("owner") for x in every}
        assert {"alice", "bob"} <= owners, (path, owners)
        only = validate(w.req("root", "GET", f"{path}?owner=bob"), path, "get", 200)[key]
        assert only and all(x["owner"] == "bob" for x in only), (path, only)
        # a user's ?owner is ignored: its own list
        mine = validate(w.req("alice", "GET", f"{path}?owner=bob"), path, "get", 200)[key]
        assert all(x["owner"] in ("alice", None) or x.get("public") or x.get("shared") for x in mine)
        assert "bob" not in {x["owner"] for x in mine if not (x.get("public") or x.get("shared"))}
        expect_error(w.req("root", "GET", f"{path}?owner=Not%20A%20Name"), path, "get", 400, "bad_query", "owner")


def test_sweep_trials_belong_to_the_sweeps_owner(world, validate):
    w = world
    sw = validate(w.req("bob", "GET", f"/sweeps/{w.res['bob']['sweep']}"), "/sweeps/{id}", "get", 200)
    assert sw["owner"] == "bob" and sw["trials"]
    for t in sw["trials"]:
        assert validate(w.req("bob", "GET", f"/runs/{t['run']}"), "/runs/{id}", "get", 200)["owner"] == "bob"
        expect_error(w.req("alice", "GET", f"/runs/{t['run']}"), "/runs/{id}", "get", 404, "not_found")


def test_missing_and_hidden_answer_alike(world):
    """Another user's resource and one that does not exist get the same
    404, also with a body the handler would refuse: nothing tells them
    apart."""
    w = world
    cases = [("POST", "/runs/{}/evaluate", w.res["bob"]["run"], "999999"),
             ("PATCH", "/datasets/{}", w.res["bob"]["dataset"], "no-such-set"),
             ("POST", "/v2/models/{}/infer", w.res["bob"]["model"], "no-such-model"),
             ("PUT", "/models/{}/aliases/x", w.res["bob"]["model"], "no-such-model")]
    for method, pattern, hidden, missing in cases:
        for body in ({"json": {"bad": "body"}}, {"data": "{", "headers": {"Content-Type": "application/json"}}):
            a = w.req("alice", method, pattern.format(hidden), **body)
            b = w.req("alice", method, pattern.format(missing), **body)
            assert a.status_code == b.status_code == 404, (pattern, a.text, b.text)
            assert a.text.replace(str(hidden), "X") == b.text.replace(missing, "X"), (a.text, b.text)
