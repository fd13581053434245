"""conftest.py: HTTP tests of mnistd against a real server process.

Environment (the Makefile's `http` target sets both):
  MNISTD_BIN       path of the mnistd binary (default: <repo>/build/mnistd)
  MNISTD_DATA_DIR  the data dir holding mnist/ IDX files (default: <repo>/data)
  MNISTD_TEST_BACKEND  `sqlite` (default) or `postgresql`: the store of every
                   server the tests start. On postgresql each database path a
                   test names becomes a schema of its own in one throwaway
                   server for the session (MNISTD_TEST_PG's, as
                   `scripts/pg-temp.sh run` sets it, else one this conftest
                   starts with scripts/pg-temp.sh and removes at the end);
                   tests marked `sqlite_only` (they open the file with sqlite3
                   or rely on SQLite's locking) are skipped.

Fixtures:
  server / client   one server for the whole session (`--workers 2`, a fresh
                    database in a temporary directory)
  start_server      a factory for function-scoped servers (own db, own flags),
                    used by the restart, crash and limit tests
  validate          validate(response, path_template, method, status): checks
                    the status is documented for the operation in openapi.yaml
                    and the body against its schema; returns the parsed body
  trained           small linear and dnn runs trained once per session
  mnist             real MNIST images read from the data dir's IDX files

Route helpers: code_routes() and route_cases() read the route table
(server/http/routes.c), so that tests covering every route (405, 401, the
contract) cover a new route without a list to update.

Every server is stopped with SIGTERM at teardown and must exit 0 within 10 s;
its stderr is attached to the report of a failing test.
"""
import errno
import gzip
import hashlib
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

import jsonschema
import pytest
import requests
import yaml

REPO = Path(__file__).resolve().parents[2]
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
TERMINAL = ("succeeded", "failed", "cancelled", "pruned")

# Small, fast recipes (about a second each on one core).
LINEAR_SMALL = {"model": "linear", "steps": 200, "periods": 2, "seed": 1}
DNN_SMALL = {"model": "dnn", "hidden_units": [32], "steps": 200, "periods": 2, "seed": 1}
# A run that will not end by itself during the suite (cancel tests).
LONG_RUN = {"model": "linear", "steps": 1000000, "periods": 10, "seed": 1}


def bin_path():
    p = os.environ.get("MNISTD_BIN")
    return Path(p) if p else REPO / "build" / "mnistd"


def require_bin():
    """bin_path(), failing the test when the binary is not there."""
    binary = bin_path()
    if not binary.exists():
        pytest.fail(f"{binary} does not exist: run `make` first (or set MNISTD_BIN)")
    return binary


def _data_dir():
    p = os.environ.get("MNISTD_DATA_DIR")
    return Path(p) if p else REPO / "data"


def backend():
    """The store backend of the servers under test (MNISTD_TEST_BACKEND)."""
    b = os.environ.get("MNISTD_TEST_BACKEND") or "sqlite"
    if b not in ("sqlite", "postgresql"):
        pytest.fail(f"MNISTD_TEST_BACKEND={b}: sqlite or postgresql")
    return b


_PG = {}               # the session's PostgreSQL: uri, dir, own, schemas


def pg_server():
    """(URI of database `mnistd`, the server's folder) of the session's
    throwaway PostgreSQL, started on first use (see the module's doc)."""
    if "uri" not in _PG:
        uri = os.environ.get("MNISTD_TEST_PG")
        if uri:
            _PG.update(uri=uri, dir=os.environ.get("MNISTD_TEST_PG_DIR"), own=False)
        else:
            d = tempfile.mktemp(prefix="mnistd-pg.", dir="/tmp")
            out = subprocess.run([str(REPO / "scripts" / "pg-temp.sh"), "start", d],
                                 capture_output=True, text=True)
            if out.returncode:
                pytest.fail(f"pg-temp.sh start failed: {out.stderr}")
            _PG.update(uri=out.stdout.strip(), dir=d, own=True)
        _PG["schemas"] = set()
    return _PG["uri"], _PG["dir"]


def pg_sql(sql, uri=None):
    """Runs SQL with psql on the session's database (or uri); stdout."""
    base, _ = pg_server()
    out = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                          "-d", uri or base, "-c", sql],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"psql: {sql}: {out.stderr}"
    return out.stdout.strip()


