"""Required inter-pod affinity and anti-affinity (upstream's ``InterPodAffinity`` filter).

Three rules, checked in upstream's order, each over *topology domains* (the nodes sharing a
value of the term's ``topologyKey``):

1. the pod's affinity terms: the node's domain must already run a pod matching all of them
   (unless no pod anywhere does and the pod matches its own terms: the first of a group);
2. the pod's anti-affinity terms: the node's domain must run no pod matching one;
3. existing pods' anti-affinity terms: the node must not be in the domain of a pod whose
   anti-affinity term matches this pod.

Counting walks every pod on every node, once per pod that needs it (a pod with terms, or any
pod while some bound pod has anti-affinity terms), as upstream's PreFilter does.
"""

from __future__ import annotations

from collections.abc import Mapping

from attrs import frozen

from engenho.reconcilers.scheduling.nodeinfo import NodeInfo
from engenho.reconcilers.scheduling.plugins import FITS, Cycle, NodeCheck
from engenho.reconcilers.scheduling.terms import AffinityTerm

__all__ = ["InterPodAffinity"]

_AFFINITY = ("node(s) didn't match pod affinity rules",)
_ANTI_AFFINITY = ("node(s) didn't match pod anti-affinity rules",)
_EXISTING_ANTI_AFFINITY = ("node(s) didn't satisfy existing pods anti-affinity rules",)
_NO_LABELS: Mapping[str, str] = {}

_Counts = dict[tuple[str, str], int]


def _count(counts: _Counts, node: NodeInfo, key: str) -> None:
    value = node.labels.get(key)
    if value is not None:
        counts[(key, value)] = counts.get((key, value), 0) + 1


@frozen
class InterPodAffinity:
    name = "InterPodAffinity"

    def prepare(self, cycle: Cycle) -> NodeCheck | None:
        pod, snapshot = cycle.pod, cycle.snapshot
        namespace_labels = snapshot.namespace_labels
        own_labels = namespace_labels.get(pod.namespace, _NO_LABELS)
        existing: _Counts = {}
        for node in snapshot.nodes_with_anti_affinity():
            for other in node.pods.values():
                for term in other.anti_affinity_terms:
                    if term.matches(pod.namespace, pod.labels, own_labels):
                        _count(existing, node, term.topology_key)
        affinity, anti_affinity = pod.affinity_terms, pod.anti_affinity_terms
        if not existing and not affinity and not anti_affinity:
            return None
        affinity_counts: _Counts = {}
        anti_counts: _Counts = {}
        if affinity or anti_affinity:
            for node in snapshot.nodes:
                for other in node.pods.values():
                    labels = namespace_labels.get(other.namespace, _NO_LABELS)
                    if affinity and all(
                        t.matches(other.namespace, other.labels, labels) for t in affinity
                    ):
                        for term in affinity:
                            _count(affinity_counts, node, term.topology_key)
                    for term in anti_affinity:
                        if term.matches(other.namespace, other.labels, labels):
                            _count(anti_counts, node, term.topology_key)
        first_of_group = (
            bool(affinity)
            and not affinity_counts
            and all(t.matches(pod.namespace, pod.labels, own_labels) for t in affinity)
        )

        def check(node: NodeInfo) -> tuple[str, ...]:
            labels = node.labels
            if affinity and not _satisfies_affinity(
                affinity, affinity_counts, labels, first_of_group
            ):
                return _AFFINITY
            if anti_counts:
                for term in anti_affinity:
                    value = labels.get(term.topology_key)
                    if value is not None and anti_counts.get((term.topology_key, value), 0) > 0:
                        return _ANTI_AFFINITY
            if existing:
                for pair in labels.items():
                    if existing.get(pair, 0) > 0:
                        return _EXISTING_ANTI_AFFINITY
            return FITS

        return check


def _satisfies_affinity(
    terms: tuple[AffinityTerm, ...],
    counts: _Counts,
    labels: Mapping[str, str],
    first_of_group: bool,
) -> bool:
    found = True
    for term in terms:
        value = labels.get(term.topology_key)
        if value is None:
            return False  # the node must carry every term's topology label
        if counts.get((term.topology_key, value), 0) <= 0:
            found = False
    return found or first_of_group
