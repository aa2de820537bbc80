// core/join_choice: which cluster a fresh node joins, and which peer it then trusts to send
// it the log (rule R3a of core/admission.h) — a pure decision from its peers' gossip.
//
// A fresh node (no configuration) has no member to ask who leads: all it has is what the
// peers it is connected to say in their gossip (pb::MeshGossip: a cluster id, the leader they
// follow, its term). Any peer that may connect can say anything, so the decision rests on
// what peers say about *others*, never on what a peer says about itself:
//
//  C1 The cluster: the cluster id gossiped by the most peers in view. A cluster chosen before
//     (`previous_cluster_id`) is kept while any peer of it is in view, so that a node does not
//     flap between two clusters of one name. A tie between clusters is not broken: the node
//     waits (and says so) — breaking it by id or arrival order would let a peer with one
//     link pick the cluster.
//  C2 The leader: the peer named as leader by more than half of the cluster's other peers in
//     view — other than the candidate and than peers claiming to lead themselves; a peer
//     that names nobody (as during an election) counts against. A peer's claim that it
//     leads itself counts for nothing, either way: a peer that claims to lead a cluster it
//     does not belong to is exactly the attacker this rule is for; and a peer naming an
//     accomplice while the real peers name nobody carries nothing. Short of exactly one
//     such leader the node waits (a gossip round when the leadership moves; longer only if
//     someone lies).
//  C3 A lone peer: when the cluster has one peer in view and nobody names a leader, that peer
//     is the target (a cluster of one, or one reached through a single node: the normal
//     way a cluster forms, the lowest id bootstrapping alone and the others joining it).
//     With two or more peers of the cluster in view and nobody named by another, the node
//     waits for a leader to be named.
//
// The target is the chosen leader if it is in view, else the lowest-id peer that names it
// (who forwards the JoinRequest, rule R5, and whose gossip then vouches for the leader, R3a).
//
// Limits (docs/mesh.md, "Who may speak"): a fresh node trusts the majority of what it can
// see. A peer that is the only one of the cluster in view (C3) is trusted on first sight,
// and peers of one attacker that outnumber the real cluster's peers in view win C1 and C2.
// Under --security mutual every one of them needs its own CA-signed certificate; under tofu
// and none identities are free, as those levels document.
//
// Threading: pure functions.
#ifndef LOCKMESH_CORE_JOIN_CHOICE_H_
#define LOCKMESH_CORE_JOIN_CHOICE_H_

#include <cstdint>
#include <map>
#include <string>

namespace mesh::core {

/// What one connected peer last said in its gossip, as the driver recorded it per
/// authenticated link id.
struct JoinGossip {
  /// The peer's cluster id; "" if the peer is fresh too.
  std::string cluster_id;
  /// The leader the peer follows ("" if none), and that leader's term.
  std::string leader_id;
  uint64_t term = 0;
};

/// The outcome of ChooseJoin. Plain data.
struct JoinChoice {
  /// The cluster to join; "" if no peer in view belongs to one (the caller may bootstrap).
  std::string cluster_id;
  /// The peer to send the JoinRequest to, and the only one whose gossip names the leader
  /// this node takes leader traffic from (AdmissionView::join_targets). "" to wait.
  std::string target;
  /// The leader the choice rests on (C2), or "" (C3, or waiting).
  std::string leader;
  /// In words, for the log: how the target was chosen, or why the node waits.
  std::string reason;
};

/// Rules C1-C3. `self_id` is this node's id (a peer naming it is ignored); `peers` the
/// latest gossip of every connected peer, by link id (this node's own entry, if any, is
/// ignored); `previous_cluster_id` the cluster chosen at the last call ("" if none).
JoinChoice ChooseJoin(const std::string& self_id, const std::map<std::string, JoinGossip>& peers,
                      const std::string& previous_cluster_id);

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_JOIN_CHOICE_H_
