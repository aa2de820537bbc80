#include "core/storage/log_store.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <string_view>
#include <utility>

#include "core/hex.h"
#include "core/storage/crc32c.h"

namespace mesh::core {
namespace {

constexpr size_t kHeaderBytes = 9;  // crc 4, length 4, type 1
constexpr uint8_t kEntryRecord = 1;
constexpr uint8_t kHardStateRecord = 2;
constexpr uint8_t kSnapshotMarkerRecord = 3;
constexpr uint8_t kMarkerKeepsEntries = 1;
constexpr size_t kEntryFixedBytes = 16;
constexpr size_t kHardStateFixedBytes = 16;
constexpr size_t kMarkerBytes = 17;
constexpr char kSnapshotMagic[8] = {'L', 'M', 'S', 'N', 'A', 'P', '0', '1'};
constexpr size_t kSnapshotHeaderBytes = 8 + 4 + 8 + 8;
constexpr size_t kZeroChunkBytes = 1 << 20;

void PutFixed64(std::string* out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out->append(b, 8);
}

void EncodeFixed32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint32_t GetFixed32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

uint64_t GetFixed64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string SegmentName(uint64_t seq) { return HexUint64(seq) + ".wal"; }

bool ParseSegmentName(const std::string& name, uint64_t* seq) {
  if (name.size() != 20 || name.compare(16, 4, ".wal") != 0) return false;
  uint64_t v = 0;
  // Exactly the name SegmentName writes (16 lowercase digits), nothing that only parses alike.
  if (!ParseHexUint64(std::string_view(name).substr(0, 16), &v) || SegmentName(v) != name) {
    return false;
  }
  *seq = v;
  return true;
}

// Starts a record of `type` at the end of `out`; returns the record's start. The caller
// appends the payload and then calls FinishRecord.
size_t BeginRecord(std::string* out, uint8_t type) {
  size_t start = out->size();
  out->append(8, '\0');
  out->push_back(static_cast<char>(type));
  return start;
}

void FinishRecord(std::string* out, size_t start) {
  char* p = out->data() + start;
  size_t payload = out->size() - start - kHeaderBytes;
  EncodeFixed32(p + 4, static_cast<uint32_t>(payload));
  EncodeFixed32(p, crc32c::Extend(0, p + 8, payload + 1));
}

bool AllZero(std::string_view data) {
  return std::all_of(data.begin(), data.end(), [](char c) { return c == '\0'; });
}

size_t MinPayload(uint8_t type) {
  switch (type) {
    case kEntryRecord:
      return kEntryFixedBytes;
    case kHardStateRecord:
      return kHardStateFixedBytes;
    case kSnapshotMarkerRecord:
      return kMarkerBytes;
    default:
      return SIZE_MAX;
  }
}

// True if a well-formed record (known type, length within `data`, checksum ok) starts at `p`.
bool ValidRecordAt(std::string_view data, size_t p) {
  if (data.size() - p < kHeaderBytes) return false;
  uint8_t type = static_cast<uint8_t>(data[p + 8]);
  size_t min = MinPayload(type);
  if (min == SIZE_MAX) return false;
  uint64_t len = GetFixed32(data.data() + p + 4);
  if (len < min || len > data.size() - p - kHeaderBytes) return false;
  if (type == kSnapshotMarkerRecord && len != kMarkerBytes) return false;
  return GetFixed32(data.data() + p) == crc32c::Extend(0, data.data() + p + 8, len + 1);
}

std::string EncodeSnapshot(const SnapshotData& s) {
  std::string out(kSnapshotMagic, sizeof(kSnapshotMagic));
  out.append(4, '\0');
  PutFixed64(&out, s.index);
  PutFixed64(&out, s.term);
  out.append(s.data);
  EncodeFixed32(out.data() + 8, crc32c::Extend(0, out.data() + 12, out.size() - 12));
  return out;
}

// Checks and decodes a `snapshot` file; its data is copied into `s` only if `with_data`.
Status DecodeSnapshot(const std::string& path, const std::string& file, SnapshotData* s,
                      bool with_data) {
  if (file.size() < kSnapshotHeaderBytes ||
      std::memcmp(file.data(), kSnapshotMagic, sizeof(kSnapshotMagic)) != 0) {
    return Status::Corruption(path + ": not a snapshot file (bad header, " +
                              std::to_string(file.size()) + " bytes)");
  }
  uint32_t want = GetFixed32(file.data() + 8);
  uint32_t got = crc32c::Extend(0, file.data() + 12, file.size() - 12);
  if (want != got) return Status::Corruption(path + ": snapshot checksum mismatch");
  s->index = GetFixed64(file.data() + 12);
  s->term = GetFixed64(file.data() + 20);
  s->data.clear();
  if (with_data) s->data.assign(file, kSnapshotHeaderBytes);
  if (s->index == 0) return Status::Corruption(path + ": snapshot at index 0");
  return Status::OK();
}

// What replaying the WAL has reconstructed so far.
struct Replay {
  std::deque<LogEntry> entries;  // contiguous
  HardState hs;
  bool have_marker = false;
  uint64_t marker_index = 0;
  uint64_t marker_term = 0;

