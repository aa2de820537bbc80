// mesh::AsyncClient (mesh/client.h): one connection to a node and its session. Connecting
// and the hello, requests and their answers over the framed stream, the answer backstop
// (LockGiveUpMs) and the client lease. The public functions, the translation of answers into
// the public types and the synchronous Client are in client.cc.
#include <uv.h>

#include <algorithm>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <variant>
#include <vector>

#include "core/lease/client_lease.h"
#include "lockmesh.pb.h"
#include "mesh/client.h"
#include "net/local/client_internal.h"
#include "net/local/framed_stream.h"
#include "net/local/protocol.h"
#include "net/support/lease_clock.h"

namespace mesh {
namespace {

using net::CheckNodeCredentials;
using net::FramedStream;
using net::LockInfoFromReply;
using net::NodeStatusFromReply;
using net::StatusFromResult;

// Microseconds of the clock the node's lease runs on (net/support/lease_clock.h).
uint64_t NowUs() { return net::LeaseClockUs(); }

// "2 s", "2.5 s", "0.25 s": a duration in ms for a message.
std::string MillisText(int64_t ms) {
  std::string text = std::to_string(ms / 1000);
  if (int64_t frac = ms % 1000; frac != 0) {
    std::string digits = std::to_string(1000 + frac).substr(1);
    while (digits.back() == '0') digits.pop_back();
    text += "." + digits;
  }
  return text + " s";
}

class AsyncClientImpl final : public AsyncClient {
 public:
  AsyncClientImpl(uv_loop_t* loop, ClientOptions options)
      : loop_(loop), options_(std::move(options)) {
    if (options_.socket_path.empty()) options_.socket_path = DefaultSocketPath();
    uv_timer_init(loop_, &timer_);
    timer_.data = this;
    uv_timer_init(loop_, &renew_timer_);
    renew_timer_.data = this;
    uv_timer_init(loop_, &lease_timer_);
    lease_timer_.data = this;
    uv_timer_init(loop_, &answer_timer_);
    answer_timer_.data = this;
  }

  void Connect(DoneCallback done) override {
    if (stream_ || closed_) {
      done(Status::InvalidArgument("Connect called twice"));
      return;
    }
    connect_done_ = std::move(done);
    stream_ = new FramedStream(loop_, net::kMaxClientFrameBytes);
    // Set now: a failed connect closes the stream before Start, and stream_ must be
    // forgotten when it is freed.
    stream_->SetCloseHandler([this](const Status& why) { OnStreamClosed(why); });
    connect_req_.data = this;
    uv_pipe_connect(&connect_req_, stream_->pipe(), options_.socket_path.c_str(), OnConnect);
    if (options_.connect_timeout_ms > 0) {
      uv_timer_start(&timer_, OnConnectTimeout, static_cast<uint64_t>(options_.connect_timeout_ms), 0);
    }
  }

  void Lock(const std::string& resource, const LockOptions& options, LockCallback done) override {
    pb::ClientRequest req;
    auto* lock = req.mutable_lock();
    lock->set_resource(resource);
    lock->set_mode(static_cast<pb::LockMode>(options.mode));
    lock->set_quantity(options.quantity);
    lock->set_timeout_ms(options.timeout_ms);
    lock->set_no_create(options.no_create);
    lock->set_idle_lifespan_ms(options.idle_lifespan_ms);
    // The client's own deadline, for a grant held back by the client lease (the node's
    // deadline started later, when it read the request); a try-lock's is the node's answer
    // bound without a quorum.
    const uint64_t now = NowUs();
    const int64_t deadline_ms = options.timeout_ms > 0    ? options.timeout_ms
                                : options.timeout_ms == 0 ? kNodeCommitWaitMs
                                                          : -1;
    const uint64_t deadline_us =
        deadline_ms > 0 ? now + static_cast<uint64_t>(deadline_ms) * 1000 : 0;
    // The backstop: when the client stops waiting for the node's answer at all.
    const int64_t give_up_ms = LockGiveUpMs(options.timeout_ms);
    const uint64_t give_up_us =
        give_up_ms >= 0 ? now + static_cast<uint64_t>(give_up_ms) * 1000 : 0;
    const uint64_t id =
        Send(&req, PendingLock{resource, std::move(done), deadline_us, give_up_us, give_up_ms});
    if (id != 0 && give_up_us != 0) {
      give_ups_.emplace(give_up_us, id);
      if (give_ups_.begin()->second == id) ArmAnswerTimer();
    }
  }

