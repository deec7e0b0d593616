#include "consensus/raft_engine.h"

#include "consensus/aio_reaper.h"

#include "consensus/raft_transport.h"
#include "consensus/snapshot_pacer.h"

extern "C" {
#include <raft.h>
#include <raft/uv.h>
}

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>

namespace synod {
namespace {

Status RaftStatus(int code) {
  switch (code) {
    case RAFT_NOTLEADER:
      return Status(StatusCode::kNotLeader, "not the leader");
    case RAFT_LEADERSHIPLOST:
      return Status(StatusCode::kUnknownOutcome, "leadership lost before the entry was committed");
    case RAFT_SHUTDOWN:
      return Status(StatusCode::kUnknownOutcome, "shutting down");
    default:
      return Status::Error(raft_strerror(code));
  }
}

std::string RaftError(int code) { return RaftStatus(code).message(); }

int ToRaftRole(RaftRole role) {
  switch (role) {
    case RaftRole::kVoter:
      return RAFT_VOTER;
    case RaftRole::kStandby:
      return RAFT_STANDBY;
    case RaftRole::kSpare:
      return RAFT_SPARE;
  }
  return RAFT_SPARE;
}

RaftRole FromRaftRole(int role) {
  if (role == RAFT_VOTER) return RaftRole::kVoter;
  if (role == RAFT_STANDBY) return RaftRole::kStandby;
  return RaftRole::kSpare;
}

}  // namespace

const char* RaftRoleName(RaftRole role) {
  switch (role) {
    case RaftRole::kVoter:
      return "voter";
    case RaftRole::kStandby:
      return "standby";
    case RaftRole::kSpare:
      return "spare";
  }
  return "spare";
}

namespace {
constexpr char kFrameMagic[4] = {'S', 'Y', 'N', '1'};
}  // namespace

std::string FrameRaftPayload(std::string_view payload) {
  const auto length = static_cast<uint32_t>(payload.size());
  std::string framed;
  framed.reserve(8 + payload.size() + 8);
  for (int shift = 0; shift < 32; shift += 8) framed.push_back(static_cast<char>(length >> shift));
  framed.append(kFrameMagic, sizeof kFrameMagic);
  framed.append(payload);
  framed.append((8 - framed.size() % 8) % 8, '\0');
  return framed;
}

Result<std::string_view> UnframeRaftPayload(std::string_view framed) {
  if (framed.size() < 8 || framed.substr(4, 4) != std::string_view(kFrameMagic, 4)) {
    return Status::Error("not a framed raft payload");
  }
  uint32_t length = 0;
  for (int i = 3; i >= 0; --i) length = (length << 8) | static_cast<uint8_t>(framed[i]);
  if (length > framed.size() - 8) return Status::Error("framed raft payload is truncated");
  return framed.substr(8, length);
}

uint64_t RaftIdFromNodeId(const std::string& node_id) {
  uint64_t id = 0;
  for (size_t i = 0; i < std::min<size_t>(16, node_id.size()); ++i) {
    const char c = node_id[i];
    const uint64_t digit = c >= 'a' ? static_cast<uint64_t>(c - 'a' + 10)
                                    : static_cast<uint64_t>(c >= '0' ? c - '0' : 0);
    id = (id << 4) | (digit & 0xf);
  }
  return id == 0 ? 1 : id;
}

// ---- state machine adapter --------------------------------------------------------------

struct RaftFsmAdapter::Impl {
  raft_fsm fsm{};
  RaftStateMachine* machine;
  const struct raft* server = nullptr;
  // The feed has brought every entry up to this one (0 after a restore from the log).
  uint64_t fed_through = 0;
  AppliedEntryObserver observer;
  std::function<void(size_t bytes)> on_entry_size;  // every entry libraft applies
  std::string last_result;  // handed to the apply callback, which runs right after apply
  bool halted = false;      // an entry could not be applied: nothing more is