  uint64_t last() const { return entries.empty() ? 0 : entries.back().index; }

  // Applies one well-formed record; returns a message on a broken invariant.
  std::string Apply(uint8_t type, std::string_view payload, uint64_t* max_index) {
    switch (type) {
      case kEntryRecord: {
        LogEntry e;
        e.index = GetFixed64(payload.data());
        e.term = GetFixed64(payload.data() + 8);
        e.data.assign(payload.substr(kEntryFixedBytes));
        if (have_marker && e.index <= marker_index) {
          return "entry " + std::to_string(e.index) + " at or below the snapshot marker at " +
                 std::to_string(marker_index);
        }
        // With an empty deque any index may start it: the segments before may have been
        // deleted by compaction. Whether the result joins the snapshot is checked at the end.
        if (!entries.empty()) {
          if (e.index > last() + 1) {
            return "entry " + std::to_string(e.index) + " leaves a gap after " +
                   std::to_string(last());
          }
          if (e.index < entries.front().index) {
            entries.clear();  // re-append below what survives of compacted segments
          } else {
            entries.erase(entries.begin() + static_cast<ptrdiff_t>(e.index - entries.front().index),
                          entries.end());
          }
        }
        *max_index = std::max(*max_index, e.index);
        entries.push_back(std::move(e));
        return "";
      }
      case kHardStateRecord:
        hs.term = GetFixed64(payload.data());
        hs.commit = GetFixed64(payload.data() + 8);
        hs.vote.assign(payload.substr(kHardStateFixedBytes));
        return "";
      case kSnapshotMarkerRecord: {
        uint64_t index = GetFixed64(payload.data());
        uint64_t term = GetFixed64(payload.data() + 8);
        bool keep = (static_cast<uint8_t>(payload[16]) & kMarkerKeepsEntries) != 0;
        if (have_marker && index < marker_index) {
          return "snapshot marker at " + std::to_string(index) + " after one at " +
                 std::to_string(marker_index);
        }
        if (keep) {
          // Entries between index and the first replayed one may be in deleted segments.
          while (!entries.empty() && entries.front().index <= index) entries.pop_front();
        } else {
          entries.clear();
        }
        have_marker = true;
        marker_index = index;
        marker_term = term;
        return "";
      }
    }
    return "unknown record type " + std::to_string(type);
  }
};

}  // namespace

struct LogStore::Impl {
  // A live segment file.
  struct Segment {
    uint64_t seq = 0;
    std::string path;
    uint64_t capacity = 0;   // records must end at or before it (a roll-over point)
    uint64_t allocated = 0;  // file size: zeros on disk past `used`, up to `capacity`
    uint64_t used = 0;       // bytes of records written (and synced)
    uint64_t max_index = 0;  // highest entry index recorded in it, 0 if none
  };
  // Buffered bytes destined for one segment, in order.
  struct Chunk {
    bool create = false;  // the segment does not exist yet: create it first
    uint64_t seq = 0;
    uint64_t capacity = 0;
    uint64_t offset = 0;
    uint64_t max_index = 0;
    std::string bytes;
  };