  void Unlock(const mesh::Lock& lock, bool rollback, DoneCallback done) override {
    pb::ClientRequest req;
    req.mutable_unlock()->set_lock_id(lock.lock_id);
    req.mutable_unlock()->set_rollback(rollback);
    held_.erase(lock.lock_id);
    Send(&req, PendingDone{std::move(done)});
  }

  void SetLostCallback(LostCallback lost) override { lost_ = std::move(lost); }

  void GetStatus(std::function<void(const Status&, const NodeStatus&)> done) override {
    pb::ClientRequest req;
    req.mutable_status();
    Send(&req, PendingStatus{std::move(done)});
  }

  void ListLocks(std::function<void(const Status&, const std::vector<LockInfo>&)> done) override {
    auto rows = std::make_shared<std::vector<LockInfo>>();
    ListLocks(
        ListLocksOptions{},
        [rows](const std::vector<LockInfo>& page) {
          rows->insert(rows->end(), page.begin(), page.end());
          return true;
        },
        [rows, done = std::move(done)](const Status& st) {
          if (!done) return;
          if (!st.ok()) rows->clear();
          done(st, *rows);
        });
  }

  void ListLocks(const ListLocksOptions& options, ListPageCallback page,
                 DoneCallback done) override {
    auto listing = std::make_shared<Listing>();
    listing->options = options;
    listing->page = std::move(page);
    listing->done = std::move(done);
    SendListPage(std::move(listing));
  }

  void Shutdown(bool immediate, DoneCallback done) override {
    pb::ClientRequest req;
    req.mutable_shutdown()->set_immediate(immediate);
    Send(&req, PendingDone{std::move(done)});
  }

  void Close(std::function<void()> done) override {
    if (closed_) return;
    closed_ = true;
    user_closed_ = true;
    close_done_ = std::move(done);
    uv_timer_stop(&timer_);
    StopLeaseTimers();
    if (stream_) {
      stream_->Close(Status::OK());  // OnStreamClosed finishes
    } else {
      CloseTimer();
    }
  }

  bool connected() const override { return connected_; }

 private:
  struct PendingLock {
    std::string resource;
    LockCallback done;
    uint64_t deadline_us = 0;  // NowUs() when a held-back grant is given back; 0: none
    uint64_t give_up_us = 0;   // NowUs() when the client gives up on the node; 0: never
    int64_t give_up_ms = -1;   // the same, after the call (LockGiveUpMs)
  };
  struct PendingDone {
    DoneCallback done;
  };
  struct PendingStatus {
    std::function<void(const Status&, const NodeStatus&)> done;
  };
  // A listing in progress: one page request outstanding at a time (ListLocks).
  struct Listing {
    ListLocksOptions options;
    ListPageCallback page;
    DoneCallback done;
    pb::ListCursor after;  // where the next page starts (unset: the beginning)
  };
  struct PendingList {
    std::shared_ptr<Listing> listing;
  };
  struct PendingHello {};
  using Pending = std::variant<PendingLock, PendingDone, PendingStatus, PendingList, PendingHello>;

  // Asks for the page of `listing` after listing->after.
  void SendListPage(std::shared_ptr<Listing> listing) {
    pb::ClientRequest req;
    pb::ListLocksRequest* l = req.mutable_list_locks();
    l->set_paged(true);
    *l->mutable_after() = listing->after;
    l->set_prefix(listing->options.prefix);
    l->set_node_id(listing->options.node_id);
    l->set_max_rows(listing->options.page_rows);
    Send(&req, PendingList{std::move(listing)});
  }

  // Sends `req` and keeps `pending` until its answer; returns the request id, or 0 when not
  // connected (`pending` has then failed).
  uint64_t Send(pb::ClientRequest* req, Pending pending) {
    if (!connected_ && !std::holds_alternative<PendingHello>(pending)) {
      Fail(std::move(pending), Status::Unavailable("not connected to a node"));
      return 0;
    }
    uint64_t id = ++next_request_id_;
    req->set_request_id(id);
    pending_.emplace(id, std::move(pending));
    stream_->Send(*req);
    return id;
  }