  // The snapshot being written: captured on the loop, produced on the worker thread, released
  // on the loop by snapshot_finalize. libraft takes one snapshot at a time.
  std::unique_ptr<SnapshotProducer> producer;
  std::vector<std::string> chunks;
  std::vector<raft_buffer> buffers;
  // Written by the worker thread, read on the loop once the work is done (libraft hands the
  // result back through the loop, which orders the two).
  SnapshotStats stats;

  uint64_t raft_applied() const { return server == nullptr ? 0 : server->last_applied; }
  uint64_t applied_index() const { return std::max(raft_applied(), fed_through); }
  void Halt(const Status& why) {
    if (halted) return;
    halted = true;
    spdlog::critical("raft: {}", why.message());
    if (observer.on_fatal) observer.on_fatal(why);
  }
  // False if the entry cannot be applied by this build (the node halts).
  bool Apply(uint64_t index, std::string_view payload) {
    if (halted) return false;
    Result<std::string> result = machine->ApplyEntry(index, payload);
    if (!result.ok()) {
      Halt(Status(result.code(), "cannot apply entry " + std::to_string(index) + ": " +
                                     result.error() + "; this node stops instead of diverging"));
      return false;
    }
    last_result = std::move(result).value();
    if (observer.on_entry) observer.on_entry(index, payload);
    return true;
  }
};

namespace {
constexpr size_t kSnapshotChunkBytes = 4u << 20;
constexpr int kSnapshotNice = 10;
}  // namespace

RaftFsmAdapter::RaftFsmAdapter(RaftStateMachine& machine) : impl_(std::make_unique<Impl>()) {
  impl_->machine = &machine;
  impl_->fsm.version = 3;
  impl_->fsm.data = impl_.get();
  impl_->fsm.apply = [](raft_fsm* fsm, const raft_buffer* buf, void** result) {
    auto* self = static_cast<Impl*>(fsm->data);
    *result = &self->last_result;
    if (self->on_entry_size) self->on_entry_size(buf->len);
    // libraft applies entries in order and moves last_applied past each one after applying it.
    const uint64_t index = self->server == nullptr ? 0 : self->server->last_applied + 1;
    if (index != 0 && index <= self->fed_through) {
      self->last_result.clear();  // the feed applied it already; nobody here proposed it
      return 0;
    }
    // An unframed entry is applied as an empty (and so refused) one: the same on every node.
    auto payload =
        UnframeRaftPayload(std::string_view(static_cast<const char*>(buf->base), buf->len));
    return self->Apply(index, payload.ok() ? payload.value() : "") ? 0 : RAFT_MALFORMED;
  };
  impl_->fsm.snapshot = [](raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs) {
    auto* self = static_cast<Impl*>(fsm->data);
    // The state is ahead of the log (fed entries the log has not brought yet): a snapshot now
    // would be labelled with an older index than its content. libraft tries again later.
    if (self->fed_through > self->raft_applied() || self->halted) return RAFT_BUSY;
    const auto started = std::chrono::steady_clock::now();
    self->producer = self->machine->CaptureSnapshot();
    self->stats.capture_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count();
    *bufs = nullptr;
    *n_bufs = 0;
    return 0;
  };
  impl_->fsm.snapshot_async = [](raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs) {
    // On the worker thread: only the producer (an immutable view) and our own buffers. The
    // work runs on a thread of its own at a low priority, so that on a busy machine the event
    // loops (commits, heartbeats) keep the CPU and the snapshot takes what is left.
    auto* self = static_cast<Impl*>(fsm->data);
    const auto started = std::chrono::steady_clock::now();
    std::thread writer([self] {
      setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), kSnapshotNice);
      bool done = false;
      while (!done) {
        std::string& chunk = self->chunks.emplace_back();
        chunk.reserve(kSnapshotChunkBytes + (64 << 10));
        done = self->producer->Produce(chunk, kSnapshotChunkBytes);
      }
      self->producer.reset();
    });
    writer.join();
    for (std::string& chunk : self->chunks) {
      self->buffers.push_back(raft_buffer{chunk.data(), chunk.size()});
    }
    *bufs = self->buffers.data();
    *n_bufs = static_cast<unsigned>(self->buffers.size());
    self->stats.bytes = 0;
    for (const raft_buffer& buffer : self->buffers) self->stats.bytes += buffer.len;
    self->stats.write_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count();
    ++self->stats.taken;
    return 0;
  };
  impl_->fsm.snapshot_finalize = [](raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs) {
    auto* self = static_cast<Impl*>(fsm->data);
    self->producer.reset();
    self->buffers.clear();
    *bufs = nullptr;
    *n_bufs = 0;
    // Giving a hundred megabytes back to the system takes tens of milliseconds: not on the loop.
    struct Release {
      raft_io_async_work work{};
      std::vector<std::string> chunks;
    };
    auto* release = new Release;
    release->chunks = std::move(self->chunks);
    self->chunks.clear();
    release->work.data = release;
    release->work.work = [](raft_io_async_work* work) {
      static_cast<Release*>(work->data)->chunks.clear();
      return 0;
    };
    raft_io* io = self->server == nullptr ? nullptr : self->server->io;
    if (io == nullptr || io->async_work == nullptr ||
        io->async_work(io, &release->work, [](raft_io_async_work* work, int) {
          delete static_cast<Release*>(work->data);
        }) != 0) {
      delete release;
    }
    return 0;
  };
  impl_->fsm.restore = [](raft_fsm* fsm, raft_buffer* buf) {
    auto* self = static_cast<Impl*>(fsm->data);
    const auto started = std::chrono::steady_clock::now();
    Status status = self->machine->RestoreSnapshot(
        std::string_view(static_cast<const char*>(buf->base), buf->len));
    spdlog::info(
        "raft: restored a snapshot of {} bytes in {:.0f} ms", buf->len,
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count());
    if (!status.ok()) {
      // The old state is untouched, and libraft cannot go on without this one.
      self->Halt(Status(status.code(), "cannot restore a snapshot: " + status.message()));
      return RAFT_MALFORMED;
    }
    raft_free(buf->base);
    self->fed_through = 0;  // the state is the snapshot's now, whatever the feed had brought
    if (self->observer.on_restore) self->observer.on_restore(0);
    return 0;
  };
}

