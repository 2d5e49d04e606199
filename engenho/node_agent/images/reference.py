"""Image references, parsed and normalised exactly as Docker's distribution/reference does.

``busybox``, ``library/busybox``, ``docker.io/library/busybox:latest`` and
``index.docker.io/library/busybox`` all name the same image. The grammar (from
distribution/reference ``reference.go``)::

    reference   := name [ ":" tag ] [ "@" digest ]
    name        := [domain '/'] path-component ['/' path-component]*
    domain      := host [':' port-number]
    path-component := [a-z0-9]+ (separator [a-z0-9]+)*      separator := [._] | __ | [-]+
    tag         := [\\w][\\w.-]{0,127}
    digest      := algorithm ":" hex                         hex := [0-9a-fA-F]{32,}

and ``ParseNormalizedNamed``: a first component with a ``.`` or ``:``, or ``localhost``, or an
upper-case letter is a domain; otherwise the domain is ``docker.io``, and a one-component path
there gets ``library/``. Messages are upstream's, because the kubelet puts them in the
``InvalidImageName`` status message.
"""

from __future__ import annotations

import re

from attrs import frozen

from engenho.node_agent.images.errors import InvalidReferenceError

__all__ = [
    "DEFAULT_DOMAIN",
    "DEFAULT_TAG",
    "Reference",
    "parse_reference",
]

DEFAULT_DOMAIN = "docker.io"
DEFAULT_TAG = "latest"
_LEGACY_DEFAULT_DOMAIN = "index.docker.io"
_OFFICIAL_PREFIX = "library/"
_NAME_TOTAL_LENGTH_MAX = 255

_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALPHANUMERIC}(?:{_SEPARATOR}{_ALPHANUMERIC})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})"
_DOMAIN_AND_PORT = rf"{_HOST}(?::[0-9]+)?"
_REMOTE_NAME = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_NAME = rf"(?:{_DOMAIN_AND_PORT}/)?{_REMOTE_NAME}"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"^({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?$")
_IDENTIFIER = re.compile(r"^[a-f0-9]{64}$")
_TAG_ONLY = re.compile(rf"^{_TAG}$")
# go-digest's registered algorithms and their hex lengths.
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


@frozen(order=True)
class Reference:
    """A normalised reference: ``domain/path[:tag][@digest]``.

    ``parse_reference`` never leaves both ``tag`` and ``digest`` empty unless asked to
    (``default_tag=False``); ``str()`` is the fully qualified form.
    """

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """``docker.io/library/busybox``: the name without tag or digest."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_repository(self) -> str:
        """``busybox`` for ``docker.io/library/busybox``, as ``docker images`` shows it."""
        if self.domain != DEFAULT_DOMAIN:
            return self.repository
        if self.path.startswith(_OFFICIAL_PREFIX) and self.path.count("/") == 1:
            return self.path[len(_OFFICIAL_PREFIX) :]
        return self.path

    @property
    def familiar(self) -> str:
        return self._render(self.familiar_repository)

    def with_tag(self, tag: str) -> Reference:
        if not _TAG_ONLY.match(tag):
            raise InvalidReferenceError("invalid tag format")
        return Reference(self.domain, self.path, tag, None)

    def __str__(self) -> str:
        return self._render(self.repository)

    def _render(self, name: str) -> str:
        text = name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise ``text`` (distribution/reference ``ParseNormalizedNamed``).

    With ``default_tag`` (the kubelet's ``applyDefaultImageTag``) a reference with neither
    tag nor digest gets ``latest``. Raises InvalidReferenceError with upstream's message.
    """
    if _IDENTIFIER.match(text):
        raise InvalidReferenceError(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = _split_domain(text)
    # Upstream cuts at the first colon even when it belongs to a digest; so do we, so that
    # the message names the same text.
    remote_name = remainder.split(":", 1)[0]
    if remote_name.lower() != remote_name:
        raise InvalidReferenceError(
            f"invalid reference format: repository name ({remote_name}) must be lowercase"
        )
    full = f"{domain}/{remainder}"
    match = _REFERENCE.match(full)
    if match is None:
        if _REFERENCE.match(full.lower()):
            raise InvalidReferenceError(
                "invalid reference format: repository name must be lowercase"
            )
        raise InvalidReferenceError("invalid reference format")
    name, tag, digest = match.group(1), match.group(2), match.group(3)
    if len(name) > _NAME_TOTAL_LENGTH_MAX:
        raise InvalidReferenceError(
            f"repository name must not be more than {_NAME_TOTAL_LENGTH_MAX} characters"
        )
    if digest is not None:
        _check_digest(digest)
    # The domain of ``name`` is the one split off above: the regex cannot re-split it
    # differently, because it is matched against ``domain/remainder``.
    path = name[len(domain) + 1 :]
    if default_tag and tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def _split_domain(name: str) -> tuple[str, str]:
    """distribution/reference ``splitDockerDomain``."""
    slash = name.find("/")
    first = name[:slash]
    if slash == -1 or (
        not any(c in first for c in ".:") and first != "localhost" and first.lower() == first
    ):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, name[slash + 1 :]
    if domain == _LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = _OFFICIAL_PREFIX + remainder
    return domain, remainder


def _check_digest(digest: str) -> None:
    """go-digest ``Digest.Validate`` for the algorithms it registers."""
    algorithm, _, hex_part = digest.partition(":")
    expected = _DIGEST_LENGTHS.get(algorithm)
    if expected is None:
        raise InvalidReferenceError("unsupported digest algorithm")
    if len(hex_part) != expected:
        raise InvalidReferenceError("invalid checksum digest length")
    if hex_part.lower() != hex_part:
        raise InvalidReferenceError("invalid checksum digest format")
