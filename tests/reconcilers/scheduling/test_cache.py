"""The scheduler cache: assumed pods hold their room until confirmed or forgotten, the
informer's word wins, pods on unknown nodes wait as ghosts, and node and Lease changes report
whether they may help pods that did not fit."""

from __future__ import annotations

from engenho.reconcilers.scheduling import NodeReadiness, SchedulerCache, pod_info

from .objects import NOW, lease, node, pod


def test_an_assumed_pod_holds_its_room_until_forgotten() -> None:
    cache = SchedulerCache()
    cache.set_node(node("a", cpu="2"))
    incoming = pod_info(pod("p", cpu="2"))
    cache.assume(incoming, "a")
    info = cache.snapshot.node("a")
    assert info is not None and info.req_cpu == 2000
    assert cache.is_assumed("uid-p") and cache.is_placed("uid-p")
    cache.forget("uid-p")
    assert info.req_cpu == 0 and not cache.is_placed("uid-p")


def test_confirmation_replaces_the_assumption_and_survives_forget() -> None:
    cache = SchedulerCache()
    cache.set_node(node("a", cpu="2"))
    cache.set_node(node("b", cpu="2"))
    cache.assume(pod_info(pod("p", cpu="1")), "a")
    # The informer shows it bound elsewhere (someone else won): the informer is the truth.
    cache.add_pod(pod_info(pod("p", cpu="1", node_name="b")))
    a, b = cache.snapshot.node("a"), cache.snapshot.node("b")
    assert a is not None and b is not None
    assert (a.req_cpu, b.req_cpu) == (0, 1000)
    assert not cache.is_assumed("uid-p")
    cache.forget("uid-p")  # a late failed binding must not drop a confirmed pod
    assert b.req_cpu == 1000
    assert cache.remove_pod("uid-p") and b.req_cpu == 0
    assert not cache.remove_pod("uid-p")


def test_a_binding_is_confirmed_without_parsing_only_if_nothing_else_changed() -> None:
    cache = SchedulerCache()
    cache.set_node(node("a", cpu="2"))
    cache.assume(pod_info(pod("p", cpu="1")), "a", resource_version=7)
    assert not cache.confirm("uid-p", "b", 7)  # bound elsewhere: parse and add instead
    assert not cache.confirm("uid-p", "a", 8)  # changed since the decision
    assert cache.is_assumed("uid-p")
    assert cache.confirm("uid-p", "a", 7)
    assert cache.is_placed("uid-p") and not cache.is_assumed("uid-p")
    assert not cache.confirm("uid-p", "a", 7)  # only once


def test_pods_on_unknown_nodes_count_once_the_node_appears() -> None:
    cache = SchedulerCache()
    cache.add_pod(pod_info(pod("p", cpu="1", node_name="late")))
    assert cache.snapshot.node("late") is None and len(cache.snapshot) == 0
    cache.set_node(node("late", cpu="4"))
    info = cache.snapshot.node("late")
    assert info is not None and info.req_cpu == 1000
    cache.remove_node("late")
    assert cache.snapshot.node("late") is None
    cache.set_node(node("late", cpu="4"))
    assert cache.snapshot.node("late") is info and info.req_cpu == 1000


def test_node_changes_that_may_help_are_reported() -> None:
    cache = SchedulerCache()
    assert cache.set_node(node("a"))  # a new node
    assert not cache.set_node(node("a"))  # a heartbeat: nothing a pod cares about
    assert cache.set_node(node("a", cpu="8"))
    assert cache.set_node(node("a", cpu="8", ready="False"))
    assert cache.set_node(node("a", cpu="8", labels={"zone": "z1"}))


def test_a_lease_coming_back_to_life_is_reported() -> None:
    cache = SchedulerCache(NodeReadiness())
    cache.set_node(node("a"))
    assert not cache.set_lease("a", lease("a", NOW - 100), NOW)  # first seen, and stale
    info = cache.snapshot.node("a")
    assert info is not None and info.lease_expires == NOW - 60
    assert cache.snapshot.leased == 1
    assert cache.set_lease("a", lease("a", NOW), NOW)  # renewed: ready again
    assert not cache.set_lease("a", lease("a", NOW + 10), NOW)  # still fresh
    cache.set_lease("a", lease("a", NOW - 100), NOW)
    assert cache.remove_lease("a", NOW)  # no Lease: the Ready condition decides again
    assert cache.snapshot.leased == 0
    after = cache.snapshot.node("a")
    assert after is not None and after.lease_expires is None


def test_a_lease_seen_before_its_node_applies_when_the_node_arrives() -> None:
    cache = SchedulerCache()
    cache.set_lease("a", lease("a", NOW), NOW)
    cache.set_node(node("a"))
    info = cache.snapshot.node("a")
    assert info is not None and info.lease_expires == NOW + 40


def test_leases_can_be_ignored() -> None:
    cache = SchedulerCache(NodeReadiness(use_leases=False))
    cache.set_node(node("a"))
    assert not cache.set_lease("a", lease("a", NOW - 100), NOW)
    info = cache.snapshot.node("a")
    assert info is not None and info.lease_expires is None