void RaftFsmAdapter::Attach(const struct raft* server) { impl_->server = server; }
void RaftFsmAdapter::SetEntrySizeListener(std::function<void(size_t bytes)> listener) {
  impl_->on_entry_size = std::move(listener);
}
uint64_t RaftFsmAdapter::applied_index() const { return impl_->applied_index(); }
void RaftFsmAdapter::Halt(const Status& why) { impl_->Halt(why); }
SnapshotStats RaftFsmAdapter::snapshot_stats() const { return impl_->stats; }
void RaftFsmAdapter::SetAppliedObserver(AppliedEntryObserver observer) {
  impl_->observer = std::move(observer);
}

void RaftFsmAdapter::ApplyFed(uint64_t index, std::string_view payload) {
  if (impl_->server == nullptr || index <= impl_->applied_index()) return;
  if (impl_->Apply(index, payload)) impl_->fed_through = index;
}

void RaftFsmAdapter::FedThrough(uint64_t index) {
  if (impl_->server != nullptr && !impl_->halted) {
    impl_->fed_through = std::max(impl_->fed_through, index);
  }
}

Status RaftFsmAdapter::RestoreFed(uint64_t index, const std::function<Status()>& install) {
  if (impl_->server == nullptr) return Status::Error("the state machine is not attached");
  if (index <= impl_->applied_index()) return Status::Ok();  // it has that much already
  if (Status restored = install(); !restored.ok()) return restored;
  impl_->fed_through = index;
  if (impl_->observer.on_restore) impl_->observer.on_restore(index);
  return Status::Ok();
}

RaftFsmAdapter::~RaftFsmAdapter() = default;
raft_fsm* RaftFsmAdapter::get() { return &impl_->fsm; }

// ---- engine -----------------------------------------------------------------------------

