"""``/openapi/v2`` as gnostic's protobuf ``openapi.v2.Document``.

The encoder (:mod:`engenho.api.openapi_protobuf`) is checked by decoding its output with a
wire-format reader written here from the .proto's field numbers (independently of the
encoder's tables): every definition of the served document comes back equal to its JSON form
(refs, types, properties, required lists, descriptions, defaults and the ``x-kubernetes-*``
extensions, whose YAML is read back with PyYAML), and the paths keep their operations and
parameters. Hypothesis checks varints and lengths, and that the YAML of gnostic's ``Any``
reads back as the JSON value it holds.

End to end, a real server subprocess answers each Accept header as kube-openapi does, and the
real kubectl (which fetches the protobuf form to validate ``kind: List`` files) applies Lists,
re-applies them without writing, refuses unknown fields under ``--validate=strict`` without
writing, applies what ``kubectl get -o yaml`` wrote, and explains from the v2 document.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from engenho.api.openapi_protobuf import any_yaml, encode_openapi_v2
from engenho.schema import openapi_v2_document
from tests.integration.server import QUIET_CONTROLLERS, ServerProcess, kubectl

PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
PROTOBUF_NEW = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

# ---------------------------------------------------------------------------------------------
# A protobuf wire-format reader


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


class Fields:
    """The fields of one encoded message: number -> the values, in order (varints as int,
    length-delimited as bytes, fixed64 as 8 bytes)."""

    def __init__(self, data: bytes) -> None:
        self.values: dict[int, list[Any]] = {}
        self.order: list[int] = []
        pos = 0
        while pos < len(data):
            key, pos = read_varint(data, pos)
            number, wire = key >> 3, key & 7
            value: Any
            if wire == 0:
                value, pos = read_varint(data, pos)
            elif wire == 1:
                value, pos = data[pos : pos + 8], pos + 8
            elif wire == 2:
                size, pos = read_varint(data, pos)
                value, pos = data[pos : pos + size], pos + size
                assert pos <= len(data), "a length runs past the end of the message"
            else:
                raise AssertionError(f"unexpected wire type {wire}")
            self.values.setdefault(number, []).append(value)
            self.order.append(number)
        assert pos == len(data)

    def one(self, number: int) -> Any:
        values = self.values.get(number, [])
        assert len(values) <= 1, f"field {number} is repeated"
        return values[0] if values else None

    def all(self, number: int) -> list[Any]:
        return self.values.get(number, [])

    def string(self, number: int) -> str | None:
        value = self.one(number)
        return None if value is None else bytes(value).decode()

    def strings(self, number: int) -> list[str]:
        return [bytes(v).decode() for v in self.all(number)]

    def message(self, number: int) -> Fields | None:
        value = self.one(number)
        return None if value is None else Fields(value)

    def messages(self, number: int) -> list[Fields]:
        return [Fields(v) for v in self.all(number)]


def named(fields: Fields, number: int) -> Iterator[tuple[str, Fields]]:
    """``repeated Named<Message> {string name = 1; <Message> value = 2;}``."""
    for entry in fields.messages(number):
        value = entry.message(2)
        assert value is not None
        # proto3 does not write an empty string: an absent name is "".
        yield entry.string(1) or "", value


def any_value(fields: Fields) -> Any:
    """gnostic's ``Any {google.protobuf.Any value = 1; string yaml = 2;}``."""
    assert fields.one(1) is None
    text = fields.string(2)
    assert text
    return yaml.safe_load(text)


def extensions(fields: Fields, number: int) -> dict[str, Any]:
    return {name: any_value(value) for name, value in named(fields, number)}


# Schema field numbers (openapiv2/OpenAPIv2.proto, message Schema).
S_REF, S_FORMAT, S_DESCRIPTION, S_DEFAULT = 1, 2, 4, 5
S_MAX_LENGTH, S_REQUIRED, S_ENUM, S_ADDITIONAL, S_TYPE, S_ITEMS = 11, 19, 20, 21, 22, 23
S_PROPERTIES, S_VENDOR = 25, 31