  static void Fail(Pending&& pending, const Status& why) {
    std::visit(
        [&](auto& p) {
          using T = std::decay_t<decltype(p)>;
          if constexpr (std::is_same_v<T, PendingLock>) {
            if (p.done) p.done(why, mesh::Lock{});
          } else if constexpr (std::is_same_v<T, PendingDone>) {
            if (p.done) p.done(why);
          } else if constexpr (std::is_same_v<T, PendingStatus>) {
            if (p.done) p.done(why, NodeStatus{});
          } else if constexpr (std::is_same_v<T, PendingList>) {
            if (p.listing && p.listing->done) p.listing->done(why);
          }
        },
        pending);
  }

  static void OnConnectTimeout(uv_timer_t* t) {
    auto* self = static_cast<AsyncClientImpl*>(t->data);
    if (self->connected_ || !self->stream_) return;
    const std::string within =
        " within " + std::to_string(self->options_.connect_timeout_ms) + " ms";
    // A node that took the connection is there, only not answering: not "no node" (which
    // would have `lockmesh lock` start another one beside it).
    self->FinishConnect(self->pipe_connected_
                            ? Status::TimedOut("the node at " + self->options_.socket_path +
                                               " accepted the connection but did not answer" +
                                               within + " (node frozen or stuck)")
                            : Status::Unavailable("node at " + self->options_.socket_path +
                                                  " did not answer" + within));
  }

  static void OnConnect(uv_connect_t* req, int status) {
    auto* self = static_cast<AsyncClientImpl*>(req->data);
    if (self->closed_ || !self->connect_done_) return;
    if (status != 0) {
      std::string why = status == UV_ENOENT ? "no node is running at "
                        : status == UV_ECONNREFUSED ? "no node is listening at "
                        : status == UV_EACCES ? "permission denied on "
                                               : "cannot connect to ";
      Status st = status == UV_EACCES
                      ? Status::PermissionDenied(why + self->options_.socket_path +
                                                 " (the socket belongs to another user)")
                      : Status::Unavailable(why + self->options_.socket_path + " (" +
                                            uv_strerror(status) + ")");
      self->FinishConnect(st);
      return;
    }
    self->pipe_connected_ = true;
    // Before anything is sent: is this node one we may talk to? (docs/mesh.md "The local
    // boundary": another user who owns the socket's directory could have put theirs there.)
    if (Status cred = CheckNodeCredentials(self->stream_->pipe(), self->options_); !cred.ok()) {
      self->FinishConnect(cred);
      return;
    }
    self->stream_->Start([self](std::string_view body) { return self->OnFrame(body); },
                         [self](const Status& why) { self->OnStreamClosed(why); });
    pb::ClientRequest hello;
    hello.mutable_hello()->set_protocol_version(net::kClientProtocolVersion);
    hello.mutable_hello()->set_client_name(self->options_.client_name);
    self->Send(&hello, PendingHello{});
  }

  // Ends a connect attempt; on failure the stream is closed and the client stays unusable.
  void FinishConnect(const Status& st) {
    uv_timer_stop(&timer_);
    DoneCallback cb = std::move(connect_done_);
    connect_done_ = nullptr;
    if (st.ok()) {
      connected_ = true;
    } else if (stream_ && !stream_->closing()) {
      stream_->Close(st);
    }
    if (cb) cb(st);
  }

  Status OnFrame(std::string_view body) {
    pb::ClientResponse resp;
    if (!resp.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
      return Status::InvalidArgument("node sent a malformed message");
    }
    if (resp.has_event()) {
      HandleEvent(resp.event());
      return Status::OK();
    }
    if (resp.has_lease()) {
      OnLeaseReply(resp.lease());
      return Status::OK();
    }
    auto it = pending_.find(resp.request_id());
    if (it == pending_.end()) return Status::OK();  // answer to a request we gave up on
    Pending pending = std::move(it->second);
    pending_.erase(it);
    if (const auto* lock = std::get_if<PendingLock>(&pending)) {
      ForgetGiveUp(lock->give_up_us, resp.request_id());
    }
    if (resp.has_error()) {
      Status st = Status::InvalidArgument(resp.error());
      if (std::holds_alternative<PendingHello>(pending)) {
        FinishConnect(Status::PermissionDenied(resp.error()));
      } else {
        Fail(std::move(pending), st);
      }
      return Status::OK();
    }
    std::visit([&](auto& p) { Deliver(p, resp); }, pending);
    return Status::OK();
  }

