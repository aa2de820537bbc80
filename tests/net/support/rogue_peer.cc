// lockmesh_rogue_peer: a hostile peer for tests of members-only Raft (core/admission.h).
//
// Connects to one node's peer port with the real transport (net/peer/peer_transport.h: TLS with
// the given certificate, the real Hello), under any node id it is told to claim, then sends
// scripted forged messages — Raft (PROPOSE, HEARTBEAT, APPEND, VOTE, ...), keepalives,
// keepalive acks, join requests — and exits. It gossips that it is a member of the target's
// cluster and its leader (gossip is no authority: the target must not care). Run by path by
// the net and cluster tests (LOCKMESH_ROGUE_PEER_BINARY); see --help.
//
// Not part of libmesh and not installed. Exit codes: 0 every message sent; 1 usage; 2 the
// target (or our own transport) refused the link; 3 no link within --timeout-ms.
#include <uv.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "lockmesh.pb.h"
#include "net/peer/peer_transport.h"
#include "net/support/sigpipe.h"

namespace {

using mesh::Status;
namespace net = mesh::net;
namespace pb = mesh::pb;

const char kHelp[] =
    "usage: lockmesh_rogue_peer --connect HOST:PORT [options] --send SPEC [--send SPEC ...]\n"
    "\n"
    "Connects to a lockmesh node's peer port with the real handshake, then sends forged\n"
    "messages, one every --gap-ms, and exits --linger-ms after the last.\n"
    "\n"
    "Identity and link:\n"
    "  --connect HOST:PORT     the node's peer address (required)\n"
    "  --cluster NAME          cluster name in the Hello (default lockmesh)\n"
    "  --node-id ID            our id: the CN of --tls-cert in mutual (default evil)\n"
    "  --claim-id ID           the id claimed in the Hello instead (e.g. a member's: mutual\n"
    "                          must refuse it at the handshake; none cannot tell)\n"
    "  --from ID               the `from` of Raft messages (default: the claimed id)\n"
    "  --security LEVEL        none, encrypt, mutual or tofu (default none)\n"
    "  --tls-cert F --tls-key F --tls-ca F   certificate files (as lockmesh node)\n"
    "  --data-dir DIR          tofu: where our known_peers goes (default: a temp dir)\n"
    "  --no-gossip             do not gossip (by default we claim membership and leadership)\n"
    "  --gossip-cluster ID     the cluster id we gossip (default: the one the target gossips;\n"
    "                          a fresh target gossips none, so name the real cluster's)\n"
    "  --gossip-term N         the term of our claim to lead (default: the target's, or the\n"
    "                          highest term we sent)\n"
    "  --timeout-ms N          wait at most N ms for the link (default 10000)\n"
    "  --gap-ms N              between two messages (default 100)\n"
    "  --linger-ms N           stay connected after the last message (default 500)\n"
    "\n"
    "Messages (--send SPEC, in order; TERM is a number, `cur` = the term the target gossips,\n"
    "or `cur+N`; Raft messages go to the target's id):\n"
    "  propose-expire:NODE            PROPOSE of ExpireNode NODE\n"
    "  propose-acquire:NODE:RESOURCE  PROPOSE of an Acquire for session (NODE, client 1)\n"
    "  heartbeat:TERM[:COMMIT]        HEARTBEAT\n"
    "  append:TERM:INDEX[:LOGTERM[:COMMIT]]\n"
    "                                 APPEND after (INDEX, LOGTERM, default TERM) of one\n"
    "                                 forged COMMAND entry (ExpireNode of --victim, default\n"
    "                                 n2) at INDEX+1, commit (default) INDEX+1\n"
    "  vote:TERM[:INDEX:LOGTERM]      VOTE (default last log 1000000 in TERM)\n"
    "  prevote:TERM[:INDEX:LOGTERM]   PRE_VOTE\n"
    "  timeout-now:TERM               TIMEOUT_NOW\n"
    "  keepalive:NODE                 Keepalive for NODE\n"
    "  keepalive-ack:NODE[:LEADER[:COUNT]]\n"
    "                                 KeepaliveAcks for NODE naming LEADER (default: the\n"
    "                                 leader the target gossips), seqs 1..COUNT (2000)\n"
    "  join:NODE[:ADDRESS]            JoinRequest for NODE\n"
    "  sleep:MS                       wait MS more before the next message\n"
    "\n"
    "Prints `link up to ID`, `target gossip: ...`, `sent SPEC` and `received ...` lines on\n"
    "stdout. Exit 0 all sent, 1 usage, 2 refused, 3 no link in time.\n";

struct Options {
  std::string connect;
  std::string cluster = "lockmesh";
  std::string node_id = "evil";
  std::string claim_id;
  std::string from;
  std::string security = "none";
  std::string cert, key, ca, data_dir;
  std::string victim = "n2";
  bool gossip = true;
  std::string gossip_cluster;
  uint64_t gossip_term = 0;
  uint64_t timeout_ms = 10000;
  uint64_t gap_ms = 100;
  uint64_t linger_ms = 500;
  std::vector<std::string> sends;
};

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) break;
    start = at + 1;
  }
  return out;
}