def decode_schema(fields: Fields) -> dict[str, Any]:
    """A ``Schema`` message back to the JSON keys engenho's documents use."""
    known = {
        S_REF,
        S_FORMAT,
        S_DESCRIPTION,
        S_DEFAULT,
        S_REQUIRED,
        S_ENUM,
        S_ADDITIONAL,
        S_TYPE,
        S_ITEMS,
        S_PROPERTIES,
        S_VENDOR,
    }
    assert set(fields.values) <= known, f"unexpected Schema fields {set(fields.values) - known}"
    out: dict[str, Any] = {}
    for key, number in (("$ref", S_REF), ("format", S_FORMAT), ("description", S_DESCRIPTION)):
        if (text := fields.string(number)) is not None:
            out[key] = text
    if (default := fields.message(S_DEFAULT)) is not None:
        out["default"] = any_value(default)
    if required := fields.strings(S_REQUIRED):
        out["required"] = required
    if enum := fields.messages(S_ENUM):
        out["enum"] = [any_value(v) for v in enum]
    if (additional := fields.message(S_ADDITIONAL)) is not None:
        schema = additional.message(1)
        out["additionalProperties"] = (
            decode_schema(schema) if schema is not None else bool(additional.one(2))
        )
    if (type_item := fields.message(S_TYPE)) is not None:
        (out["type"],) = type_item.strings(1)
    if (items := fields.message(S_ITEMS)) is not None:
        (item,) = items.messages(1)
        out["items"] = decode_schema(item)
    if (properties := fields.message(S_PROPERTIES)) is not None:
        out["properties"] = {name: decode_schema(s) for name, s in named(properties, 1)}
    out.update(extensions(fields, S_VENDOR))
    return out


def decode_parameter(item: Fields) -> dict[str, Any]:
    """``ParametersItem`` -> ``Parameter`` -> body, or a query/path parameter."""
    parameter = item.message(1)
    assert parameter is not None and item.one(2) is None
    body = parameter.message(1)
    if body is not None:
        schema = body.message(5)
        assert schema is not None
        return {
            "in": body.string(3),
            "name": body.string(2),
            "required": body.one(4) == 1,
            "schema": decode_schema(schema),
        }
    non_body = parameter.message(2)
    assert non_body is not None
    if (query := non_body.message(3)) is not None:
        type_number, unique_number = 6, 20
        sub = query
    else:
        path = non_body.message(4)
        assert path is not None
        type_number, unique_number, sub = 5, 19, path
    out: dict[str, Any] = {"in": sub.string(2), "name": sub.string(4)}
    if sub.one(1):
        out["required"] = True
    out["type"] = sub.string(type_number)
    if sub.one(unique_number):
        out["uniqueItems"] = True
    return out


def decode_operation(fields: Fields) -> dict[str, Any]:
    out: dict[str, Any] = {
        "tags": fields.strings(1),
        "operationId": fields.string(5),
        "produces": fields.strings(6),
        "consumes": fields.strings(7),
        "schemes": fields.strings(10),
    }
    if parameters := fields.messages(8):
        out["parameters"] = [decode_parameter(p) for p in parameters]
    responses = fields.message(9)
    assert responses is not None
    out["responses"] = {}
    for code, value in named(responses, 1):
        response = value.message(1)
        assert response is not None
        decoded: dict[str, Any] = {"description": response.string(1)}
        if (item := response.message(2)) is not None:
            schema = item.message(1)
            assert schema is not None
            decoded["schema"] = decode_schema(schema)
        out["responses"][code] = decoded
    out.update(extensions(fields, 13))
    return out


# ---------------------------------------------------------------------------------------------
# The served document, encoded


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    # Through JSON, as the server encodes it: the sorted key order of the bytes it serves.
    data: dict[str, Any] = orjson.loads(
        orjson.dumps(openapi_v2_document(), option=orjson.OPT_SORT_KEYS)
    )
    return data