  void Deliver(PendingHello&, const pb::ClientResponse& resp) {
    if (!resp.has_hello()) {
      FinishConnect(Status::InvalidArgument("node answered hello with something else"));
      return;
    }
    const pb::HelloReply& hello = resp.hello();
    if (hello.lease_renew_ms() > 0 && stream_) {
      core::lease::ClientLeaseOptions lo;
      if (hello.lease_drift_ppm() > 0) lo.max_drift = hello.lease_drift_ppm() / 1e6;
      if (hello.lease_margin_us() > 0) lo.margin = hello.lease_margin_us();
      lease_ = std::make_unique<core::lease::ClientLease>(lo);
      lease_renew_ms_ = hello.lease_renew_ms();
      // The first renewal goes out now, ahead of the caller's first request: its answer
      // comes before any grant, so a lock costs no extra round trip.
      SendLeaseRequest();
      uv_timer_start(&renew_timer_, OnRenewTimer, lease_renew_ms_, lease_renew_ms_);
    }
    FinishConnect(Status::OK());
  }

  void Deliver(PendingLock& p, const pb::ClientResponse& resp) {
    mesh::Lock lock;
    lock.resource = p.resource;
    if (!resp.has_result()) {
      if (p.done) p.done(Status::Internal("node answered a lock request with something else"), lock);
      return;
    }
    const pb::CommandResult& r = resp.result();
    if (r.code() == pb::GRANTED && lease_ && !lease_->Valid(NowUs())) {
      // The node vouched for the grant when it sent it, but this client cannot tell
      // whether that is still true: hold it until a renewal (answered after the grant, on
      // this connection) makes the lease hold again.
      held_back_.push_back(HeldBack{std::move(p), r});
      RequestLeaseSoon();
      ArmLeaseTimer();
      return;
    }
    Status st = StatusFromResult(r);
    if (st.ok() && r.code() != pb::GRANTED) {
      // Only a grant answers a lock request with success (CANCELLED: withdrawn by an unlock).
      st = Status::Unavailable(r.message().empty() ? "lock request withdrawn" : r.message());
    }
    if (st.ok()) {
      lock.lock_id = r.lock_id();
      lock.token = r.token();
      lock.element = r.element();
      held_[lock.lock_id] = lock;
    }
    if (p.done) p.done(st, lock);
  }

  void Deliver(PendingDone& p, const pb::ClientResponse& resp) {
    Status st = resp.has_result() ? StatusFromResult(resp.result()) : Status::OK();
    if (p.done) p.done(st);
  }

  void Deliver(PendingStatus& p, const pb::ClientResponse& resp) {
    if (p.done) p.done(Status::OK(), NodeStatusFromReply(resp.status()));
  }

  void Deliver(PendingList& p, const pb::ClientResponse& resp) {
    std::shared_ptr<Listing> listing = std::move(p.listing);
    if (!resp.has_locks()) {
      if (listing->done) {
        listing->done(Status::Internal("node answered a listing with something else"));
      }
      return;
    }
    const pb::ListLocksReply& reply = resp.locks();
    // A node before paging answers with everything and no `more`. A cursor must move on,
    // or a confused node would keep this client asking for ever.
    const pb::ListCursor& next = reply.next();
    const pb::ListCursor& after = listing->after;
    const bool more = reply.more();
    if (more && std::make_tuple(next.queue(), next.resource(), next.lock_id()) <=
                    std::make_tuple(after.queue(), after.resource(), after.lock_id())) {
      if (listing->done) listing->done(Status::Internal("node's listing did not move on"));
      return;
    }
    std::vector<LockInfo> out;
    out.reserve(reply.locks_size());
    for (const auto& l : reply.locks()) out.push_back(LockInfoFromReply(l));
    bool go_on = true;
    if (!out.empty() && listing->page) go_on = listing->page(out);
    if (go_on && more) {
      listing->after = next;
      SendListPage(std::move(listing));  // fails the listing if `page` closed the client
      return;
    }
    if (listing->done) listing->done(Status::OK());
  }