bool ParseU64(const std::string& s, uint64_t* v) {
  if (s.empty()) return false;
  char* end = nullptr;
  unsigned long long x = strtoull(s.c_str(), &end, 10);
  if (*end != '\0') return false;
  *v = x;
  return true;
}

class Rogue {
 public:
  Rogue(uv_loop_t* loop, Options o) : loop_(loop), o_(std::move(o)) {}

  int Run() {
    const std::string claimed = o_.claim_id.empty() ? o_.node_id : o_.claim_id;
    from_ = o_.from.empty() ? claimed : o_.from;
    net::PeerTransportOptions to;
    to.cluster = o_.cluster;
    to.node_id = claimed;
    to.listen_address = "";  // dial only
    Status st = net::ParseSecurityLevel(o_.security, &to.tls.level);
    if (!st.ok()) return Usage(st.ToString());
    // In mutual our own transport refuses a certificate whose CN is not the id we claim;
    // a rogue claiming another id presents its own certificate anyway (the TLS layer of
    // mutual and encrypt is the same; the CN check is the target's).
    if (to.tls.level == net::SecurityLevel::kMutual && !o_.claim_id.empty() &&
        o_.claim_id != o_.node_id) {
      to.tls.level = net::SecurityLevel::kEncrypt;
    }
    to.tls.cert_file = o_.cert;
    to.tls.key_file = o_.key;
    to.tls.ca_file = o_.ca;
    if (to.tls.level == net::SecurityLevel::kTofu) {
      if (o_.data_dir.empty()) {
        char tmpl[] = "/tmp/rogue-XXXXXX";
        if (mkdtemp(tmpl) == nullptr) return Usage("cannot make a temp dir");
        o_.data_dir = tmpl;
      }
      to.data_dir = o_.data_dir;
    }
    to.handshake_timeout_ms = o_.timeout_ms;
    to.log = [](const std::string& line) { fprintf(stderr, "rogue: %s\n", line.c_str()); };
    net::PeerCallbacks cb;
    cb.on_peer_up = [this](const net::PeerInfo& p) { OnUp(p); };
    cb.on_peer_down = [this](const std::string& id, const Status& why) {
      Print("link to " + id + " down: " + why.message());
      if (!done_) Finish(sent_ == o_.sends.size() ? 0 : 2);
    };
    cb.on_message = [this](const std::string& id, pb::PeerEnvelope& env) { OnMessage(env); };
    cb.on_refused = [this](const net::PeerRefusal& r) {
      Print(std::string(r.by_peer ? "refused by the target: " : "refused the target: ") + r.reason);
      Finish(2);
    };
    transport_ = std::make_unique<net::PeerTransport>(loop_, to, cb);
    st = transport_->Start();
    if (!st.ok()) {
      Print("cannot start: " + st.ToString());
      transport_.reset();  // never started: nothing to stop
      return 2;
    }
    st = transport_->Dial(o_.connect);
    if (!st.ok()) {
      Usage(st.ToString());
      Finish(1);
      uv_run(loop_, UV_RUN_DEFAULT);
      return exit_code_;
    }
    uv_timer_init(loop_, &timer_);
    timer_.data = this;
    timers_ = true;
    uv_timer_start(
        &timer_, [](uv_timer_t* t) { static_cast<Rogue*>(t->data)->OnTimeout(); }, o_.timeout_ms,
        0);
    uv_run(loop_, UV_RUN_DEFAULT);
    return exit_code_;
  }