@pytest.fixture(scope="module")
def decoded(document: dict[str, Any]) -> Fields:
    return Fields(encode_openapi_v2(document))


def definitions(decoded: Fields) -> dict[str, Fields]:
    message = decoded.message(9)
    assert message is not None
    return dict(named(message, 1))


def test_document_header(decoded: Fields, document: dict[str, Any]) -> None:
    assert decoded.string(1) == "2.0"
    info = decoded.message(2)
    assert info is not None
    assert (info.string(1), info.string(2)) == ("Kubernetes", document["info"]["version"])
    # securityDefinitions: BearerToken is an ApiKeySecurity (oneof member 2).
    security_definitions = decoded.message(13)
    assert security_definitions is not None
    ((name, item),) = named(security_definitions, 1)
    api_key = item.message(2)
    assert name == "BearerToken" and api_key is not None
    assert (api_key.string(1), api_key.string(2), api_key.string(3)) == (
        "apiKey",
        "authorization",
        "header",
    )
    # security: [{BearerToken: []}], a SecurityRequirement holding an empty StringArray.
    (requirement,) = decoded.messages(12)
    ((name, array),) = named(requirement, 1)
    assert name == "BearerToken" and array.values == {}
    # Fields go in field-number order, as Go's marshaller writes them.
    assert decoded.order == sorted(decoded.order)


def test_every_definition_round_trips(decoded: Fields, document: dict[str, Any]) -> None:
    schemas = definitions(decoded)
    assert list(schemas) == list(document["definitions"])
    for name, schema in schemas.items():
        assert decode_schema(schema) == document["definitions"][name], name


def test_pod_and_deployment(decoded: Fields) -> None:
    schemas = definitions(decoded)
    pod = decode_schema(schemas["io.k8s.api.core.v1.Pod"])
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Pod", "version": "v1"}]
    assert pod["properties"]["spec"]["$ref"] == "#/definitions/io.k8s.api.core.v1.PodSpec"
    assert pod["properties"]["metadata"]["default"] == {}
    spec = decode_schema(schemas["io.k8s.api.core.v1.PodSpec"])
    assert spec["required"] == ["containers"]
    containers = spec["properties"]["containers"]
    assert containers["type"] == "array"
    assert containers["items"]["$ref"] == "#/definitions/io.k8s.api.core.v1.Container"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert spec["properties"]["nodeSelector"]["additionalProperties"]["type"] == "string"
    assert decode_schema(schemas["io.k8s.api.core.v1.Container"])["required"] == ["name"]
    deployment = decode_schema(schemas["io.k8s.api.apps.v1.Deployment"])
    assert deployment["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}
    ]
    assert deployment["description"].startswith("Deployment enables declarative updates")
    deployment_spec = decode_schema(schemas["io.k8s.api.apps.v1.DeploymentSpec"])
    assert deployment_spec["required"] == ["selector", "template"]


def test_present_messages_are_written_even_when_empty() -> None:
    # kube-openapi tells an object with fields ("kind") from a map by whether Properties is
    # set, so an empty "properties" must still be written; additionalProperties: false is a
    # oneof member whose presence is the information.
    data = encode_openapi_v2(
        {
            "swagger": "2.0",
            "definitions": {
                "Empty": {"type": "object", "properties": {}},
                "Closed": {"type": "object", "additionalProperties": False},
                "Free": {"type": "object"},
            },
        }
    )
    container = Fields(data).message(9)
    assert container is not None
    schemas = dict(named(container, 1))
    empty = schemas["Empty"].message(S_PROPERTIES)
    assert empty is not None and empty.values == {}
    closed = schemas["Closed"].message(S_ADDITIONAL)
    assert closed is not None and closed.values == {2: [0]}
    assert schemas["Free"].message(S_PROPERTIES) is None
    assert decode_schema(schemas["Closed"]) == {"type": "object", "additionalProperties": False}