  FileSystem* fs = nullptr;
  std::string dir;
  std::string wal_dir;
  std::string snapshot_path;
  LogStoreOptions options;

  HardState hs;
  SnapshotData snap;
  std::deque<LogEntry> entries;  // first_index() .. last_index()
  bool keep_data = true;         // false after DropEntryData: entries hold index and term

  std::vector<Segment> segments;         // oldest first; back() is the active one
  std::unique_ptr<WritableFile> active;  // segments.back(), open for writing
  bool active_dirty = false;             // `active` has writes not yet synced
  std::vector<std::string> notes;        // what recovery repaired, for the node's log
  std::vector<Chunk> chunks;             // buffered records
  uint64_t cursor_seq = 0;               // where the next buffered record goes
  uint64_t cursor_offset = 0;
  uint64_t cursor_capacity = 0;
  Status error;  // sticky

  uint64_t first_index() const { return snap.index + 1; }
  uint64_t last_index() const { return snap.index + entries.size(); }

  Status Fail(Status s) {
    if (error.ok()) error = std::move(s);
    return error;
  }

  // Returns the chunk the next record of `size` bytes goes to, opening a new segment when
  // it does not fit.
  Chunk* ChunkFor(uint64_t size) {
    if (cursor_offset + size > cursor_capacity) {
      Chunk c;
      c.create = true;
      c.seq = cursor_seq + 1;
      c.capacity = std::max(options.segment_bytes, size);
      chunks.push_back(std::move(c));
      cursor_seq = chunks.back().seq;
      cursor_offset = 0;
      cursor_capacity = chunks.back().capacity;
    } else if (chunks.empty() || chunks.back().seq != cursor_seq) {
      Chunk c;
      c.seq = cursor_seq;
      c.capacity = cursor_capacity;
      c.offset = cursor_offset;
      chunks.push_back(std::move(c));
    }
    return &chunks.back();
  }

  void BufferEntry(const LogEntry& e) {
    Chunk* c = ChunkFor(kHeaderBytes + kEntryFixedBytes + e.data.size());
    size_t start = BeginRecord(&c->bytes, kEntryRecord);
    PutFixed64(&c->bytes, e.index);
    PutFixed64(&c->bytes, e.term);
    c->bytes.append(e.data);
    FinishRecord(&c->bytes, start);
    c->max_index = std::max(c->max_index, e.index);
    cursor_offset += c->bytes.size() - start;
  }

  void BufferHardState(const HardState& h) {
    Chunk* c = ChunkFor(kHeaderBytes + kHardStateFixedBytes + h.vote.size());
    size_t start = BeginRecord(&c->bytes, kHardStateRecord);
    PutFixed64(&c->bytes, h.term);
    PutFixed64(&c->bytes, h.commit);
    c->bytes.append(h.vote);
    FinishRecord(&c->bytes, start);
    cursor_offset += c->bytes.size() - start;
  }

  void BufferMarker(uint64_t index, uint64_t term, bool keep) {
    Chunk* c = ChunkFor(kHeaderBytes + kMarkerBytes);
    size_t start = BeginRecord(&c->bytes, kSnapshotMarkerRecord);
    PutFixed64(&c->bytes, index);
    PutFixed64(&c->bytes, term);
    c->bytes.push_back(static_cast<char>(keep ? kMarkerKeepsEntries : 0));
    FinishRecord(&c->bytes, start);
    cursor_offset += c->bytes.size() - start;
  }