 private:
  static void Print(const std::string& line) {
    printf("%s\n", line.c_str());
    fflush(stdout);
  }
  int Usage(const std::string& why) {
    fprintf(stderr, "lockmesh_rogue_peer: %s\n", why.c_str());
    return 1;
  }

  void OnTimeout() {
    if (target_.empty()) {
      Print("no link to " + o_.connect + " within " + std::to_string(o_.timeout_ms) + " ms");
      Finish(3);
    }
  }

  void OnUp(const net::PeerInfo& p) {
    if (!target_.empty()) return;
    target_ = p.node_id;
    Print("link up to " + p.node_id + " at " + p.address +
          (p.tls_version.empty() ? "" : " (certificate " + p.fingerprint.ToCompact() + ")"));
    // Give the target's gossip (cluster id, term, leader) a moment to arrive.
    Next(300);
  }

  void OnMessage(pb::PeerEnvelope& env) {
    switch (env.body_case()) {
      case pb::PeerEnvelope::kGossip: {
        const pb::MeshGossip& g = env.gossip();
        if (g.cluster_id() != cluster_id_ || g.term() != term_ || g.leader_id() != leader_) {
          Print("target gossip: cluster " + g.cluster_id() + ", leader " + g.leader_id() +
                ", term " + std::to_string(g.term()));
        }
        cluster_id_ = g.cluster_id();
        term_ = g.term();
        leader_ = g.leader_id();
        break;
      }
      case pb::PeerEnvelope::kRaft:
        Print("received Raft type " + std::to_string(env.raft().type()) + " term " +
              std::to_string(env.raft().term()));
        break;
      case pb::PeerEnvelope::kKeepaliveAck:
        Print("received KeepaliveAck for " + env.keepalive_ack().node_id());
        break;
      default:
        break;
    }
  }

  void Next(uint64_t delay_ms) {
    uv_timer_stop(&timer_);
    uv_timer_start(
        &timer_, [](uv_timer_t* t) { static_cast<Rogue*>(t->data)->Step(); }, delay_ms, 0);
  }

  void Step() {
    if (done_) return;
    if (o_.gossip) SendGossip();
    if (sent_ >= o_.sends.size()) {
      if (!lingered_) {
        lingered_ = true;
        Next(o_.linger_ms);
        return;
      }
      Finish(0);
      return;
    }
    const std::string spec = o_.sends[sent_++];
    uint64_t extra = 0;
    std::string error = SendOne(spec, &extra);
    if (!error.empty()) {
      fprintf(stderr, "lockmesh_rogue_peer: --send %s: %s\n", spec.c_str(), error.c_str());
      Finish(1);
      return;
    }
    Print("sent " + spec);
    Next(o_.gap_ms + extra);
  }

  void SendGossip() {
    pb::PeerEnvelope env;
    pb::MeshGossip* g = env.mutable_gossip();
    g->set_cluster_id(o_.gossip_cluster.empty() ? cluster_id_ : o_.gossip_cluster);
    g->set_leader_id(from_);
    g->set_term(std::max({term_, max_term_sent_, o_.gossip_term}));
    g->set_member(true);
    transport_->Send(target_, env);
  }

  bool Term(const std::string& s, uint64_t* v) {
    if (s == "cur") {
      *v = term_;
      return true;
    }
    if (s.rfind("cur+", 0) == 0) {
      uint64_t n = 0;
      if (!ParseU64(s.substr(4), &n)) return false;
      *v = term_ + n;
      return true;
    }
    return ParseU64(s, v);
  }

  pb::RaftMessage Raft(pb::RaftMessageType type, uint64_t term) {
    pb::RaftMessage m;
    m.set_type(type);
    m.set_from(from_);
    m.set_to(target_);
    m.set_term(term);
    max_term_sent_ = std::max(max_term_sent_, term);
    return m;
  }