def test_paths_keep_operations_and_parameters(decoded: Fields, document: dict[str, Any]) -> None:
    paths = decoded.message(8)
    assert paths is not None
    items = dict(named(paths, 2))
    assert list(items) == list(document["paths"])
    pod_path = "/api/v1/namespaces/{namespace}/pods/{name}"
    item = items[pod_path]
    methods = {"get": 2, "put": 3, "post": 4, "delete": 5, "patch": 8}
    for method, number in methods.items():
        expected = document["paths"][pod_path].get(method)
        operation = item.message(number)
        assert (operation is None) == (expected is None), method
        if operation is not None:
            assert decode_operation(operation) == expected, method
    assert [decode_parameter(p) for p in item.messages(9)] == (
        document["paths"][pod_path]["parameters"]
    )
    patch = item.message(8)
    assert patch is not None
    assert decode_operation(patch)["x-kubernetes-group-version-kind"] == {
        "group": "",
        "kind": "Pod",
        "version": "v1",
    }


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\$\.definitions\.X: .* no field 'nullable'"):
        encode_openapi_v2({"swagger": "2.0", "definitions": {"X": {"nullable": True}}})
    with pytest.raises(ValueError, match=r"expected a string, got int"):
        encode_openapi_v2({"swagger": 2})


# ---------------------------------------------------------------------------------------------
# Properties of the encoding

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@given(length=INT64, description=st.text(max_size=300), title=st.text(max_size=3))
def test_varints_and_lengths_round_trip(length: int, description: str, title: str) -> None:
    data = encode_openapi_v2(
        {
            "swagger": "2.0",
            "definitions": {
                title: {"maxLength": length, "description": description, "type": "string"}
            },
        }
    )
    top = Fields(data)
    assert top.string(1) == "2.0"
    container = top.message(9)
    assert container is not None
    ((name, schema),) = named(container, 1)
    assert name == title
    raw = schema.one(S_MAX_LENGTH)
    # int64 on the wire: a varint of the two's complement; zero (the default) is not written.
    assert (raw is None and length == 0) or raw == length % 2**64
    assert schema.string(S_DESCRIPTION) == (description or None)


@given(JSON_VALUES)
def test_any_yaml_reads_back_as_the_value(value: Any) -> None:
    text = any_yaml(value)
    assert text.endswith("\n")
    assert yaml.safe_load(text) == value


def test_defaults_and_enums_are_any_messages() -> None:
    data = encode_openapi_v2(
        {
            "swagger": "2.0",
            "definitions": {
                "X": {"type": "string", "default": "y", "enum": ["on", 1.0e30, None, False]}
            },
        }
    )
    container = Fields(data).message(9)
    assert container is not None
    ((_, schema),) = named(container, 1)
    assert decode_schema(schema) == {
        "type": "string",
        "default": "y",
        "enum": ["on", 1.0e30, None, False],
    }


# ---------------------------------------------------------------------------------------------
# End to end: a real server and the real kubectl

LIST = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: first, namespace: default}
  data: {a: "1"}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: second, namespace: default}
  data: {b: "2"}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: web, namespace: default}
  spec:
    replicas: 1
    selector: {matchLabels: {app: web}}
    template:
      metadata: {labels: {app: web}}
      spec:
        containers: [{name: web, image: nginx}]