  // The file size to grow the active segment to so that it holds `end` bytes of records:
  // whole allocation steps past `end`, at most the segment's capacity (but at least `end`).
  uint64_t AllocationFor(const Segment& seg, uint64_t end) const {
    const uint64_t step = std::max<uint64_t>(1, options.allocate_bytes);
    uint64_t want = (end + step - 1) / step * step;
    return std::max(end, std::min(want, seg.capacity));
  }

  // A failure of a write (not a sync) for want of space leaves nothing durable changed, and
  // the records stay buffered for the next Sync; every other failure is sticky.
  Status FailWrite(Status s) {
    if (IsNoSpace(s)) return s;
    return Fail(std::move(s));
  }

  Status Sync() {
    if (!error.ok()) return error;
    // Chunks are dropped from `chunks` as they are written, so that a Sync that fails for
    // want of space (not sticky) is resumed by the next one where it stopped.
    while (!chunks.empty()) {
      Chunk& c = chunks.front();
      if (c.create) {
        if (active != nullptr) {
          // The full segment becomes durable before the next one exists, so only the
          // last segment can ever hold a torn tail.
          if (active_dirty) {
            Status s = active->Sync();
            if (!s.ok()) return Fail(s);
            active_dirty = false;
          }
          Status s = active->Close();
          active.reset();
          if (!s.ok()) return Fail(s);
        }
        Segment seg;
        seg.seq = c.seq;
        seg.path = wal_dir + "/" + SegmentName(c.seq);
        seg.capacity = c.capacity;
        seg.allocated = AllocationFor(seg, c.bytes.size());
        Status s = fs->OpenWritable(seg.path, seg.allocated, &active);
        if (!s.ok()) {
          active.reset();
          if (fs->Exists(seg.path)) fs->Remove(seg.path);  // best effort: no half segment
          return FailWrite(s);
        }
        s = fs->SyncDir(wal_dir);
        if (!s.ok()) return Fail(s);
        segments.push_back(std::move(seg));
        c.create = false;
      }
      Segment& seg = segments.back();
      assert(seg.seq == c.seq && active != nullptr);
      const uint64_t end = c.offset + c.bytes.size();
      if (end > seg.allocated) {
        // Grow in steps ahead of the records: an idle node's segment stays small, and a
        // write lands in zeros already on disk (no size change for fdatasync to flush).
        uint64_t size = AllocationFor(seg, end);
        Status s = active->Allocate(size);
        if (!s.ok()) return FailWrite(s);
        seg.allocated = size;
        active_dirty = false;  // Allocate synced the file
      }
      Status s = active->WriteAt(c.offset, c.bytes);
      if (!s.ok()) return FailWrite(s);
      active_dirty = true;
      seg.used = end;
      seg.max_index = std::max(seg.max_index, c.max_index);
      if (chunks.size() == 1) break;  // the last one: synced below, then dropped
      chunks.erase(chunks.begin());
    }
    if (active_dirty) {
      Status s = active->Sync();
      if (!s.ok()) return Fail(s);
      active_dirty = false;
    }
    chunks.clear();
    return Status::OK();
  }

