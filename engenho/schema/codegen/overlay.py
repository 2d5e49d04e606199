"""What the OpenAPI documents do not say about resources: short names and categories.

Curated from upstream's REST storage (``ShortNames()``/``Categories()`` of each registry
strategy), as listed in the API contract §1.3. Keyed by (group, plural).
"""

from __future__ import annotations

__all__ = ["CATEGORIES", "SHORT_NAMES"]

SHORT_NAMES: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "componentstatuses"): ("cs",),
    ("", "configmaps"): ("cm",),
    ("", "endpoints"): ("ep",),
    ("", "events"): ("ev",),
    ("", "limitranges"): ("limits",),
    ("", "namespaces"): ("ns",),
    ("", "nodes"): ("no",),
    ("", "persistentvolumeclaims"): ("pvc",),
    ("", "persistentvolumes"): ("pv",),
    ("", "pods"): ("po",),
    ("", "replicationcontrollers"): ("rc",),
    ("", "resourcequotas"): ("quota",),
    ("", "serviceaccounts"): ("sa",),
    ("", "services"): ("svc",),
    ("apps", "daemonsets"): ("ds",),
    ("apps", "deployments"): ("deploy",),
    ("apps", "replicasets"): ("rs",),
    ("apps", "statefulsets"): ("sts",),
    ("batch", "cronjobs"): ("cj",),
    ("policy", "poddisruptionbudgets"): ("pdb",),
}

CATEGORIES: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "pods"): ("all",),
    ("", "replicationcontrollers"): ("all",),
    ("", "services"): ("all",),
    ("apps", "daemonsets"): ("all",),
    ("apps", "deployments"): ("all",),
    ("apps", "replicasets"): ("all",),
    ("apps", "statefulsets"): ("all",),
    ("batch", "cronjobs"): ("all",),
    ("batch", "jobs"): ("all",),
}