"""

UNKNOWN_FIELD = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: third, namespace: default}
  data: {c: "3"}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: fourth, namespace: default}
  bogusField: 1
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # Controllers that write on their own (Deployment -> ReplicaSet) would move the log head.
    process = ServerProcess(tmp_path_factory.mktemp("openapi"), env=QUIET_CONTROLLERS).start()
    yield process
    if process.process is not None:
        process.stop()


def fetch_v2(server: ServerProcess, accept: str) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(
        server.url + "/openapi/v2",
        headers={"Accept": accept, "Authorization": f"Bearer {server.admin_token}"},
    )
    try:
        with urllib.request.urlopen(request, context=server.ssl_context(), timeout=30) as reply:
            return reply.status, reply.read(), {k.lower(): v for k, v in reply.headers.items()}
    except urllib.error.HTTPError as error:
        return error.code, error.read(), {k.lower(): v for k, v in error.headers.items()}


@pytest.mark.slow
def test_negotiation(server: ServerProcess) -> None:
    status, json_body, json_headers = fetch_v2(server, "application/json")
    assert status == 200 and json_headers["content-type"] == "application/json"
    assert orjson.loads(json_body)["swagger"] == "2.0"
    status, body, headers = fetch_v2(server, PROTOBUF)
    assert status == 200
    # kube-openapi answers the newer spelling for either alias.
    assert headers["content-type"] == PROTOBUF_NEW
    assert headers["vary"] == "Accept" and json_headers["vary"] == "Accept"
    assert headers["etag"] != json_headers["etag"]
    assert body == encode_openapi_v2(orjson.loads(json_body))
    assert fetch_v2(server, PROTOBUF_NEW)[1] == body
    assert fetch_v2(server, "*/*")[2]["content-type"] == "application/json"
    # The client's preference (q) decides between the two.
    preferred = fetch_v2(server, f"application/json;q=0.5, {PROTOBUF}")
    assert preferred[2]["content-type"] == PROTOBUF_NEW
    preferred = fetch_v2(server, f"{PROTOBUF};q=0.5, application/json")
    assert preferred[2]["content-type"] == "application/json"
    status, refusal, _ = fetch_v2(server, "application/vnd.kubernetes.protobuf")
    assert status == 406 and orjson.loads(refusal)["reason"] == "NotAcceptable"


@pytest.mark.slow
def test_kubectl_applies_a_list(server: ServerProcess, tmp_path: Path) -> None:
    manifest = tmp_path / "list.yaml"
    manifest.write_text(LIST)
    out = kubectl(server, "apply", "-f", str(manifest)).stdout
    assert "configmap/first created" in out and "configmap/second created" in out
    assert "deployment.apps/web created" in out
    names = kubectl(server, "get", "configmaps,deployments", "-o", "name").stdout.split()
    assert {"configmap/first", "configmap/second", "deployment.apps/web"} <= set(names)
    head = server.log_head()
    again = kubectl(server, "apply", "-f", str(manifest)).stdout
    assert again.count("unchanged") == 3, again
    assert server.log_head() == head, "re-applying the same List must not write"


@pytest.mark.slow
def test_kubectl_strict_validation_names_the_unknown_field(
    server: ServerProcess, tmp_path: Path
) -> None:
    manifest = tmp_path / "unknown.yaml"
    manifest.write_text(UNKNOWN_FIELD)
    head = server.log_head()
    result = kubectl(server, "apply", "--validate=strict", "-f", str(manifest), check=False)
    assert result.returncode != 0
    assert (
        'ValidationError(ConfigMap): unknown field "bogusField" in io.k8s.api.core.v1.ConfigMap'
        in result.stderr
    ), result.stderr
    assert server.log_head() == head, "a refused List must not write anything"
    assert kubectl(server, "get", "configmap", "third", check=False).returncode != 0


@pytest.mark.slow
def test_kubectl_applies_what_get_wrote(server: ServerProcess, tmp_path: Path) -> None:
    kubectl(server, "create", "configmap", "exported", "--from-literal=k=v")
    listing = kubectl(server, "get", "configmaps", "-o", "yaml").stdout
    assert yaml.safe_load(listing)["kind"] == "List"
    manifest = tmp_path / "exported.yaml"
    manifest.write_text(listing)
    result = kubectl(server, "apply", "-f", str(manifest))
    assert "configmap/exported" in result.stdout


@pytest.mark.slow
def test_kubectl_explains_from_openapi_v2(server: ServerProcess) -> None:
    explained = kubectl(
        server,
        "explain",
        "deployment.spec.template.spec.containers",
        "--output",
        "plaintext-openapiv2",
    ).stdout
    assert "RESOURCE: containers <[]Object>" in explained
    assert "List of containers belonging to the pod." in explained