  // Sends one --send SPEC; returns "" or what is wrong with it.
  std::string SendOne(const std::string& spec, uint64_t* extra_delay) {
    std::vector<std::string> f = Split(spec, ':');
    const std::string& kind = f[0];
    pb::PeerEnvelope env;
    auto need = [&](size_t lo, size_t hi) { return f.size() >= lo && f.size() <= hi; };
    if (kind == "propose-expire" && need(2, 2)) {
      pb::RaftMessage m = Raft(pb::PROPOSE, 0);
      pb::Command c;
      c.mutable_expire_node()->set_node_id(f[1]);
      pb::Entry* e = m.add_entries();
      e->set_type(pb::ENTRY_COMMAND);
      e->set_data(c.SerializeAsString());
      *env.mutable_raft() = std::move(m);
    } else if (kind == "propose-acquire" && need(3, 3)) {
      pb::RaftMessage m = Raft(pb::PROPOSE, 0);
      pb::Command c;
      c.mutable_acquire()->mutable_session()->set_node_id(f[1]);
      c.mutable_acquire()->mutable_session()->set_client_id(1);
      c.mutable_acquire()->set_seq(1);
      c.mutable_acquire()->set_resource(f[2]);
      c.mutable_acquire()->set_mode(pb::EX);
      pb::Entry* e = m.add_entries();
      e->set_type(pb::ENTRY_COMMAND);
      e->set_data(c.SerializeAsString());
      *env.mutable_raft() = std::move(m);
    } else if (kind == "heartbeat" && need(2, 3)) {
      uint64_t term = 0, commit = 0;
      if (!Term(f[1], &term)) return "bad term";
      if (f.size() == 3 && !ParseU64(f[2], &commit)) return "bad commit";
      pb::RaftMessage m = Raft(pb::HEARTBEAT, term);
      m.set_commit(commit);
      *env.mutable_raft() = std::move(m);
    } else if (kind == "append" && need(3, 5)) {
      uint64_t term = 0, index = 0, log_term = 0, commit = 0;
      if (!Term(f[1], &term)) return "bad term";
      if (!ParseU64(f[2], &index)) return "bad index";
      log_term = term;
      if (f.size() >= 4 && !Term(f[3], &log_term)) return "bad log term";
      commit = index + 1;
      if (f.size() == 5 && !ParseU64(f[4], &commit)) return "bad commit";
      pb::RaftMessage m = Raft(pb::APPEND, term);
      m.set_index(index);
      m.set_log_term(log_term);
      m.set_commit(commit);
      pb::Command c;
      c.mutable_expire_node()->set_node_id(o_.victim);
      pb::Entry* e = m.add_entries();
      e->set_term(term);
      e->set_index(index + 1);
      e->set_type(pb::ENTRY_COMMAND);
      e->set_data(c.SerializeAsString());
      *env.mutable_raft() = std::move(m);
    } else if ((kind == "vote" || kind == "prevote") && (need(2, 2) || need(4, 4))) {
      uint64_t term = 0, index = 1000000, log_term = 0;
      if (!Term(f[1], &term)) return "bad term";
      log_term = term;
      if (f.size() == 4 && (!ParseU64(f[2], &index) || !Term(f[3], &log_term))) {
        return "bad index or log term";
      }
      pb::RaftMessage m = Raft(kind == "vote" ? pb::VOTE : pb::PRE_VOTE, term);
      m.set_index(index);
      m.set_log_term(log_term);
      *env.mutable_raft() = std::move(m);
    } else if (kind == "timeout-now" && need(2, 2)) {
      uint64_t term = 0;
      if (!Term(f[1], &term)) return "bad term";
      *env.mutable_raft() = Raft(pb::TIMEOUT_NOW, term);
    } else if (kind == "keepalive" && need(2, 2)) {
      env.mutable_keepalive()->set_node_id(f[1]);
      env.mutable_keepalive()->set_seq(++seq_);
    } else if (kind == "keepalive-ack" && need(2, 4)) {
      // The node uses an ack only for a seq it sent: cover the first COUNT (seqs count up
      // from 1 per run, one per keepalive interval).
      uint64_t count = 2000;
      if (f.size() == 4 && (!ParseU64(f[3], &count) || count == 0)) return "bad count";
      const std::string leader = f.size() >= 3 && !f[2].empty() ? f[2] : leader_;
      for (uint64_t seq = 1; seq <= count; ++seq) {
        pb::PeerEnvelope ack;
        pb::KeepaliveAck* a = ack.mutable_keepalive_ack();
        a->set_node_id(f[1]);
        a->set_leader_id(leader);
        a->set_seq(seq);
        a->set_required_index(0);
        if (!transport_->Send(target_, ack)) return "the link is gone";
      }
      return "";
    } else if (kind == "join" && need(2, 3)) {
      pb::JoinRequest* j = env.mutable_join();
      j->set_node_id(f[1]);
      j->set_address(f.size() == 3 ? f[2] : "127.0.0.1:1");
      j->set_cluster_id(cluster_id_);
    } else if (kind == "sleep" && need(2, 2)) {
      if (!ParseU64(f[1], extra_delay)) return "bad delay";
      return "";
    } else {
      return "unknown message or wrong number of fields (see --help)";
    }
    if (!transport_->Send(target_, env)) return "the link is gone";
    return "";
  }

