"""Replication: how a command becomes committed.

Today a node is a Raft group of one voter (:class:`SingleVoter`). The Raft core and its ZeroMQ
transport will implement the same :class:`Proposer` protocol, so nothing above this package
changes when a cluster grows (DESIGN.md rule 4).
"""

from engenho.replication.proposer import Proposer
from engenho.replication.single_voter import SingleVoter

__all__ = ["Proposer", "SingleVoter"]