  Status Recover();
};

LogStore::LogStore() : impl_(std::make_unique<Impl>()) {}

LogStore::~LogStore() {
  if (impl_->active != nullptr) impl_->active->Close();
}

Status LogStore::Open(FileSystem* fs, const std::string& dir, const LogStoreOptions& options,
                      std::unique_ptr<LogStore>* out) {
  if (options.segment_bytes == 0) return Status::InvalidArgument("segment_bytes must be > 0");
  std::unique_ptr<LogStore> store(new LogStore());
  Impl& d = *store->impl_;
  d.fs = fs;
  d.dir = dir;
  while (d.dir.size() > 1 && d.dir.back() == '/') d.dir.pop_back();
  d.wal_dir = d.dir + "/wal";
  d.snapshot_path = d.dir + "/snapshot";
  d.options = options;
  MESH_RETURN_IF_ERROR(d.Recover());
  *out = std::move(store);
  return Status::OK();
}

Status LogStore::Impl::Recover() {
  MESH_RETURN_IF_ERROR(fs->CreateDirs(wal_dir));

  if (fs->Exists(snapshot_path)) {
    std::string file;
    MESH_RETURN_IF_ERROR(fs->ReadFile(snapshot_path, &file));
    // Checked here (a damaged snapshot fails Open), read again by ReadSnapshot.
    MESH_RETURN_IF_ERROR(DecodeSnapshot(snapshot_path, file, &snap, /*with_data=*/false));
  }

  std::vector<std::string> names;
  MESH_RETURN_IF_ERROR(fs->ListDir(wal_dir, &names));
  std::vector<uint64_t> seqs;
  for (const std::string& name : names) {
    uint64_t seq;
    if (ParseSegmentName(name, &seq)) seqs.push_back(seq);
  }
  std::sort(seqs.begin(), seqs.end());
  for (size_t i = 1; i < seqs.size(); ++i) {
    if (seqs[i] != seqs[i - 1] + 1) {
      return Status::Corruption(wal_dir + "/" + SegmentName(seqs[i - 1] + 1) +
                                ": segment missing between " + SegmentName(seqs[i - 1]) + " and " +
                                SegmentName(seqs[i]));
    }
  }

  Replay replay;
  uint64_t torn_offset = 0;  // in the last segment
  uint64_t torn_end = 0;     // > torn_offset if a torn tail must be zeroed
  for (size_t i = 0; i < seqs.size(); ++i) {
    const bool last = i + 1 == seqs.size();
    Segment seg;
    seg.seq = seqs[i];
    seg.path = wal_dir + "/" + SegmentName(seqs[i]);
    std::string data;
    MESH_RETURN_IF_ERROR(fs->ReadFile(seg.path, &data));
    const std::string_view view(data);
    seg.allocated = data.size();
    seg.capacity = std::max<uint64_t>(options.segment_bytes, data.size());
    uint64_t p = 0;
    bool bad = false;
    std::string why;
    while (p < data.size()) {
      uint64_t rest = data.size() - p;
      if (rest < kHeaderBytes) {
        if (AllZero(view.substr(p))) break;
        bad = true;
        why = "truncated record header";
        break;
      }
      uint32_t crc = GetFixed32(data.data() + p);
      uint64_t len = GetFixed32(data.data() + p + 4);
      uint8_t type = static_cast<uint8_t>(data[p + 8]);
      if (crc == 0 && len == 0 && type == 0) {
        if (AllZero(view.substr(p))) break;  // end of the records, zeros to the end
        bad = true;
        why = "zero record header followed by data";
        break;
      }
      if (len > rest - kHeaderBytes) {
        bad = true;
        why = "record length " + std::to_string(len) + " runs past the end of the file";
        break;
      }
      if (crc != crc32c::Extend(0, data.data() + p + 8, len + 1)) {
        bad = true;
        why = "record checksum mismatch";
        break;
      }
      size_t min = MinPayload(type);
      if (min == SIZE_MAX || len < min || (type == kSnapshotMarkerRecord && len != kMarkerBytes)) {
        return Status::Corruption(seg.path + " offset " + std::to_string(p) +
                                  ": checksummed record of unknown type " + std::to_string(type) +
                                  " or bad length " + std::to_string(len));
      }
      std::string err = replay.Apply(type, view.substr(p + kHeaderBytes, len), &seg.max_index);
      if (!err.empty()) {
        return Status::Corruption(seg.path + " offset " + std::to_string(p) + ": " + err);
      }
      p += kHeaderBytes + len;
    }
    seg.used = p;
    if (bad) {
      if (!last) {
        return Status::Corruption(seg.path + " offset " + std::to_string(p) + ": " + why +
                                  " (not in the last segment)");
      }
      for (uint64_t q = p + 1; q + kHeaderBytes <= data.size(); ++q) {
        if (data[q + 8] != '\0' && ValidRecordAt(view, q)) {
          return Status::Corruption(seg.path + " offset " + std::to_string(p) + ": " + why +
                                    " (a valid record follows at offset " + std::to_string(q) +
                                    ")");
        }
      }
      // Torn tail: discard from p on.
      uint64_t end = data.size();
      while (end > p && data[end - 1] == '\0') --end;
      torn_offset = p;
      torn_end = end;
      notes.push_back(seg.path + ": discarded a torn tail at offset " + std::to_string(p) + " (" +
                      std::to_string(end - p) + " bytes: " + why +
                      "), the remains of a write cut short");
    }
    segments.push_back(std::move(seg));
  }

  // Reconcile the WAL with the snapshot file.
  bool needs_marker = false;
  if (replay.have_marker &&
      (replay.marker_index != snap.index || replay.marker_term != snap.term)) {
    if (snap.index == 0 || replay.marker_index > snap.index ||
        (replay.marker_index == snap.index && replay.marker_term != snap.term)) {
      return Status::Corruption(wal_dir + ": the WAL records a snapshot at index " +
                                std::to_string(replay.marker_index) + " term " +
                                std::to_string(replay.marker_term) + " but " + snapshot_path +
                                (snap.index == 0 ? std::string(" is missing")
                                                 : " holds index " + std::to_string(snap.index) +
                                                       " term " + std::to_string(snap.term)));
    }
    needs_marker = true;  // the snapshot file is newer than the last marker
  } else if (!replay.have_marker && snap.index > 0) {
    needs_marker = true;
  }
  bool keep = true;
  if (needs_marker) {
    // Crash between writing the snapshot file and logging its marker: apply it now.
    keep = false;
    for (const LogEntry& e : replay.entries) {
      if (e.index == snap.index) keep = e.term == snap.term;
    }
    if (!keep) replay.entries.clear();
  }
  while (!replay.entries.empty() && replay.entries.front().index <= snap.index) {
    replay.entries.pop_front();
  }
  if (!replay.entries.empty() && replay.entries.front().index != snap.index + 1) {
    return Status::Corruption(wal_dir + ": the log starts at index " +
                              std::to_string(replay.entries.front().index) +
                              " but the snapshot ends at " + std::to_string(snap.index));
  }
  entries = std::move(replay.entries);
  hs = std::move(replay.hs);

  // Make everything recovered durable, zero a torn tail, and open the active segment.
  for (size_t i = 0; i + 1 < segments.size(); ++i) {
    std::unique_ptr<WritableFile> f;
    MESH_RETURN_IF_ERROR(fs->OpenWritable(segments[i].path, 0, &f));
    MESH_RETURN_IF_ERROR(f->Sync());
    MESH_RETURN_IF_ERROR(f->Close());
  }
  if (!segments.empty()) {
    Segment& seg = segments.back();
    // A segment allocated further than one step past its records (a crash during a big
    // allocation, or a segment preallocated whole by an older version) is cut back: the
    // space is the node's disk use, and recovery would read it all at every start.
    const uint64_t keep = AllocationFor(seg, seg.used + 1);
    if (seg.allocated > keep) {
      MESH_RETURN_IF_ERROR(fs->Truncate(seg.path, keep));
      seg.allocated = keep;
      torn_end = std::min(torn_end, keep);
    }
    MESH_RETURN_IF_ERROR(fs->OpenWritable(seg.path, 0, &active));
    if (torn_end > torn_offset) {
      const std::string zeros(std::min<uint64_t>(kZeroChunkBytes, torn_end - torn_offset), '\0');
      for (uint64_t at = torn_offset; at < torn_end; at += zeros.size()) {
        uint64_t n = std::min<uint64_t>(zeros.size(), torn_end - at);
        MESH_RETURN_IF_ERROR(active->WriteAt(at, std::string_view(zeros).substr(0, n)));
      }
    }
    MESH_RETURN_IF_ERROR(active->Sync());
    cursor_seq = seg.seq;
    cursor_offset = seg.used;
    cursor_capacity = seg.capacity;
  }
  MESH_RETURN_IF_ERROR(fs->SyncDir(wal_dir));
  MESH_RETURN_IF_ERROR(fs->SyncDir(dir));  // the snapshot's rename, if it was not yet durable

  if (needs_marker) {
    BufferHardState(hs);
    BufferMarker(snap.index, snap.term, keep);
    Status s = Sync();
    // Without space the marker stays buffered for the next Sync: a crash before it only
    // repeats this repair.
    if (!s.ok() && !IsNoSpace(s)) return s;
  }
  return Status::OK();
}

const HardState& LogStore::hard_state() const { return impl_->hs; }

const SnapshotData& LogStore::snapshot() const { return impl_->snap; }

Status LogStore::ReadSnapshot(SnapshotData* out) const {
  return ReadSnapshotFile(impl_->fs, impl_->dir, out);
}

Status LogStore::ReadSnapshotFile(FileSystem* fs, const std::string& dir, SnapshotData* out) {
  const std::string path = dir + "/snapshot";
  *out = SnapshotData();
  if (!fs->Exists(path)) return Status::OK();
  std::string file;
  MESH_RETURN_IF_ERROR(fs->ReadFile(path, &file));
  return DecodeSnapshot(path, file, out, /*with_data=*/true);
}

uint64_t LogStore::first_index() const { return impl_->first_index(); }

uint64_t LogStore::last_index() const { return impl_->last_index(); }

const LogEntry& LogStore::entry(uint64_t index) const {
  assert(index >= impl_->first_index() && index <= impl_->last_index());
  return impl_->entries[index - impl_->first_index()];
}

Status LogStore::Term(uint64_t index, uint64_t* term) const {
  const Impl& d = *impl_;
  if (index == d.snap.index) {
    *term = d.snap.term;
    return Status::OK();
  }
  if (index < d.first_index() || index > d.last_index()) {
    return Status::NotFound("log index " + std::to_string(index) + " outside [" +
                            std::to_string(d.snap.index) + ", " + std::to_string(d.last_index()) +
                            "]");
  }
  *term = d.entries[index - d.first_index()].term;
  return Status::OK();
}

Status LogStore::Append(const std::vector<LogEntry>& entries) {
  Impl& d = *impl_;
  if (!d.error.ok()) return d.error;
  if (entries.empty()) return Status::OK();
  const uint64_t first = entries.front().index;
  if (first <= d.snap.index || first > d.last_index() + 1) {
    return Status::InvalidArgument("append at index " + std::to_string(first) + ": must be in [" +
                                   std::to_string(d.snap.index + 1) + ", " +
                                   std::to_string(d.last_index() + 1) + "]");
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].index != first + i) {
      return Status::InvalidArgument("append: entries are not contiguous at index " +
                                     std::to_string(entries[i].index));
    }
  }
  if (first <= d.last_index()) {
    d.entries.erase(d.entries.begin() + static_cast<ptrdiff_t>(first - d.first_index()),
                    d.entries.end());
  }
  for (const LogEntry& e : entries) {
    d.BufferEntry(e);
    if (d.keep_data) {
      d.entries.push_back(e);
    } else {
      d.entries.push_back(LogEntry{e.index, e.term, std::string()});
    }
  }
  return Status::OK();
}