// libraft names both the request and the function raft_barrier.
using RaftBarrierRequest = struct ::raft_barrier;

struct RaftEngine::Impl {
  EventLoop& loop;
  RaftFsmAdapter fsm;
  RaftTransport transport;
  raft_io io{};
  struct raft raft {};
  bool io_ready = false;
  bool raft_ready = false;
  std::optional<SnapshotPacer> pacer;
  std::function<void()> on_closed;
  // Followers learn that an entry committed from the leader's next message, which is the next
  // heartbeat when nothing else is proposed: up to two heartbeat intervals later. After each
  // commit the leader appends an empty barrier entry, whose replication carries the new commit
  // index at once; one at a time, so a burst of commits costs one or two barriers.
  bool barrier_in_flight = false;
  bool barrier_wanted = false;
  Timer next_announce;

  // libraft adds entries to its in-memory log before writing them, and does not take them back
  // when the write fails (a full disk): it then acknowledges them from memory while the disk
  // misses them, and after a restart the node holds less than it said. A failed log write
  // therefore stops the node (fail-stop, as etcd does on a WAL error): nothing unwritten is
  // acknowledged, and after a restart with space it catches up from the leader.
  using AppendFn = int (*)(raft_io*, raft_io_append*, const raft_entry[], unsigned,
                           raft_io_append_cb);
  AppendFn write_log = nullptr;
  struct PendingAppend {
    Impl* impl;
    raft_io_append_cb done;
  };
  // By request: libraft's callback gives only the request back.
  static std::unordered_map<raft_io_append*, PendingAppend>& pending_appends() {
    static std::unordered_map<raft_io_append*, PendingAppend> pending;
    return pending;
  }

  static int GuardedAppend(raft_io* io, raft_io_append* req, const raft_entry entries[], unsigned n,
                           raft_io_append_cb done) {
    auto* self = static_cast<Impl*>(static_cast<struct raft*>(io->data)->data);
    pending_appends()[req] = PendingAppend{self, done};
    const int rv = self->write_log(io, req, entries, n, &Impl::OnLogWritten);
    if (rv != 0) {
      pending_appends().erase(req);
      self->StorageFailed(rv);
    }
    return rv;
  }

  static void OnLogWritten(raft_io_append* req, int status) {
    auto it = pending_appends().find(req);
    const PendingAppend pending = it->second;
    pending_appends().erase(it);
    // Cancelled at shutdown is not a storage failure.
    if (status != 0 && status != RAFT_CANCELED) return pending.impl->StorageFailed(status);
    pending.done(req, status);
  }

  void StorageFailed(int status) {
    const std::string detail = io.errmsg[0] != '\0' ? io.errmsg : raft_strerror(status);
    fsm.Halt(Status::Error("cannot write the Raft log in its data directory (" + detail +
                           "); the node stops rather than acknowledge what is not on disk. "
                           "Free space (or fix the disk) and start it again: it catches up"));
  }

  Impl(EventLoop& l, RaftStateMachine& machine, RaftTransportOptions transport_options)
      : loop(l), fsm(machine), transport(l, std::move(transport_options)), next_announce(l) {}

  void AnnounceCommit() {
    if (barrier_in_flight) {
      barrier_wanted = true;
      return;
    }
    if (!raft_ready || raft_state(&raft) != RAFT_LEADER) return;
    auto* request = new RaftBarrierRequest{};
    request->data = this;
    barrier_in_flight = true;
    barrier_wanted = false;
    const int rv = raft_barrier(&raft, request, [](RaftBarrierRequest* req, int) {
      auto* impl = static_cast<Impl*>(req->data);
      delete req;
      impl->barrier_in_flight = false;
      // Not from inside libraft's callback: when leadership is being lost it fails pending
      // requests before its state says so, and a new request then crashes it.
      if (impl->barrier_wanted)
        impl->next_announce.Start(std::chrono::milliseconds(0), std::chrono::milliseconds(0),
                                  [impl] { impl->AnnounceCommit(); });
    });
    if (rv != 0) {
      delete request;
      barrier_in_flight = false;
    }
  }
};