  void HandleEvent(const pb::LockEvent& ev) {
    if (ev.code() != pb::LOST) return;
    for (auto h = held_back_.begin(); h != held_back_.end(); ++h) {
      if (h->result.lock_id() != ev.lock_id()) continue;
      // Lost before this client could use it: the lock request fails.
      HeldBack lost = std::move(*h);
      held_back_.erase(h);
      if (lost.pending.done) {
        lost.pending.done(Status::Lost(ev.message().empty() ? "lock lost" : ev.message()),
                          mesh::Lock{});
      }
      return;
    }
    auto it = held_.find(ev.lock_id());
    if (it == held_.end()) return;
    mesh::Lock lock = it->second;
    held_.erase(it);
    if (lost_) lost_(lock, Status::Lost(ev.message().empty() ? "lock lost" : ev.message()));
  }

  void OnStreamClosed(const Status& why) {
    stream_ = nullptr;
    connected_ = false;
    if (connect_done_) {
      FinishConnect(why.ok() ? Status::Unavailable("connection closed") : why);
    }
    Status fail = why.ok() ? Status::Unavailable("client closed") : Status::Unavailable(
                                                                         "connection to node lost: " + why.message());
    StopLeaseTimers();
    give_ups_.clear();
    auto pending = std::move(pending_);
    pending_.clear();
    for (auto& [id, p] : pending) Fail(std::move(p), fail);
    auto held_back = std::move(held_back_);
    held_back_.clear();
    for (auto& h : held_back) Fail(std::move(h.pending), fail);
    // Locks are held only once connected; after a Close they are released, not lost.
    if (!user_closed_) {
      auto held = std::move(held_);
      held_.clear();
      for (auto& [id, lock] : held) {
        if (lost_) lost_(lock, Status::Lost("connection to the node was lost (" + why.message() + ")"));
      }
    }
    if (closed_) CloseTimer();
  }