  void Finish(int code) {
    if (done_) return;
    done_ = true;
    exit_code_ = code;
    Stop();
  }

  void Stop() {
    if (timers_) {
      uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
      timers_ = false;
    }
    if (transport_) transport_->Stop([] {});
  }

  uv_loop_t* loop_;
  Options o_;
  std::unique_ptr<net::PeerTransport> transport_;
  uv_timer_t timer_;
  bool timers_ = false;
  bool done_ = false;
  bool lingered_ = false;
  int exit_code_ = 0;
  size_t sent_ = 0;
  std::string from_;
  std::string target_;
  std::string cluster_id_, leader_;
  uint64_t term_ = 0;
  uint64_t max_term_sent_ = 0;
  uint64_t seq_ = 1u << 30;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) {
        fprintf(stderr, "lockmesh_rogue_peer: %s needs a value\n", a.c_str());
        exit(1);
      }
      *out = argv[++i];
    };
    auto number = [&](uint64_t* out) {
      std::string s;
      value(&s);
      if (!ParseU64(s, out)) {
        fprintf(stderr, "lockmesh_rogue_peer: %s: not a number: %s\n", a.c_str(), s.c_str());
        exit(1);
      }
    };
    std::string s;
    if (a == "--help" || a == "-h") {
      fputs(kHelp, stdout);
      return 0;
    } else if (a == "--connect") {
      value(&o.connect);
    } else if (a == "--cluster") {
      value(&o.cluster);
    } else if (a == "--node-id") {
      value(&o.node_id);
    } else if (a == "--claim-id") {
      value(&o.claim_id);
    } else if (a == "--from") {
      value(&o.from);
    } else if (a == "--security") {
      value(&o.security);
    } else if (a == "--tls-cert") {
      value(&o.cert);
    } else if (a == "--tls-key") {
      value(&o.key);
    } else if (a == "--tls-ca") {
      value(&o.ca);
    } else if (a == "--data-dir") {
      value(&o.data_dir);
    } else if (a == "--victim") {
      value(&o.victim);
    } else if (a == "--no-gossip") {
      o.gossip = false;
    } else if (a == "--gossip-cluster") {
      value(&o.gossip_cluster);
    } else if (a == "--gossip-term") {
      number(&o.gossip_term);
    } else if (a == "--timeout-ms") {
      number(&o.timeout_ms);
    } else if (a == "--gap-ms") {
      number(&o.gap_ms);
    } else if (a == "--linger-ms") {
      number(&o.linger_ms);
    } else if (a == "--send") {
      value(&s);
      o.sends.push_back(s);
    } else {
      fprintf(stderr, "lockmesh_rogue_peer: unknown argument %s (see --help)\n", a.c_str());
      return 1;
    }
  }
  if (o.connect.empty()) {
    fprintf(stderr, "lockmesh_rogue_peer: --connect HOST:PORT is required (see --help)\n");
    return 1;
  }
  mesh::net::IgnoreSigpipe();
  uv_loop_t loop;
  uv_loop_init(&loop);
  int code = 0;
  {
    Rogue rogue(&loop, o);
    code = rogue.Run();
    uv_run(&loop, UV_RUN_DEFAULT);  // close callbacks
  }
  uv_loop_close(&loop);
  return code;
}