RaftEngine::RaftEngine(EventLoop& loop, RaftOptions options, RaftStateMachine& fsm)
    : impl_(std::make_unique<Impl>(loop, fsm, options.transport)), options_(std::move(options)) {}

RaftEngine::~RaftEngine() {
  // Close() must have finished: libraft's memory is only safe to free after its close callback.
  if (impl_->raft_ready) spdlog::error("raft engine destroyed without Close()");
}

bool RaftEngine::HasState(const std::string& dir) {
  std::error_code ec;
  return std::filesystem::exists(std::filesystem::path(dir) / "metadata1", ec) ||
         std::filesystem::exists(std::filesystem::path(dir) / "metadata2", ec);
}

Status RaftEngine::Open() {
  std::error_code ec;
  std::filesystem::create_directories(options_.dir, ec);
  if (ec) return Status::Error("cannot create raft dir " + options_.dir + ": " + ec.message());
  Impl& s = *impl_;
  if (Status ready = s.transport.Init(); !ready.ok()) return ready;
  if (int rv = raft_uv_init(&s.io, s.loop.raw(), options_.dir.c_str(), s.transport.get());
      rv != 0) {
    return Status::Error("raft storage in " + options_.dir + " rejected: " + s.io.errmsg);
  }
  s.io_ready = true;
  // libraft 0.15's libuv I/O implements async_work (on libuv's thread pool) but still says it
  // is version 1, and raft_init refuses asynchronous snapshots on a version-1 I/O. Version 2
  // adds nothing but async_work.
  if (s.io.async_work == nullptr)
    return Status::Error("this libraft cannot take snapshots off the loop");
  s.io.version = std::max(s.io.version, 2);
  if (int rv = raft_init(&s.raft, &s.io, s.fsm.get(), options_.id, options_.address.c_str());
      rv != 0) {
    return Status::Error(std::string("cannot initialise raft: ") + raft_errmsg(&s.raft));
  }
  s.raft_ready = true;
  s.raft.data = &s;
  s.write_log = s.io.append;
  s.io.append = &Impl::GuardedAppend;
  s.fsm.Attach(&s.raft);
  raft_set_election_timeout(&s.raft, options_.election_timeout_ms);
  raft_set_heartbeat_timeout(&s.raft, options_.heartbeat_timeout_ms);
  // Nodes that snapshot at the same index would all be busy at once: each takes a threshold of
  // its own, up to an eighth above the one configured.
  const unsigned threshold =
      options_.snapshot_threshold +
      static_cast<unsigned>(options_.id % (options_.snapshot_threshold / 8 + 1));
  // Entries kept in the log after a snapshot, so that a follower slightly behind needs no snapshot.
  auto set_threshold = [&s](unsigned entries) {
    raft_set_snapshot_threshold(&s.raft, entries);
    raft_set_snapshot_trailing(&s.raft, std::max(8u, entries / 4));
  };
  set_threshold(threshold);
  if (options_.log_memory_bytes > 0) {
    s.pacer.emplace(options_.log_memory_bytes, threshold);
    s.fsm.SetEntrySizeListener([&s, set_threshold](size_t bytes) {
      if (auto changed = s.pacer->OnEntry(bytes)) set_threshold(*changed);
    });
  }
  raft_set_install_snapshot_timeout(&s.raft, options_.install_snapshot_timeout_ms);
  raft_set_pre_vote(&s.raft, true);
  raft_uv_set_connect_retry_delay(&s.io, 100);
  opened_ = true;
  return Status::Ok();
}

Result<bool> RaftEngine::BootstrapSelf() {
  raft_configuration configuration;
  raft_configuration_init(&configuration);
  int rv =
      raft_configuration_add(&configuration, options_.id, options_.address.c_str(), RAFT_VOTER);
  if (rv == 0) rv = raft_bootstrap(&impl_->raft, &configuration);
  raft_configuration_close(&configuration);
  if (rv == RAFT_CANTBOOTSTRAP) return false;
  if (rv != 0) {
    return Status::Error(std::string("cannot bootstrap: ") + raft_errmsg(&impl_->raft));
  }
  return true;
}