void LogStore::DropEntryData() {
  Impl& d = *impl_;
  d.keep_data = false;
  for (LogEntry& e : d.entries) std::string().swap(e.data);
}

Status LogStore::SetHardState(const HardState& hs) {
  Impl& d = *impl_;
  if (!d.error.ok()) return d.error;
  d.BufferHardState(hs);
  d.hs = hs;
  return Status::OK();
}

Status LogStore::Sync() { return impl_->Sync(); }

bool LogStore::HasPending() const { return !impl_->chunks.empty(); }

Status LogStore::SaveSnapshot(const SnapshotData& snapshot) {
  Impl& d = *impl_;
  if (!d.error.ok()) return d.error;
  if (snapshot.index == 0 || snapshot.index < d.snap.index ||
      (snapshot.index == d.snap.index && snapshot.term != d.snap.term)) {
    return Status::InvalidArgument(
        "snapshot at index " + std::to_string(snapshot.index) + " term " +
        std::to_string(snapshot.term) + " does not supersede the one at index " +
        std::to_string(d.snap.index) + " term " + std::to_string(d.snap.term));
  }
  MESH_RETURN_IF_ERROR(d.Sync());
  // Without space the old snapshot file is intact and nothing changed: not sticky.
  Status s = d.fs->WriteFileAtomic(d.snapshot_path, EncodeSnapshot(snapshot));
  if (!s.ok()) return d.FailWrite(s);

  bool keep;
  if (snapshot.index == d.snap.index) {
    keep = true;
  } else if (snapshot.index <= d.last_index()) {
    keep = d.entries[snapshot.index - d.first_index()].term == snapshot.term;
  } else {
    keep = false;
  }
  if (keep) {
    d.entries.erase(d.entries.begin(),
                    d.entries.begin() + static_cast<ptrdiff_t>(snapshot.index - d.snap.index));
  } else {
    d.entries.clear();
  }
  d.snap.index = snapshot.index;  // the data stays on disk only (ReadSnapshot)
  d.snap.term = snapshot.term;

  // Log the hard state again (older copies may be in segments about to be deleted) and
  // the marker that tells replay what this snapshot did to the log.
  d.BufferHardState(d.hs);
  const uint64_t hs_seq = d.cursor_seq;  // the segment now holding the latest hard state
  d.BufferMarker(snapshot.index, snapshot.term, keep);
  // Without space here, the snapshot is saved and applied, its marker buffered: calling
  // SaveSnapshot again with the same snapshot (or Sync) finishes it; a crash first is the
  // snapshot-without-marker case of Open.
  MESH_RETURN_IF_ERROR(d.Sync());

  // Delete the oldest segments while every entry in them is covered, stopping before the
  // one with the hard state just logged (the marker may have rolled over past it).
  size_t drop = 0;
  while (drop + 1 < d.segments.size() && d.segments[drop].seq < hs_seq &&
         d.segments[drop].max_index <= snapshot.index) {
    ++drop;
  }
  if (drop == 0) return Status::OK();
  for (size_t i = 0; i < drop; ++i) {
    s = d.fs->Remove(d.segments[i].path);
    if (!s.ok()) {
      d.segments.erase(d.segments.begin(), d.segments.begin() + static_cast<ptrdiff_t>(i));
      return d.Fail(s);
    }
  }
  d.segments.erase(d.segments.begin(), d.segments.begin() + static_cast<ptrdiff_t>(drop));
  s = d.fs->SyncDir(d.wal_dir);
  if (!s.ok()) return d.Fail(s);
  return Status::OK();
}

uint64_t LogStore::wal_bytes() const {
  uint64_t total = 0;
  for (const auto& seg : impl_->segments) total += seg.used;
  return total;
}

size_t LogStore::segment_count() const { return impl_->segments.size(); }

const Status& LogStore::write_error() const { return impl_->error; }

const std::vector<std::string>& LogStore::recovery_notes() const { return impl_->notes; }

uint64_t LogStore::allocated_bytes() const {
  uint64_t total = 0;
  for (const auto& seg : impl_->segments) total += seg.allocated;
  return total;
}

}  // namespace mesh::core
