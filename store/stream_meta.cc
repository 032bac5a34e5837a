// Stream metadata: StreamMetadataEvents in "$meta-<stream>", read back, deletion, the tombstone check.
#include <flatbuffers/flatbuffers.h>

#include <string>

#include "ipc/clock.h"
#include "schemas/events_generated.h"
#include "store/event_store.h"
#include "store/internal/log.h"

namespace hfe::store {

namespace {

// "$meta-<stream>" in a per-thread buffer: no allocation once it has grown to the longest name.
std::string_view MetaName(std::string_view stream) {
  thread_local std::string buf;
  buf.assign("$meta-");
  buf.append(stream);
  return buf;
}

Status CheckMetaTarget(std::string_view stream) {
  HFE_RETURN_IF_ERROR(EventStore::CheckStreamName(stream));
  if (stream[0] == '$') {
    return InvalidArgument("\"" + std::string(stream) + "\" is a system stream; its metadata is the store's own");
  }
  return Status::Ok();
}

}  // namespace

bool EventStore::HasMetadata(std::string_view stream) const {
  // One load of a read-mostly word; the table is probed only in stores where metadata was ever set.
  return (log_->metadata_flags() & format::kMetaAny) && log_->GetStream(MetaName(stream)).exists;
}

Status EventStore::CheckNotTombstoned(std::string_view stream) const {
  // An early answer that spares a frame the resolver would refuse (it decides in log order, so an append
  // racing the delete is refused there). Nothing but one load unless some stream was hard-deleted.
  if (!(log_->metadata_flags() & format::kMetaHardDelete)) return Status::Ok();
  if (log_->GetStream(stream).hard_deleted) {
    return FailedPrecondition("stream \"" + std::string(stream) + "\" was deleted for good (hard delete); it cannot " +
                              "be written again, use another stream name");
  }
  return Status::Ok();
}

Result<StreamMetadata> EventStore::GetStreamMetadata(std::string_view stream) const {
  HFE_RETURN_IF_ERROR(CheckMetaTarget(stream));
  const std::string meta(MetaName(stream));
  StreamMetadata m;
  const StreamInfo info = log_->GetStream(meta);
  if (!info.exists || info.next_version == 0) return m;
  Status bad;
  Status st = log_->ReadStream(meta, info.next_version - 1, [&](const EventView& v) {
    flatbuffers::Verifier ver(v.payload.data(), v.payload.size());
    const schema::Envelope* e = schema::VerifyEnvelopeBuffer(ver) ? schema::GetEnvelope(v.payload.data()) : nullptr;
    const schema::StreamMetadataEvent* sm = e ? e->body_as_StreamMetadataEvent() : nullptr;
    if (!sm) {
      bad = DataLoss("\"" + meta + "\" version " + std::to_string(v.version) + " is not stream metadata");
      return false;
    }
    m.max_count = sm->max_count();
    m.max_age_ns = static_cast<int64_t>(sm->max_age_seconds() * 1e9);
    m.truncate_before = sm->truncate_before();
    m.deleted = sm->deleted();
    m.hard_deleted = sm->hard_deleted();
    return false;
  });
  HFE_RETURN_IF_ERROR(st);
  HFE_RETURN_IF_ERROR(bad);
  return m;
}

Status EventStore::SetStreamMetadata(std::string_view stream, const StreamMetadata& m) {
  HFE_RETURN_IF_ERROR(CheckMetaTarget(stream));
  if (m.max_age_ns < 0) return InvalidArgument("max age must be positive (or 0 for none)");
  // Read, check, then append expecting the version read: a hard delete that lands in between makes the
  // append conflict, and the next round sees it (so nothing written after a tombstone can undo it).
  Status last;
  for (int round = 0; round < 64; ++round) {
    const StreamInfo before = log_->GetStream(MetaName(stream));
    auto current = GetStreamMetadata(stream);
    if (!current.ok()) return current.status();
    if (current->hard_deleted && !m.hard_deleted) {
      return FailedPrecondition("stream \"" + std::string(stream) + "\" was deleted for good; its metadata is final");
    }
    if (current->hard_deleted) return Status::Ok();  // deleted for good already
    const ExpectedVersion expected =
        before.exists ? ExpectedVersion::Exact(before.next_version - 1) : ExpectedVersion::NoStream();
    last = AppendMetadata(stream, m, expected);
    if (last.code() != StatusCode::kWrongExpectedVersion) return last;
  }
  return last;
}

Status EventStore::AppendMetadata(std::string_view stream, const StreamMetadata& m, ExpectedVersion expected) {
  const std::string meta(MetaName(stream));
  const std::string name(stream);
  flatbuffers::FlatBufferBuilder b(256);
  auto body = schema::CreateStreamMetadataEventDirect(b, name.c_str(), m.max_count, m.max_age_ns / 1e9,
                                                      m.truncate_before, m.deleted, m.hard_deleted);
  const EventId id = EventId::Random();
  schema::Uuid uid(id.hi, id.lo);
  auto env = schema::CreateEnvelopeDirect(b, &uid, meta.c_str(), "metadata", clock::WallNanos(), 1, nullptr, nullptr,
                                          nullptr, schema::EventBody::StreamMetadataEvent, body.Union());
  schema::FinishEnvelopeBuffer(b, env);
  EventData d{id, static_cast<uint32_t>(schema::EventBody::StreamMetadataEvent), 0,
              std::span<const uint8_t>(b.GetBufferPointer(), b.GetSize())};
  // The flags go up before the metadata is visible, so no reader or appender can miss it.
  log_->AddMetadataFlags(format::kMetaAny | (m.hard_deleted ? format::kMetaHardDelete : 0));
  // A hard delete's record carries the tombstone flag: the resolver marks the stream deleted in log order.
  StreamAppend a{meta, expected, {&d, 1}};
  return log_->Append({&a, 1}, {}, m.hard_deleted ? format::kRecordTombstone : 0).status();
}

Status EventStore::DeleteStream(std::string_view stream, bool hard) {
  HFE_RETURN_IF_ERROR(CheckMetaTarget(stream));
  auto m = GetStreamMetadata(stream);
  if (!m.ok()) return m.status();
  if (m->hard_deleted) return Status::Ok();
  const StreamInfo info = log_->GetStream(stream);
  if (!info.exists && !hard) {
    return NotFound("no stream \"" + std::string(stream) + "\" to delete (`hostfactory read --last 20` lists recent ones)");
  }
  m->deleted = true;
  m->truncate_before = hard ? UINT64_MAX : info.next_version;
  m->hard_deleted = hard;
  return SetStreamMetadata(stream, *m);
}

}  // namespace hfe::store