Status RaftEngine::Start() {
  if (int rv = raft_start(&impl_->raft); rv != 0) {
    return Status::Error("cannot start raft on " + options_.address + " (data in " + options_.dir +
                         "): " + raft_errmsg(&impl_->raft));
  }
  started_ = true;
  AioReaper::Enable();
  return Status::Ok();
}

void RaftEngine::Apply(std::string payload, ApplyCallback done) {
  struct Request {
    struct raft_apply req {};
    ApplyCallback done;
    Impl* impl = nullptr;
  };
  if (!started_) {
    done(Status::Unavailable("not part of a cluster yet"), 0);
    return;
  }
  auto* request = new Request;
  request->req.data = request;
  request->done = std::move(done);
  request->impl = impl_.get();
  const std::string entry = FrameRaftPayload(payload);
  raft_buffer buf;
  buf.len = entry.size();
  buf.base = raft_malloc(std::max<size_t>(entry.size(), 1));
  std::memcpy(buf.base, entry.data(), entry.size());
  int rv = raft_apply(&impl_->raft, &request->req, &buf, 1,
                      [](struct raft_apply* req, int status, void* result) {
                        auto* request = static_cast<Request*>(req->data);
                        auto callback = std::move(request->done);
                        const uint64_t index = req->index;
                        Impl* impl = request->impl;
                        delete request;
                        if (status != 0) {
                          callback(RaftStatus(status), index);
                        } else {
                          impl->AnnounceCommit();
                          callback(std::move(*static_cast<std::string*>(result)), index);
                        }
                      });
  if (rv != 0) {
    raft_free(buf.base);
    auto callback = std::move(request->done);
    delete request;
    callback(RaftStatus(rv), 0);
  }
}

namespace {
struct ChangeRequest {
  raft_change req{};
  RaftEngine::ChangeCallback done;
};

raft_change* NewChange(RaftEngine::ChangeCallback done) {
  auto* request = new ChangeRequest;
  request->req.data = request;
  request->done = std::move(done);
  return &request->req;
}

void ChangeDone(raft_change* req, int status) {
  auto* request = static_cast<ChangeRequest*>(req->data);
  auto callback = std::move(request->done);
  delete request;
  callback(status == 0 ? Status::Ok() : Status::Error(RaftError(status)));
}

void ChangeFailed(raft_change* req, int rv) { ChangeDone(req, rv); }
}  // namespace

void RaftEngine::Add(uint64_t id, const std::string& address, ChangeCallback done) {
  raft_change* req = NewChange(std::move(done));
  if (int rv = raft_add(&impl_->raft, req, id, address.c_str(), ChangeDone); rv != 0) {
    ChangeFailed(req, rv);
  }
}

void RaftEngine::Assign(uint64_t id, RaftRole role, ChangeCallback done) {
  raft_change* req = NewChange(std::move(done));
  if (int rv = raft_assign(&impl_->raft, req, id, ToRaftRole(role), ChangeDone); rv != 0) {
    ChangeFailed(req, rv);
  }
}

void RaftEngine::Remove(uint64_t id, ChangeCallback done) {
  raft_change* req = NewChange(std::move(done));
  if (int rv = raft_remove(&impl_->raft, req, id, ChangeDone); rv != 0) ChangeFailed(req, rv);
}

void RaftEngine::Barrier(std::function<void(Status)> done) {
  struct Request {
    RaftBarrierRequest req{};
    std::function<void(Status)> done;
  };
  if (!started_) {
    done(Status::Unavailable("not part of a cluster yet"));
    return;
  }
  auto* request = new Request;
  request->req.data = request;
  request->done = std::move(done);
  const int rv = raft_barrier(&impl_->raft, &request->req, [](RaftBarrierRequest* req, int status) {
    auto* request = static_cast<Request*>(req->data);
    auto callback = std::move(request->done);
    delete request;
    callback(status == 0 ? Status::Ok() : RaftStatus(status));
  });
  if (rv != 0) {
    auto callback = std::move(request->done);
    delete request;
    callback(RaftStatus(rv));
  }
}

