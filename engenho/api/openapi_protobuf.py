"""The Swagger 2.0 document as protobuf: gnostic's ``openapi.v2.Document``.

client-go's ``OpenAPISchema()`` (kubectl's client-side validation of ``kind: List`` files, and
its fallbacks for strategic merge metadata and ``explain --output plaintext-openapiv2``) asks
``/openapi/v2`` for ``application/com.github.proto-openapi.spec.v2@v1.0+protobuf`` only and
decodes the body as the ``openapi.v2.Document`` message of github.com/google/gnostic-models
(``openapiv2/OpenAPIv2.proto``). Upstream produces it by parsing its JSON document with
gnostic and marshalling the result; :func:`encode_openapi_v2` does the same from the JSON
document's dict, with a small protobuf wire-format writer.

How gnostic models JSON, and so what this encoder writes:

- A JSON object with fixed keys is a message, each key a field (numbers from the .proto);
  ``x-...`` keys go to the message's repeated ``vendor_extension`` field as ``NamedAny``.
- A JSON object with free keys (``definitions``, ``properties``, ``paths``, ...) is a repeated
  ``Named<Value>`` ``{name = 1, value = 2}``, in the JSON document's (sorted) key order.
- Values of any JSON type (extension values, ``default``, ``enum``, ``example``) are gnostic's
  ``Any`` message holding the value as YAML text in field 2; kube-openapi reads it back with
  yaml.v2. The YAML written here is flow style with every string double-quoted and escaped,
  so no YAML 1.1 implicit typing (``y``, ``on``, ``1_000``) can change a value.
- JSON forms that are "one of" several messages (a parameter is a body or a query/path/...
  parameter, or a ``$ref``) pick the oneof member as gnostic's compiler does.
- Scalars equal to their proto3 default ("" / false / 0) are omitted, as Go's marshaller does;
  a present sub-message is always written, even when empty (kube-openapi tells "object with
  properties" from "map" by whether ``properties`` is set).

A key gnostic's schema does not allow raises :class:`ValueError` naming its JSON path, rather
than being dropped silently.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["any_yaml", "encode_openapi_v2"]

# Wire types (protobuf encoding guide).
_VARINT = 0
_FIXED64 = 1
_LENGTH = 2

_FieldCodec = Callable[[int, Any, str], bytes]
"""Encodes one JSON value as field ``number`` (tag included); b"" when nothing is written."""

_MessageCodec = Callable[[Any, str], bytes]
"""Encodes one JSON value as the body of a message (no tag, no length)."""


# ---------------------------------------------------------------------------------------------
# Wire format


def _varint(value: int) -> bytes:
    if value < 0:
        # int64 negatives are written as their 64-bit two's complement (ten bytes).
        value += 1 << 64
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _tag(number, _LENGTH) + _varint(len(payload)) + payload


# ---------------------------------------------------------------------------------------------
# YAML text for gnostic's Any


# Escaped inside double quotes: what YAML 1.1 does not allow unescaped (C0/C1 controls, DEL,
# surrogates, U+FFFE/U+FFFF), what it would fold or strip (line and paragraph separators, a
# byte order mark), and the quote and backslash themselves.
_ESCAPED = re.compile('[\x00-\x1f"\\\\\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]')
_SHORT_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\n": "\\n",
    "\t": "\\t",
    "\r": "\\r",
    "\x00": "\\0",
}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    short = _SHORT_ESCAPES.get(char)
    if short is not None:
        return short
    code = ord(char)
    return f"\\x{code:02X}" if code < 0x100 else f"\\u{code:04X}"


def _yaml_flow(value: Any) -> str:
    if isinstance(value, str):
        return '"' + _ESCAPED.sub(_escape, value) + '"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a JSON number")
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        if e and "." not in mantissa:
            # YAML 1.1's float pattern wants a fraction and a signed exponent ("1.0e+30");
            # Python writes "1e+30", which PyYAML would read as a string.
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, list):
        return "[" + ", ".join(_yaml_flow(item) for item in value) + "]"
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{_yaml_flow(key)}: {_yaml_flow(value[key])}" for key in value) + "}"
        )
    raise ValueError(f"{type(value).__name__} is not a JSON value")


def any_yaml(value: Any) -> str:
    """The YAML text gnostic's ``Any`` carries for a JSON value (one document, ending in a
    newline). Flow style, strings always double-quoted: YAML 1.1 readers (yaml.v2) read back
    exactly the JSON value, whatever the strings hold."""
    return _yaml_flow(value) + "\n"


# ---------------------------------------------------------------------------------------------
# Field codecs


def _describe(value: Any) -> str:
    return type(value).__name__


def _mismatch(path: str, expected: str, value: Any) -> ValueError:
    return ValueError(f"{path}: expected {expected}, got {_describe(value)}")


def _string(number: int, value: Any, path: str) -> bytes:
    if not isinstance(value, str):
        raise _mismatch(path, "a string", value)
    return _length_delimited(number, value.encode()) if value else b""


def _bool(number: int, value: Any, path: str) -> bytes:
    if not isinstance(value, bool):
        raise _mismatch(path, "a boolean", value)
    return _tag(number, _VARINT) + b"\x01" if value else b""


def _double(number: int, value: Any, path: str) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _mismatch(path, "a number", value)
    return _tag(number, _FIXED64) + struct.pack("<d", value) if value else b""


def _int64(number: int, value: Any, path: str) -> bytes:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _mismatch(path, "an integer", value)
    if not -(1 << 63) <= value < 1 << 63:
        raise ValueError(f"{path}: {value} does not fit in int64")
    return _tag(number, _VARINT) + _varint(value) if value else b""


def _strings(number: int, value: Any, path: str) -> bytes:
    if not isinstance(value, list):
        raise _mismatch(path, "a list of strings", value)
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _mismatch(f"{path}[{i}]", "a string", item)
        # Elements of a repeated field are always written, empty ones too.
        out.append(_length_delimited(number, item.encode()))
    return b"".join(out)


def _any_body(value: Any, path: str) -> bytes:
    try:
        text = any_yaml(value)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    return _length_delimited(2, text.encode())  # Any.yaml


def _embedded(message: _MessageCodec) -> _FieldCodec:
    def codec(number: int, value: Any, path: str) -> bytes:
        return _length_delimited(number, message(value, path))

    return codec


def _repeated(message: _MessageCodec) -> _FieldCodec:
    def codec(number: int, value: Any, path: str) -> bytes:
        if not isinstance(value, list):
            raise _mismatch(path, "a list", value)
        return b"".join(
            _length_delimited(number, message(item, f"{path}[{i}]")) for i, item in enumerate(value)
        )

    return codec


_MESSAGES: dict[str, _MessageCodec] = {}


def _lazy(name: str) -> _MessageCodec:
    """The message codec called ``name``, looked up when used (messages refer to each other)."""

    def codec(value: Any, path: str) -> bytes:
        return _MESSAGES[name](value, path)

    return codec


def _message(name: str) -> _FieldCodec:
    return _embedded(_lazy(name))


def _messages(name: str) -> _FieldCodec:
    return _repeated(_lazy(name))


_any = _embedded(_any_body)
_anys = _repeated(_any_body)


def _object_of(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _mismatch(path, "an object", value)
    return value


def _named_entries(
    number: int,
    items: list[tuple[str, Any]],
    value_codec: _FieldCodec,
    path: str,
) -> bytes:
    """``repeated Named<Value> {string name = 1; <Value> value = 2;}`` as field ``number``."""
    return b"".join(
        _length_delimited(number, _string(1, key, path) + value_codec(2, item, f"{path}.{key}"))
        for key, item in items
    )


# ---------------------------------------------------------------------------------------------
# Message codecs


def _fixed(fields: dict[str, tuple[int, _FieldCodec]], extensions: int | None) -> _MessageCodec:
    """A message whose JSON form is an object with fixed keys (plus ``x-`` extensions)."""
    ordered = sorted(fields.items(), key=lambda item: item[1][0])

    def codec(value: Any, path: str) -> bytes:
        data = _object_of(value, path)
        out = []
        for key, (number, field) in ordered:
            if key in data:
                out.append(field(number, data[key], f"{path}.{key}"))
        unknown = [key for key in data if key not in fields]
        if unknown:
            named = [(key, data[key]) for key in unknown if key.startswith("x-")]
            if extensions is None or len(named) != len(unknown):
                bad = next(k for k in unknown if extensions is None or not k.startswith("x-"))
                raise ValueError(f"{path}: gnostic's OpenAPI v2 schema has no field {bad!r}")
            out.append(_named_entries(extensions, named, _any, path))
        return b"".join(out)

    return codec


def _map(value_codec: _FieldCodec) -> _MessageCodec:
    """A message ``{repeated Named<Value> additional_properties = 1;}``: a free-keyed object."""

    def codec(value: Any, path: str) -> bytes:
        return _named_entries(1, list(_object_of(value, path).items()), value_codec, path)

    return codec


def _split_map(entries: int, value_codec: _FieldCodec, extensions: int) -> _MessageCodec:
    """A free-keyed object whose ``x-`` keys are vendor extensions (``Paths``, ``Responses``)."""

    def codec(value: Any, path: str) -> bytes:
        data = _object_of(value, path)
        chunks = [
            (entries, [(k, v) for k, v in data.items() if not k.startswith("x-")], value_codec),
            (extensions, [(k, v) for k, v in data.items() if k.startswith("x-")], _any),
        ]
        chunks.sort(key=lambda chunk: chunk[0])
        return b"".join(
            _named_entries(number, items, item_codec, path) for number, items, item_codec in chunks
        )

    return codec


def _string_or_list(value: Any, path: str) -> bytes:
    """``TypeItem`` / ``StringArray``: ``repeated string value = 1``."""
    return _strings(1, [value] if isinstance(value, str) else value, path)


def _schema_or_list(value: Any, path: str) -> bytes:
    """``ItemsItem``: ``repeated Schema schema = 1`` (JSON: a schema or a list of them)."""
    return _messages("Schema")(1, value if isinstance(value, list) else [value], path)


def _additional_properties(value: Any, path: str) -> bytes:
    """``AdditionalPropertiesItem``: oneof ``Schema schema = 1`` / ``bool boolean = 2``."""
    if isinstance(value, bool):
        # A oneof member is written even when false: its presence is the information.
        return _tag(2, _VARINT) + (b"\x01" if value else b"\x00")
    return _message("Schema")(1, value, path)


def _one_of(choose: Callable[[Mapping[str, Any]], tuple[int, str]]) -> _MessageCodec:
    """A oneof wrapper message: ``choose`` names the member (field number, message)."""

    def codec(value: Any, path: str) -> bytes:
        number, name = choose(_object_of(value, path))
        return _message(name)(number, value, path)

    return codec


def _parameters_item(data: Mapping[str, Any]) -> tuple[int, str]:
    return (2, "JsonReference") if "$ref" in data else (1, "Parameter")


def _parameter(data: Mapping[str, Any]) -> tuple[int, str]:
    return (1, "BodyParameter") if data.get("in") == "body" else (2, "NonBodyParameter")


_NON_BODY = {
    "header": (1, "HeaderParameterSubSchema"),
    "formData": (2, "FormDataParameterSubSchema"),
    "query": (3, "QueryParameterSubSchema"),
    "path": (4, "PathParameterSubSchema"),
}


def _non_body_parameter(data: Mapping[str, Any]) -> tuple[int, str]:
    member = _NON_BODY.get(data.get("in", ""))
    if member is None:
        raise ValueError(f"a parameter is in one of body, {', '.join(_NON_BODY)}: {data!r}")
    return member


def _response_value(data: Mapping[str, Any]) -> tuple[int, str]:
    return (2, "JsonReference") if "$ref" in data else (1, "Response")


def _schema_item(data: Mapping[str, Any]) -> tuple[int, str]:
    return (2, "FileSchema") if data.get("type") == "file" else (1, "Schema")


_SECURITY = {
    ("basic", None): (1, "BasicAuthenticationSecurity"),
    ("apiKey", None): (2, "ApiKeySecurity"),
    ("oauth2", "implicit"): (3, "Oauth2ImplicitSecurity"),
    ("oauth2", "password"): (4, "Oauth2PasswordSecurity"),
    ("oauth2", "application"): (5, "Oauth2ApplicationSecurity"),
    ("oauth2", "accessCode"): (6, "Oauth2AccessCodeSecurity"),
}


def _security_definitions_item(data: Mapping[str, Any]) -> tuple[int, str]:
    kind = str(data.get("type"))
    member = _SECURITY.get((kind, str(data.get("flow")) if kind == "oauth2" else None))
    if member is None:
        raise ValueError(f"unknown security scheme: {data!r}")
    return member


def _validations(first: int) -> dict[str, tuple[int, _FieldCodec]]:
    """The run of fields every primitive parameter/header/items message has, in this order,
    numbered from ``first`` (``type`` ... ``multipleOf``)."""
    names: list[tuple[str, _FieldCodec]] = [
        ("type", _string),
        ("format", _string),
        ("items", _message("PrimitivesItems")),
        ("collectionFormat", _string),
        ("default", _any),
        ("maximum", _double),
        ("exclusiveMaximum", _bool),
        ("minimum", _double),
        ("exclusiveMinimum", _bool),
        ("maxLength", _int64),
        ("minLength", _int64),
        ("pattern", _string),
        ("maxItems", _int64),
        ("minItems", _int64),
        ("uniqueItems", _bool),
        ("enum", _anys),
        ("multipleOf", _double),
    ]
    return {name: (first + i, codec) for i, (name, codec) in enumerate(names)}


def _parameter_sub_schema(form: bool) -> _MessageCodec:
    """Query and formData parameters have ``allowEmptyValue`` (5) before the validations;
    header and path parameters do not."""
    fields: dict[str, tuple[int, _FieldCodec]] = {
        "required": (1, _bool),
        "in": (2, _string),
        "description": (3, _string),
        "name": (4, _string),
    }
    if form:
        fields["allowEmptyValue"] = (5, _bool)
    fields.update(_validations(6 if form else 5))
    return _fixed(fields, 23 if form else 22)


_MESSAGES.update(
    {
        "Document": _fixed(
            {
                "swagger": (1, _string),
                "info": (2, _message("Info")),
                "host": (3, _string),
                "basePath": (4, _string),
                "schemes": (5, _strings),
                "consumes": (6, _strings),
                "produces": (7, _strings),
                "paths": (8, _message("Paths")),
                "definitions": (9, _embedded(_map(_message("Schema")))),
                "parameters": (10, _embedded(_map(_message("Parameter")))),
                "responses": (11, _embedded(_map(_message("Response")))),
                "security": (12, _messages("SecurityRequirement")),
                "securityDefinitions": (
                    13,
                    _embedded(_map(_message("SecurityDefinitionsItem"))),
                ),
                "tags": (14, _messages("Tag")),
                "externalDocs": (15, _message("ExternalDocs")),
            },
            16,
        ),
        "Info": _fixed(
            {
                "title": (1, _string),
                "version": (2, _string),
                "description": (3, _string),
                "termsOfService": (4, _string),
                "contact": (5, _message("Contact")),
                "license": (6, _message("License")),
            },
            7,
        ),
        "Contact": _fixed({"name": (1, _string), "url": (2, _string), "email": (3, _string)}, 4),
        "License": _fixed({"name": (1, _string), "url": (2, _string)}, 3),
        "ExternalDocs": _fixed({"description": (1, _string), "url": (2, _string)}, 3),
        "Tag": _fixed(
            {
                "name": (1, _string),
                "description": (2, _string),
                "externalDocs": (3, _message("ExternalDocs")),
            },
            4,
        ),
        "Paths": _split_map(2, _message("PathItem"), 1),
        "PathItem": _fixed(
            {
                "$ref": (1, _string),
                "get": (2, _message("Operation")),
                "put": (3, _message("Operation")),
                "post": (4, _message("Operation")),
                "delete": (5, _message("Operation")),
                "options": (6, _message("Operation")),
                "head": (7, _message("Operation")),
                "patch": (8, _message("Operation")),
                "parameters": (9, _messages("ParametersItem")),
            },
            10,
        ),
        "Operation": _fixed(
            {
                "tags": (1, _strings),
                "summary": (2, _string),
                "description": (3, _string),
                "externalDocs": (4, _message("ExternalDocs")),
                "operationId": (5, _string),
                "produces": (6, _strings),
                "consumes": (7, _strings),
                "parameters": (8, _messages("ParametersItem")),
                "responses": (9, _message("Responses")),
                "schemes": (10, _strings),
                "deprecated": (11, _bool),
                "security": (12, _messages("SecurityRequirement")),
            },
            13,
        ),
        "ParametersItem": _one_of(_parameters_item),
        "Parameter": _one_of(_parameter),
        "NonBodyParameter": _one_of(_non_body_parameter),
        "JsonReference": _fixed({"$ref": (1, _string), "description": (2, _string)}, None),
        "BodyParameter": _fixed(
            {
                "description": (1, _string),
                "name": (2, _string),
                "in": (3, _string),
                "required": (4, _bool),
                "schema": (5, _message("Schema")),
            },
            6,
        ),
        "QueryParameterSubSchema": _parameter_sub_schema(form=True),
        "FormDataParameterSubSchema": _parameter_sub_schema(form=True),
        "HeaderParameterSubSchema": _parameter_sub_schema(form=False),
        "PathParameterSubSchema": _parameter_sub_schema(form=False),
        "PrimitivesItems": _fixed(_validations(1), 18),
        "Header": _fixed({**_validations(1), "description": (18, _string)}, 19),
        "Responses": _split_map(1, _message("ResponseValue"), 2),
        "ResponseValue": _one_of(_response_value),
        "Response": _fixed(
            {
                "description": (1, _string),
                "schema": (2, _message("SchemaItem")),
                "headers": (3, _embedded(_map(_message("Header")))),
                "examples": (4, _embedded(_map(_any))),
            },
            5,
        ),
        "SchemaItem": _one_of(_schema_item),
        "Schema": _fixed(
            {
                "$ref": (1, _string),
                "format": (2, _string),
                "title": (3, _string),
                "description": (4, _string),
                "default": (5, _any),
                "multipleOf": (6, _double),
                "maximum": (7, _double),
                "exclusiveMaximum": (8, _bool),
                "minimum": (9, _double),
                "exclusiveMinimum": (10, _bool),
                "maxLength": (11, _int64),
                "minLength": (12, _int64),
                "pattern": (13, _string),
                "maxItems": (14, _int64),
                "minItems": (15, _int64),
                "uniqueItems": (16, _bool),
                "maxProperties": (17, _int64),
                "minProperties": (18, _int64),
                "required": (19, _strings),
                "enum": (20, _anys),
                "additionalProperties": (21, _embedded(_additional_properties)),
                "type": (22, _embedded(_string_or_list)),
                "items": (23, _embedded(_schema_or_list)),
                "allOf": (24, _messages("Schema")),
                "properties": (25, _embedded(_map(_message("Schema")))),
                "discriminator": (26, _string),
                "readOnly": (27, _bool),
                "xml": (28, _message("Xml")),
                "externalDocs": (29, _message("ExternalDocs")),
                "example": (30, _any),
            },
            31,
        ),
        "FileSchema": _fixed(
            {
                "format": (1, _string),
                "title": (2, _string),
                "description": (3, _string),
                "default": (4, _any),
                "required": (5, _strings),
                "type": (6, _string),
                "readOnly": (7, _bool),
                "externalDocs": (8, _message("ExternalDocs")),
                "example": (9, _any),
            },
            10,
        ),
        "Xml": _fixed(
            {
                "name": (1, _string),
                "namespace": (2, _string),
                "prefix": (3, _string),
                "attribute": (4, _bool),
                "wrapped": (5, _bool),
            },
            6,
        ),
        "SecurityRequirement": _map(_embedded(_string_or_list)),
        "SecurityDefinitionsItem": _one_of(_security_definitions_item),
        "BasicAuthenticationSecurity": _fixed(
            {"type": (1, _string), "description": (2, _string)}, 3
        ),
        "ApiKeySecurity": _fixed(
            {
                "type": (1, _string),
                "name": (2, _string),
                "in": (3, _string),
                "description": (4, _string),
            },
            5,
        ),
        "Oauth2ImplicitSecurity": _fixed(
            {
                "type": (1, _string),
                "flow": (2, _string),
                "scopes": (3, _embedded(_map(_string))),
                "authorizationUrl": (4, _string),
                "description": (5, _string),
            },
            6,
        ),
        "Oauth2PasswordSecurity": _fixed(
            {
                "type": (1, _string),
                "flow": (2, _string),
                "scopes": (3, _embedded(_map(_string))),
                "tokenUrl": (4, _string),
                "description": (5, _string),
            },
            6,
        ),
        "Oauth2ApplicationSecurity": _fixed(
            {
                "type": (1, _string),
                "flow": (2, _string),
                "scopes": (3, _embedded(_map(_string))),
                "tokenUrl": (4, _string),
                "description": (5, _string),
            },
            6,
        ),
        "Oauth2AccessCodeSecurity": _fixed(
            {
                "type": (1, _string),
                "flow": (2, _string),
                "scopes": (3, _embedded(_map(_string))),
                "authorizationUrl": (4, _string),
                "tokenUrl": (5, _string),
                "description": (6, _string),
            },
            7,
        ),
    }
)


def encode_openapi_v2(document: Mapping[str, Any]) -> bytes:
    """The protobuf bytes of gnostic's ``openapi.v2.Document`` for a Swagger 2.0 document
    (as parsed from JSON: dicts, lists, str, int, float, bool, None). Named entries keep the
    dict order, so a document read from sorted JSON encodes in the same order."""
    return _MESSAGES["Document"](dict(document), "$")