def pg_target(name):
    """The PostgreSQL URI of a fresh-or-existing schema for `name` (a test's
    database path): the same name gives the same schema, so that a test
    that restarts a server on its database finds it again."""
    base, _ = pg_server()
    schema = "s" + hashlib.sha1(str(name).encode()).hexdigest()[:24]
    if schema not in _PG["schemas"]:
        pg_sql(f"SET client_min_messages = warning; CREATE SCHEMA IF NOT EXISTS {schema}")
        _PG["schemas"].add(schema)
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def pg_ctl(action):
    """Stops, starts or restarts the session's PostgreSQL server."""
    _, d = pg_server()
    assert d, "MNISTD_TEST_PG_DIR is needed to control the server"
    bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
    if action == "restart":
        cmd = [str(REPO / "scripts" / "pg-temp.sh"), "restart", d]
    else:
        cmd = [str(bindir / "pg_ctl"), "-D", f"{d}/data", "-l", f"{d}/server.log",
               "-m", "fast", "-w", "-t", "60", action]
        if os.geteuid() == 0:
            user = "postgres" if subprocess.run(["id", "postgres"], capture_output=True).returncode == 0 \
                else "mnistd-pg"
            cmd = ["runuser", "-u", user, "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def time_scale():
    """How many times slower than a plain build the server under test is
    (MNISTD_TIME_SCALE, set by `make tsan` and `make coverage`; 1 by
    default): the waits for runs, start-up and stops are multiplied by it."""
    try:
        return max(1.0, float(os.environ.get("MNISTD_TIME_SCALE") or 1))
    except ValueError:
        return 1.0


# ---------------------------------------------------------------- openapi


def _is_datetime(value):
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", value):
        return False
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


class OpenAPI:
    """openapi.yaml, with its OpenAPI 3.0 schemas turned into JSON Schema
    (draft 4, which OpenAPI 3.0's schema objects follow): $ref resolved
    into components, `nullable: true` turned into an allowed null."""

    # OpenAPI-only keywords that JSON Schema does not know.
    DROP = {"nullable", "example", "examples", "xml", "discriminator",
            "readOnly", "writeOnly", "deprecated", "externalDocs"}

    def __init__(self, path):
        self.path = path
        self.text = Path(path).read_text()
        self.doc = yaml.safe_load(self.text)
        self.format_checker = jsonschema.FormatChecker()
        self.format_checker.checks("date-time", raises=ValueError)(_is_datetime)
        self._cache = {}

    def resolve(self, node):
        """Follows a local $ref ("#/components/...") to its target."""
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            assert ref.startswith("#/"), f"only local $refs are supported: {ref}"
            target = self.doc
            for part in ref[2:].split("/"):
                target = target[part]
            node = target
        return node

    def to_jsonschema(self, node, depth=0):
        assert depth < 50, "schema nesting too deep (a $ref cycle?)"
        if isinstance(node, list):
            return [self.to_jsonschema(x, depth + 1) for x in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return self.to_jsonschema(self.resolve(node), depth + 1)
        out = {}
        for key, val in node.items():
            if key in self.DROP:
                continue
            if key == "properties":
                out[key] = {k: self.to_jsonschema(v, depth + 1) for k, v in val.items()}
            elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
                out[key] = self.to_jsonschema(val, depth + 1)
            else:
                out[key] = val
        if node.get("nullable") is True:
            if "type" in out:
                out["type"] = [out["type"], "null"]
                if "enum" in out:
                    out["enum"] = list(out["enum"]) + [None]
            else:
                out = {"anyOf": [out, {"type": "null"}]}
        return out

    def validator(self, schema):
        key = json.dumps(schema, sort_keys=True)
        if key not in self._cache:
            js = self.to_jsonschema(schema)
            jsonschema.Draft4Validator.check_schema(js)
            self._cache[key] = jsonschema.Draft4Validator(js, format_checker=self.format_checker)
        return self._cache[key]

    def schema(self, name):
        return {"$ref": f"#/components/schemas/{name}"}

    def check(self, instance, schema):
        errors = sorted(self.validator(schema).iter_errors(instance), key=lambda e: list(e.path))
        if errors:
            lines = [f"  at {'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors[:10]]
            raise AssertionError("body does not match the schema:\n" + "\n".join(lines)
                                 + "\nbody: " + json.dumps(instance)[:2000])

    def validate(self, response, path_template, method, status=None):
        """Asserts response has `status` (default: any documented one), that
        the status is documented for `method path_template`, that headers
        the operation documents are present, and that the body matches the
        documented schema. 405 is checked against the path's methods (the
        Allow header must list exactly the documented ones). Returns the
        parsed JSON body (None for an empty body, text for non-JSON)."""
        method = method.lower()
        ctx = f"{method.upper()} {response.request.url} -> {response.status_code}: {response.text[:500]}"
        if status is not None:
            assert response.status_code == status, f"expected {status}; {ctx}"
        status = response.status_code
        paths = self.doc["paths"]
        assert path_template in paths, f"{path_template} is not in openapi.yaml"
        item = paths[path_template]
        if status == 405:
            assert method not in item, f"405 for a documented operation; {ctx}"
            documented = {m.upper() for m in item if m in HTTP_METHODS}
            if "GET" in documented:
                documented.add("HEAD")  # every GET route answers HEAD too
            allow = {m.strip() for m in response.headers.get("Allow", "").split(",") if m.strip()}
            assert allow == documented, f"Allow {allow} != documented {documented}; {ctx}"
            body = response.json()
            self.check(body, self.schema("Error"))
            return body
        assert method in item, f"{method.upper()} {path_template} is not documented; {ctx}"
        responses = item[method]["responses"]
        rdef = responses.get(str(status), responses.get("default"))
        assert rdef is not None, f"status {status} is not documented for {method.upper()} {path_template}; {ctx}"
        rdef = self.resolve(rdef)
        for header in rdef.get("headers", {}):
            assert header in response.headers, f"missing header {header}; {ctx}"
        content = rdef.get("content")
        if not content:
            assert response.content == b"", f"expected no body; {ctx}"
            return None
        ctype = response.headers.get("Content-Type", "").split(";")[0].strip()
        assert ctype in content, f"Content-Type {ctype!r} not documented ({list(content)}); {ctx}"
        if ctype != "application/json":
            return response.text
        try:
            body = response.json()
        except ValueError as e:
            raise AssertionError(f"body is not JSON ({e}); {ctx}")
        self.check(body, content[ctype]["schema"])
        return body

    def validate_error(self, response, status):
        """For responses outside any operation (unknown paths)."""
        assert response.status_code == status, response.text
        assert response.headers.get("Content-Type", "").startswith("application/json")
        body = response.json()
        self.check(body, self.schema("Error"))
        return body


_API = None


def api():
    global _API
    if _API is None:
        _API = OpenAPI(REPO / "openapi.yaml")
    return _API


# ---------------------------------------------------------------- routes


ROUTES_C = REPO / "server" / "http" / "routes.c"
# A sample value for each path parameter of openapi.yaml, to make a concrete
# path of a route (the router matches "{}" against any one segment).
PATH_SAMPLES = {"id": "1", "name": "mnist", "index": "0", "version": "1",
                "alias": "production"}


def code_routes():
    """{(METHOD, "/runs/{}")} from the route table, server/http/routes.c."""
    text = ROUTES_C.read_text()
    found = set(re.findall(r'\{\s*"([A-Z]+)"\s*,\s*"(/[^"]*)"', text))
    assert found, "no routes parsed from server/http/routes.c"
    return found


def route_template(route_path):
    """The openapi.yaml path template of a route table path:
    "/runs/{}" -> "/runs/{id}"."""
    for template in api().doc["paths"]:
        if re.sub(r"\{[^}]+\}", "{}", template) == route_path:
            return template
    raise AssertionError(f"route {route_path} of routes.c is not in openapi.yaml")


def route_cases():
    """[(METHOD, concrete path, openapi template)] for every route of the
    table, sorted: a route added to routes.c is in it."""
    out = []
    for method, route_path in sorted(code_routes(), key=lambda r: (r[1], r[0])):
        template = route_template(route_path)
        path = re.sub(r"\{([^}]+)\}", lambda m: PATH_SAMPLES[m.group(1)], template)
        out.append((method, path, template))
    return out


@pytest.fixture(scope="session")
def openapi():
    return api()


@pytest.fixture(scope="session")
def validate():
    return api().validate


def expect_error(response, path_template, method, status, code, *words):
    """Validates an error reply and asserts its code and that its message
    contains each of `words`. Returns the message."""
    body = api().validate(response, path_template, method, status)
    err = body["error"]
    assert err["code"] == code, f"code {err['code']!r} != {code!r}: {err['message']}"
    for w in words:
        assert str(w) in err["message"], f"{w!r} not in message {err['message']!r}"
    return err["message"]


# ---------------------------------------------------------------- server


_SERVERS = []          # every server started in this session
_TEST_START = [0.0]


class Client:
    """A small HTTP client bound to one server."""

    def __init__(self, base):
        self.base = base
        self.http = requests.Session()

    def url(self, path):
        return self.base + path

    def request(self, method, path, **kw):
        kw.setdefault("timeout", 60 * time_scale())
        return self.http.request(method, self.url(path), **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def post_json(self, path, obj, **kw):
        return self.request("POST", path, json=obj, **kw)

    def create_run(self, spec):
        api().check(spec, api().schema("RunRequest"))  # the schema accepts what the server does
        r = self.post_json("/runs", spec)
        run = api().validate(r, "/runs", "post", 202)
        assert r.headers["Location"] == f"/runs/{run['id']}"
        return run

    def run(self, run_id):
        r = self.get(f"/runs/{run_id}")
        return api().validate(r, "/runs/{id}", "get", 200)

    def wait_for_run(self, run_id, statuses=("succeeded",), timeout=120, until=None):
        """Polls GET /runs/<id> until its status is one of `statuses` (and
        until(run) is true, if given). Fails early if the run reaches another
        terminal status, and on timeout."""
        if isinstance(statuses, str):
            statuses = (statuses,)
        timeout *= time_scale()
        deadline = time.monotonic() + timeout
        run = None
        while time.monotonic() < deadline:
            run = self.run(run_id)
            if run["status"] in statuses and (until is None or until(run)):
                return run
            if run["status"] in TERMINAL and run["status"] not in statuses:
                pytest.fail(f"run {run_id} ended {run['status']} (wanted {statuses}): "
                            f"error={run['error']!r}")
            time.sleep(0.05)
        pytest.fail(f"run {run_id} not {statuses} within {timeout} s: {json.dumps(run)[:800]}")

    def train(self, spec, timeout=120):
        run = self.create_run(spec)
        return self.wait_for_run(run["id"], "succeeded", timeout)

    def cancel(self, run_id):
        r = self.post(f"/runs/{run_id}/cancel")
        return api().validate(r, "/runs/{id}/cancel", "post", 202)


class Server:
    """One mnistd serve process."""

    def __init__(self, workdir, db=None, args=(), workers=2, env=None, binary=None):
        self.workdir = Path(workdir)
        self.binary = binary    # None: MNISTD_BIN (require_bin)
        self.workdir.mkdir(parents=True, exist_ok=True)
        # the test's database path; on PostgreSQL a schema named after it
        self.db_path = str(db or self.workdir / "t.db")
        self.db = pg_target(self.db_path) if backend() == "postgresql" else self.db_path
        self.args = list(args)
        self.workers = workers
        # the environment may carry MNISTD_TOKEN: a test asks for a token explicitly
        self.env = {k: v for k, v in os.environ.items() if k != "MNISTD_TOKEN"}
        self.env.update(env or {})
        self.proc = None
        self.port = None
        self.client = None
        self.n_starts = 0
        self.log_path = None
        self.logs = []
        self.stopped_at = None
        _SERVERS.append(self)

    def start(self, timeout=30):
        binary = self.binary or require_bin()
        if not Path(binary).exists():
            pytest.fail(f"{binary} does not exist: run `make {binary}` first")
        data = _data_dir()
        self.n_starts += 1
        self.log_path = self.workdir / f"stderr-{self.n_starts}.log"
        self.logs.append(self.log_path)
        self._log = open(self.log_path, "wb")
        cmd = [str(binary), "serve", "--port", "0", "--db", self.db,
               "--data-dir", str(data), "--workers", str(self.workers), *self.args]
        if backend() == "postgresql" and "--node-name" not in self.args:
            # a server started again on its database is the same node (as
            # a service restarted on its host and port is): it requeues its
            # dead predecessor's runs at start instead of after the lease.
            # test_cluster.py names its nodes.
            cmd += ["--node-name", "node-" + hashlib.sha1(self.db_path.encode()).hexdigest()[:12]]
        for attempt in range(50):
            try:
                self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log,
                                             stdin=subprocess.DEVNULL, env=self.env)
                break
            except OSError as e:
                # a `make` relinking the binary right now (not executable
                # yet, or busy): wait for it
                if e.errno not in (errno.EACCES, errno.ETXTBSY) or attempt == 49:
                    raise
                time.sleep(0.2)
        self.stopped_at = None
        timeout *= time_scale()
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        buf = b""
        deadline = time.monotonic() + timeout
        try:
            while True:
                m = re.search(rb"listening on port (\d+)\n", buf)
                if m:
                    self.port = int(m.group(1))
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    self.proc.kill()
                    self.proc.wait()
                    pytest.fail(f"no 'listening on port N' within {timeout} s: {' '.join(cmd)}\n"
                                f"stdout: {buf!r}\nstderr: {self.stderr()}")
                if sel.select(timeout=left):
                    chunk = os.read(self.proc.stdout.fileno(), 4096)
                    if not chunk:
                        self.proc.wait()
                        pytest.fail(f"mnistd exited ({self.proc.returncode}) before listening: "
                                    f"{' '.join(cmd)}\nstdout: {buf!r}\nstderr: {self.stderr()}")
                    buf += chunk
        finally:
            sel.close()
        self.client = Client(f"http://127.0.0.1:{self.port}")
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Sends sig and waits; returns (exit code, seconds). For SIGTERM,
        asserts the process exits 0 within `timeout` seconds."""
        assert self.proc is not None
        timeout *= time_scale()
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self._close()
            pytest.fail(f"mnistd did not exit within {timeout} s of signal {sig}\n{self.stderr()}")
        took = time.monotonic() - t0
        self._close()
        if sig == signal.SIGTERM:
            assert rc == 0, f"mnistd exited {rc} on SIGTERM\n{self.stderr()}"
        return rc, took

    def kill(self):
        """SIGKILL, as a crash."""
        return self.stop(signal.SIGKILL)

    def _close(self):
        self.stopped_at = time.monotonic()
        if self.client:
            self.client.http.close()
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()

    def stderr(self, which=-1):
        if not self.logs:
            return ""
        try:
            return Path(self.logs[which]).read_text(errors="replace")
        except OSError:
            return ""

    def events(self, which=-1):
        """The JSON event lines (run started/resumed/...) of a start's stderr."""
        out = []
        for line in self.stderr(which).splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out


@pytest.fixture(scope="session")
def data_dir():
    d = _data_dir()
    if not (d / "mnist").is_dir():
        pytest.fail(f"MNIST data not found in {d}/mnist: run `make data` first "
                    f"(or set MNISTD_DATA_DIR)")
    return d


@pytest.fixture(scope="session")
def server(tmp_path_factory, data_dir):
    s = Server(tmp_path_factory.mktemp("session-server")).start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def client(server):
    return server.client


@pytest.fixture
def start_server(tmp_path, data_dir):
    """Factory: start_server(db=None, args=(), workers=2, env=None, binary=None)
    -> Server (binary: another build of mnistd, e.g. build/mnistd-testing).
    Servers still running at teardown get SIGTERM and must exit 0 within 10 s."""
    started = []

    def start(db=None, args=(), workers=2, name=None, env=None, binary=None):
        wd = tmp_path / (name or f"server{len(started)}")
        s = Server(wd, db=db or (tmp_path / "t.db"), args=args, workers=workers, env=env,
                   binary=binary).start()
        started.append(s)
        return s

    yield start
    for s in started:
        if s.alive():
            s.stop()


@pytest.fixture(scope="session")
def trained(client):
    """{"linear": run, "dnn": run}: small runs trained once, in parallel."""
    runs = {name: client.create_run(spec) for name, spec in
            (("linear", LINEAR_SMALL), ("dnn", DNN_SMALL))}
    return {name: client.wait_for_run(run["id"], "succeeded", timeout=120)
            for name, run in runs.items()}


@pytest.fixture(scope="session")
def cancelled_run(client):
    """A run cancelled before it trained a period."""
    run = client.create_run(LONG_RUN)
    client.cancel(run["id"])
    return client.wait_for_run(run["id"], "cancelled", timeout=30)


# ---------------------------------------------------------------- SSE


def parse_sse(text):
    """A text/event-stream as a list of events: dicts with the fields seen
    ("event", "id", "data" joined by newlines, "retry") and "comments"."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        ev = {"comments": []}
        for line in block.split("\n"):
            if line.startswith(":"):
                ev["comments"].append(line[1:].strip())
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data" and "data" in ev:
                ev["data"] += "\n" + value
            else:
                ev[field] = value
        events.append(ev)
    return events


# ---------------------------------------------------------------- MNIST


def _read(path):
    for p in (path, Path(str(path) + ".gz")):
        if p.exists():
            data = p.read_bytes()
            return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    pytest.fail(f"{path} not found: run `make data` first")


class Mnist:
    """Images (784 uint8 per row, as bytes) and labels of the IDX files."""

    def __init__(self, data_dir):
        self.dir = Path(data_dir) / "mnist"
        self._cache = {}

    def _load(self, kind):
        if kind not in self._cache:
            prefix = "train" if kind == "train" else "t10k"
            img = _read(self.dir / f"{prefix}-images-idx3-ubyte")
            lab = _read(self.dir / f"{prefix}-labels-idx1-ubyte")
            assert int.from_bytes(img[0:4], "big") == 0x803
            assert int.from_bytes(lab[0:4], "big") == 0x801
            n, rows, cols = (int.from_bytes(img[i:i + 4], "big") for i in (4, 8, 12))
            assert rows * cols == 784 and int.from_bytes(lab[4:8], "big") == n
            self._cache[kind] = (img[16:], lab[8:], n)
        return self._cache[kind]

    def images(self, kind, n, start=0):
        """n images as bytes of 784 uint8 each, and their labels."""
        px, lab, total = self._load(kind)
        assert start + n <= total
        imgs = [px[(start + i) * 784:(start + i + 1) * 784] for i in range(n)]
        return imgs, list(lab[start:start + n])

    @staticmethod
    def scaled(img):
        """pixels/255 as JSON numbers."""
        return [b / 255.0 for b in img]

    def csv(self, kind, n, start=0):
        """The exercise's CSV: label then 784 ints per line, no header."""
        imgs, labels = self.images(kind, n, start)
        return "".join(f"{y}," + ",".join(map(str, img)) + "\n" for img, y in zip(imgs, labels))


@pytest.fixture(scope="session")
def mnist(data_dir):
    return Mnist(data_dir)


# ---------------------------------------------------------------- reports


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only: the test looks at the SQLite file "
                            "or its locking; skipped on MNISTD_TEST_BACKEND=postgresql")
    config.addinivalue_line("markers", "postgresql_only: needs the PostgreSQL backend")
    # A private base temp dir: pytest's shared numbered dirs are rotated by
    # every pytest run on the machine, which may be running in parallel.
    if not config.option.basetemp:
        config.option.basetemp = tempfile.mkdtemp(prefix="mnistd-http-")
        config._mnistd_basetemp = config.option.basetemp


def pytest_report_header(config):
    return [f"mnistd: {bin_path()}, data {_data_dir()}, store {backend()}, temp dir "
            f"{config.option.basetemp} (kept when a test fails)"]


def pytest_collection_modifyitems(config, items):
    pg = backend() == "postgresql"
    for item in items:
        if pg and item.get_closest_marker("sqlite_only"):
            item.add_marker(pytest.mark.skip(reason="SQLite only (MNISTD_TEST_BACKEND=postgresql)"))
        if not pg and item.get_closest_marker("postgresql_only"):
            item.add_marker(pytest.mark.skip(reason="needs MNISTD_TEST_BACKEND=postgresql"))


def pytest_sessionfinish(session, exitstatus):
    if _PG.get("own"):
        subprocess.run([str(REPO / "scripts" / "pg-temp.sh"), "stop", _PG["dir"]],
                       capture_output=True)


def pytest_unconfigure(config):
    tmp = getattr(config, "_mnistd_basetemp", None)
    if tmp and not getattr(config, "_mnistd_failed", False):
        shutil.rmtree(tmp, ignore_errors=True)


def pytest_runtest_setup(item):
    _TEST_START[0] = time.monotonic()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    item.config._mnistd_failed = True  # keep the temp dir (dbs, logs)
    for s in _SERVERS:
        if s.stopped_at is not None and s.stopped_at < _TEST_START[0]:
            continue
        for i, log in enumerate(s.logs):
            try:
                text = Path(log).read_text(errors="replace")
            except OSError:
                continue
            lines = text.splitlines()
            tail = "\n".join(lines[-150:])
            report.sections.append((f"mnistd stderr ({s.workdir.name}, start {i + 1})", tail))