void RaftEngine::Transfer(uint64_t id, std::function<void()> done) {
  struct Request {
    struct raft_transfer req {};
    std::function<void()> done;
  };
  auto* request = new Request;
  request->req.data = request;
  request->done = std::move(done);
  int rv = raft_transfer(&impl_->raft, &request->req, id, [](struct raft_transfer* req) {
    auto* request = static_cast<Request*>(req->data);
    auto callback = std::move(request->done);
    delete request;
    callback();
  });
  if (rv != 0) {
    auto callback = std::move(request->done);
    delete request;
    callback();
  }
}

void RaftEngine::Close(std::function<void()> done) {
  Impl& s = *impl_;
  AioReaper::Disable();  // closing may cancel writes in flight: io_destroy must wait for them
  auto release_io = [&s] {
    if (s.io_ready) raft_uv_close(&s.io);
    s.io_ready = false;
    s.transport.Release();
  };
  if (!s.raft_ready) {
    release_io();
    done();
    return;
  }
  s.on_closed = [release_io, done = std::move(done)] {
    release_io();
    done();
  };
  s.raft_ready = false;
  started_ = false;
  raft_close(&s.raft, [](struct raft* r) {
    auto* impl = static_cast<Impl*>(r->data);
    auto callback = std::move(impl->on_closed);
    callback();
  });
}

bool RaftEngine::IsLeader() const { return started_ && raft_state(&impl_->raft) == RAFT_LEADER; }

std::optional<RaftServer> RaftEngine::Leader() const {
  if (!started_) return std::nullopt;
  raft_id id = 0;
  const char* address = nullptr;
  raft_leader(&impl_->raft, &id, &address);
  if (id == 0 || address == nullptr) return std::nullopt;
  return RaftServer{id, address, RaftRole::kVoter};
}

uint64_t RaftEngine::term() const { return started_ ? impl_->raft.current_term : 0; }
uint64_t RaftEngine::commit_index() const { return started_ ? impl_->raft.commit_index : 0; }
uint64_t RaftEngine::applied_index() const { return started_ ? impl_->fsm.applied_index() : 0; }

void RaftEngine::ApplyFed(uint64_t index, std::string_view payload) {
  if (started_) impl_->fsm.ApplyFed(index, payload);
}

void RaftEngine::FedThrough(uint64_t index) {
  if (started_) impl_->fsm.FedThrough(index);
}

Status RaftEngine::RestoreFed(uint64_t index, const std::function<Status()>& install) {
  if (!started_) return Status::Unavailable("not part of a cluster yet");
  return impl_->fsm.RestoreFed(index, install);
}

SnapshotStats RaftEngine::snapshot_stats() const { return impl_->fsm.snapshot_stats(); }

RaftConnectionStats RaftEngine::connection_stats() const { return impl_->transport.stats(); }

void RaftEngine::SetAppliedObserver(AppliedEntryObserver observer) {
  impl_->fsm.SetAppliedObserver(std::move(observer));
}

std::optional<RaftRole> RaftEngine::RoleOf(uint64_t id) const {
  if (!started_) return std::nullopt;
  const raft_configuration& configuration = impl_->raft.configuration;
  for (unsigned i = 0; i < configuration.n; ++i) {
    if (configuration.servers[i].id == id) return FromRaftRole(configuration.servers[i].role);
  }
  return std::nullopt;
}

std::vector<RaftServer> RaftEngine::Configuration() const {
  std::vector<RaftServer> servers;
  if (!started_) return servers;
  const raft_configuration& configuration = impl_->raft.configuration;
  for (unsigned i = 0; i < configuration.n; ++i) {
    servers.push_back(RaftServer{configuration.servers[i].id, configuration.servers[i].address,
                                 FromRaftRole(configuration.servers[i].role)});
  }
  return servers;
}

}  // namespace synod
