"""Image references: distribution/reference's grammar and normalisation, property-tested.

Generated references (domains with ports, multi-component paths, tags, digests) must parse
to their parts and print back to a string that parses to the same reference; the familiar
short forms must all name the same image; upstream's messages for bad input are kept."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engenho.node_agent.images import InvalidReferenceError, Reference, parse_reference

ALNUM = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
SEPARATOR = st.sampled_from([".", "_", "__", "-", "--"])
COMPONENT = st.builds(
    lambda first, rest: first + "".join(sep + part for sep, part in rest),
    ALNUM,
    st.lists(st.tuples(SEPARATOR, ALNUM), max_size=2),
)
PATH = st.lists(COMPONENT, min_size=1, max_size=3).map("/".join)
DOMAIN = st.builds(
    lambda labels, port: ".".join(labels) + (f":{port}" if port is not None else ""),
    st.lists(
        st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6),
        min_size=2,
        max_size=3,
    ),
    st.none() | st.integers(1, 65535),
)
TAG = st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}\Z")
DIGEST = st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: f"sha256:{h}")


@given(DOMAIN, PATH, st.none() | TAG, st.none() | DIGEST)
def test_a_qualified_reference_parses_to_its_parts(
    domain: str, path: str, tag: str | None, digest: str | None
) -> None:
    text = f"{domain}/{path}" + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    ref = parse_reference(text)
    assert (ref.domain, ref.path, ref.digest) == (domain, path, digest)
    assert ref.tag == (tag if tag or digest else "latest")
    assert parse_reference(str(ref)) == ref


# A first component with a dot is a registry ("0.0/x" is on host 0.0), so not a short name.
SHORT_PATH = PATH.filter(lambda p: "/" not in p or "." not in p.split("/")[0])


@given(SHORT_PATH, st.none() | TAG)
def test_short_names_live_on_docker_hub(path: str, tag: str | None) -> None:
    text = path + (f":{tag}" if tag else "")
    ref = parse_reference(text)
    assert ref.domain == "docker.io"
    expected = path if "/" in path else f"library/{path}"
    assert ref.path == expected
    assert ref.tag == (tag or "latest")
    # The familiar form names the same image, and so does the legacy index host.
    assert parse_reference(ref.familiar) == ref
    assert parse_reference(f"index.docker.io/{expected}:{ref.tag}") == ref
    assert parse_reference(str(ref)) == ref


@pytest.mark.parametrize(
    "text",
    [
        "busybox",
        "busybox:latest",
        "library/busybox",
        "library/busybox:latest",
        "docker.io/busybox",
        "docker.io/library/busybox:latest",
        "index.docker.io/library/busybox",
    ],
)
def test_every_spelling_of_busybox_is_the_same_image(text: str) -> None:
    assert parse_reference(text) == Reference("docker.io", "library/busybox", "latest")


def test_tags_digests_and_registries() -> None:
    assert parse_reference("busybox:1.36").tag == "1.36"
    digest = "sha256:" + "a" * 64
    by_digest = parse_reference(f"busybox@{digest}")
    assert (by_digest.tag, by_digest.digest) == (None, digest)
    assert str(by_digest) == f"docker.io/library/busybox@{digest}"
    assert by_digest.familiar == f"busybox@{digest}"
    assert parse_reference("localhost/app").domain == "localhost"
    assert parse_reference("localhost:5000/team/app:v1") == Reference(
        "localhost:5000", "team/app", "v1"
    )
    assert parse_reference("quay.io/org/app").familiar == "quay.io/org/app:latest"
    # A first component with no dot, colon or "localhost" is a path, not a registry.
    assert parse_reference("team/app").path == "team/app"
    assert parse_reference("busybox", default_tag=False).tag is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid reference format"),
        (
            "Busybox",
            "invalid reference format: repository name (library/Busybox) must be lowercase",
        ),
        ("busybox:", "invalid reference format"),
        ("busy box", "invalid reference format"),
        ("a" * 64, "cannot specify 64-byte hexadecimal strings"),
        ("busybox@sha256:abc", "invalid reference format"),
        ("busybox@sha256:" + "a" * 63 + "g", "invalid reference format"),
        ("busybox@md5:" + "a" * 32, "unsupported digest algorithm"),
        ("busybox@sha512:" + "a" * 64, "invalid checksum digest length"),
        ("a/" * 130 + "b", "must not be more than 255 characters"),
        ("-busybox", "invalid reference format"),
        ("busybox:" + "x" * 129, "invalid reference format"),
    ],
)
def test_bad_references_get_upstreams_messages(text: str, message: str) -> None:
    with pytest.raises(
        InvalidReferenceError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        parse_reference(text)


@given(st.text(max_size=40))
def test_any_string_parses_or_is_refused_cleanly(text: str) -> None:
    try:
        ref = parse_reference(text)
    except InvalidReferenceError:
        return
    assert parse_reference(str(ref)) == ref