  // Idempotent: a pending request failed by a lost connection may call Close() from inside
  // OnStreamClosed, which then closes the timers too. `done` runs once all four are closed.
  void CloseTimer() {
    if (timer_closing_) return;
    timer_closing_ = true;
    timers_open_ = 4;
    auto on_closed = [](uv_handle_t* h) {
      auto* self = static_cast<AsyncClientImpl*>(h->data);
      if (--self->timers_open_ > 0) return;
      auto done = std::move(self->close_done_);
      if (done) done();
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&renew_timer_), on_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&lease_timer_), on_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&answer_timer_), on_closed);
  }

  // ------------------------------------------------------------ the answer backstop

  // Drops the backstop of lock request `id`, answered (give_up_us: its PendingLock's).
  void ForgetGiveUp(uint64_t give_up_us, uint64_t id) {
    if (give_up_us == 0) return;
    auto [lo, hi] = give_ups_.equal_range(give_up_us);
    for (auto g = lo; g != hi; ++g) {
      if (g->second == id) {
        give_ups_.erase(g);
        return;
      }
    }
  }

  // Arms answer_timer_ for the earliest backstop (the timer is left armed for an answered
  // one: it then finds nothing due and re-arms).
  void ArmAnswerTimer() {
    if (timer_closing_) return;
    if (give_ups_.empty()) {
      uv_timer_stop(&answer_timer_);
      return;
    }
    const uint64_t due = give_ups_.begin()->first;
    const uint64_t now = NowUs();
    const uint64_t delay_ms = due > now ? (due - now + 999) / 1000 : 1;  // as ArmLeaseTimer
    uv_timer_start(&answer_timer_, OnAnswerTimer, delay_ms, 0);
  }

  static void OnAnswerTimer(uv_timer_t* t) {
    static_cast<AsyncClientImpl*>(t->data)->GiveUpIfDue();
  }

  // Lock requests the node has not answered by their give_up_us: the node is frozen, stuck
  // or its answer was lost, and the client cannot tell whether it will grant them later.
  // So the connection is closed: the node ends the session once it runs again, which
  // releases a late grant, and no answer of the old session can reach a later request.
  // The requests fail with Unavailable; the session's held locks are reported lost.
  void GiveUpIfDue() {
    const uint64_t now = NowUs();
    std::vector<PendingLock> expired;
    while (!give_ups_.empty() && give_ups_.begin()->first <= now) {
      const uint64_t id = give_ups_.begin()->second;
      give_ups_.erase(give_ups_.begin());
      auto it = pending_.find(id);
      if (it == pending_.end() || !std::holds_alternative<PendingLock>(it->second)) continue;
      expired.push_back(std::get<PendingLock>(std::move(it->second)));
      pending_.erase(it);
    }
    if (expired.empty()) {
      ArmAnswerTimer();
      return;
    }
    connected_ = false;  // from now on calls fail at once; OnStreamClosed fails the rest
    if (stream_ && !stream_->closing()) {
      stream_->Close(
          Status::Unavailable("gave up on the node: it did not answer a lock "
                              "request in time"));
    }
    // Said now, not once the close completes: a synchronous Client may not run its loop
    // again before its next call, and the work these locks guard must stop now.
    auto held = std::move(held_);
    held_.clear();
    for (auto& [id, lock] : held) {
      if (lost_) {
        lost_(lock, Status::Lost("the node at " + options_.socket_path +
                                 " did not answer a lock request in time (node frozen or "
                                 "stuck); this client closed the connection, which releases "
                                 "its locks"));
      }
    }
    for (PendingLock& p : expired) {
      if (!p.done) continue;
      mesh::Lock none;
      none.resource = p.resource;
      p.done(Status::Unavailable("the node at " + options_.socket_path +
                                 " did not answer the lock request for " + p.resource + " within " +
                                 MillisText(p.give_up_ms) +
                                 " (node frozen or stuck); gave up and closed the connection, so "
                                 "the node releases whatever it grants later"),
             none);
    }
  }

  // ------------------------------------------------------------ the client lease

  void StopLeaseTimers() {
    if (timer_closing_) return;
    uv_timer_stop(&renew_timer_);
    uv_timer_stop(&lease_timer_);
  }

  void SendLeaseRequest() {
    if (!lease_ || !stream_ || stream_->closing()) return;
    // The send time is read before the request is written: the lease counts from it.
    const uint64_t now = NowUs();
    pb::ClientRequest req;
    req.set_request_id(++next_request_id_);
    req.mutable_lease()->set_seq(lease_->MakeRequest(now));
    last_lease_request_us_ = now;
    stream_->Send(req);
  }

  // A held-back grant waits for a renewal: ask now unless one was sent a moment ago (its
  // answer, coming after the grant, serves as well).
  void RequestLeaseSoon() {
    // Replies forget every older request, so when any is outstanding the newest one is.
    if (lease_->outstanding() == 0 || NowUs() - last_lease_request_us_ >= kLeaseRequestSpacingUs) {
      SendLeaseRequest();
    }
  }

  static void OnRenewTimer(uv_timer_t* t) {
    static_cast<AsyncClientImpl*>(t->data)->SendLeaseRequest();
  }

  static void OnLeaseTimer(uv_timer_t* t) { static_cast<AsyncClientImpl*>(t->data)->CheckLease(); }

  void OnLeaseReply(const pb::LeaseReply& reply) {
    if (!lease_) return;
    lease_->OnReply(reply.seq(), reply.remaining_us());
    CheckLease();
  }

  // Runs after every renewal and when the lease timer fires: reports a lapse, delivers
  // held-back grants the lease now covers, times out those past their deadline.
  void CheckLease() {
    if (!lease_ || !stream_ || stream_->closing()) return;
    const uint64_t now = NowUs();
    if (lease_->Lapsed(now) && !held_.empty()) {
      LoseAllForLapse();
      return;
    }
    if (lease_->Valid(now) && !held_back_.empty()) {
      // One at a time: a callback may close the client, and OnStreamClosed then fails
      // the ones still held back.
      while (!held_back_.empty() && stream_ && !stream_->closing()) {
        HeldBack h = std::move(held_back_.front());
        held_back_.pop_front();
        pb::ClientResponse resp;
        *resp.mutable_result() = h.result;
        Deliver(h.pending, resp);
      }
      if (!stream_ || stream_->closing()) return;
    } else if (!held_back_.empty()) {
      // As the node does with a queued request whose deadline passed: answer TIMED_OUT, and
      // give the lock back (it was granted, so the node's cancel would find nothing).
      for (auto it = held_back_.begin(); it != held_back_.end();) {
        if (it->pending.deadline_us == 0 || now < it->pending.deadline_us) {
          ++it;
          continue;
        }
        HeldBack h = std::move(*it);
        it = held_back_.erase(it);
        pb::ClientRequest req;
        req.mutable_unlock()->set_lock_id(h.result.lock_id());
        Send(&req, PendingDone{nullptr});
        if (h.pending.done) {
          h.pending.done(Status::TimedOut("timed out waiting for " + h.pending.resource +
                                          " (granted, but this client's lease could not be "
                                          "renewed in time to use it)"),
                         mesh::Lock{});
        }
        if (!stream_ || stream_->closing()) return;  // the callback closed the client
      }
    }
    ArmLeaseTimer();
  }

  // The lease ended with locks held: the node did not renew it in time (frozen, cut off
  // from the cluster, or too slow). Another node may be granted them soon, so they are
  // lost now, whatever the node says later; the connection is closed so that the node
  // releases the session as soon as it runs again.
  void LoseAllForLapse() {
    auto held = std::move(held_);
    held_.clear();
    const Status why = Status::Lost(
        "the node did not renew this client's lease in time (node frozen, overloaded or cut "
        "off from the cluster); another client may be granted the lock");
    for (auto& [id, lock] : held) {
      if (lost_) lost_(lock, why);
    }
    if (stream_ && !stream_->closing()) {
      stream_->Close(Status::Unavailable("this client's lease lapsed"));
    }
  }

  void ArmLeaseTimer() {
    if (!lease_ || timer_closing_ || !stream_) return;
    uint64_t deadline = lease_->NextDeadline();
    for (const HeldBack& h : held_back_) {
      if (h.pending.deadline_us != 0) deadline = std::min(deadline, h.pending.deadline_us);
    }
    if (deadline == UINT64_MAX) {
      uv_timer_stop(&lease_timer_);
      return;
    }
    // The loop's clock may lag the monotonic one; a timer that fires early re-arms here
    // (never with 0 ms, which libuv would run again within the same pass).
    const uint64_t now = NowUs();
    const uint64_t delay_ms = deadline > now ? (deadline - now + 999) / 1000 : 1;
    uv_timer_start(&lease_timer_, OnLeaseTimer, delay_ms, 0);
  }

  // A held-back grant asks for a renewal unless one went out this recently.
  static constexpr uint64_t kLeaseRequestSpacingUs = 10'000;

  // A grant that arrived while the client lease did not hold (see Deliver(PendingLock)).
  struct HeldBack {
    PendingLock pending;
    pb::CommandResult result;
  };

  uv_loop_t* loop_;
  ClientOptions options_;
  uv_timer_t timer_;        // connect timeout
  uv_timer_t renew_timer_;  // client lease: a LeaseRequest every lease_renew_ms_
  uv_timer_t lease_timer_;  // client lease: its end, and deadlines of held-back grants
  uv_timer_t answer_timer_;  // the backstop: the earliest of give_ups_
  uv_connect_t connect_req_;
  FramedStream* stream_ = nullptr;  // owned by libuv; gone after OnStreamClosed
  DoneCallback connect_done_;
  std::function<void()> close_done_;
  LostCallback lost_;
  bool connected_ = false;
  bool closed_ = false;
  bool user_closed_ = false;
  bool timer_closing_ = false;
  int timers_open_ = 0;
  uint64_t next_request_id_ = 0;
  std::map<uint64_t, Pending> pending_;
  // give_up_us -> request id of every unanswered lock request that has a backstop.
  std::multimap<uint64_t, uint64_t> give_ups_;
  bool pipe_connected_ = false;  // uv_pipe_connect succeeded (Connect's timeout says which)
  std::map<uint64_t, mesh::Lock> held_;
  // The client lease; null when the node keeps none (a local node).
  std::unique_ptr<core::lease::ClientLease> lease_;
  uint64_t lease_renew_ms_ = 0;
  uint64_t last_lease_request_us_ = 0;
  std::list<HeldBack> held_back_;
};

}  // namespace

std::unique_ptr<AsyncClient> AsyncClient::Create(uv_loop_t* loop, ClientOptions options) {
  return std::make_unique<AsyncClientImpl>(loop, std::move(options));
}

}  // namespace mesh
