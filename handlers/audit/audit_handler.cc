// AuditHandler: writing, rotating, syncing, and recovering the checkpoint from the file itself.
#include "handlers/audit/audit_handler.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <vector>

#include "ipc/clock.h"
#include "ipc/region.h"

namespace hfe::handlers {

namespace {

// The position of the last complete entry of `path` (0 if none); cuts a torn last line off the file.
Result<uint64_t> RecoverTail(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return errno == ENOENT ? Result<uint64_t>(uint64_t{0}) : Result<uint64_t>(ErrnoStatus("open '" + path + "'", errno));
  struct stat st;
  ::fstat(fd, &st);
  off_t size = st.st_size;
  const off_t window = std::min<off_t>(size, 1 << 20);
  std::vector<char> buf(static_cast<size_t>(window));
  if (window > 0 && ::pread(fd, buf.data(), buf.size(), size - window) != window) {
    ::close(fd);
    return ErrnoStatus("read '" + path + "'", errno);
  }
  // Cut a torn tail: bytes after the last newline belong to an entry whose write was interrupted.
  size_t end = buf.size();
  while (end > 0 && buf[end - 1] != '\n') --end;
  if (end != buf.size() && ::ftruncate(fd, size - static_cast<off_t>(buf.size() - end)) != 0) {
    ::close(fd);
    return ErrnoStatus("truncate '" + path + "'", errno);
  }
  ::close(fd);
  if (end == 0) return uint64_t{0};
  size_t begin = end - 1;
  while (begin > 0 && buf[begin - 1] != '\n') --begin;
  auto j = nlohmann::json::parse(std::string(buf.data() + begin, end - 1 - begin), nullptr, false);
  if (j.is_discarded() || !j.contains("position")) {
    return DataLoss("the last entry of '" + path + "' is not an audit entry; move the file away to start a new log");
  }
  return j["position"].get<uint64_t>();
}

// The id of the resource an event is about: the id of its own family first (a MachineCreatedEvent also
// names its request), then the other id-like fields, then the stream.
std::string ResourceId(const nlohmann::json& details, std::string_view type_name, std::string_view stream) {
  size_t word = 1;
  while (word < type_name.size() && !std::isupper(static_cast<unsigned char>(type_name[word]))) ++word;
  std::string own(type_name.substr(0, word));
  for (char& c : own) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  own += "_id";
  if (details.is_object() && details.contains(own) && details[own].is_string() && !details[own].get<std::string>().empty()) {
    return details[own].get<std::string>();
  }
  for (const char* key : {"request_id", "machine_id", "template_id", "resource_id", "entity_id", "provider_resource_id",
                          "service_name", "strategy_name", "component"}) {
    if (details.is_object() && details.contains(key) && details[key].is_string() && !details[key].get<std::string>().empty()) {
      return details[key].get<std::string>();
    }
  }
  return std::string(stream);
}

}  // namespace

Result<std::shared_ptr<AuditHandler>> AuditHandler::Open(const AuditOptions& o) {
  if (o.path.empty()) return InvalidArgument("audit log path is empty");
  std::shared_ptr<AuditHandler> h(new AuditHandler());
  h->o_ = o;
  auto json = EventJson::Create();
  if (!json.ok()) return json.status();
  h->json_ = std::move(*json);
  auto last = RecoverTail(o.path);
  if (!last.ok()) return last.status();
  if (*last == 0) {
    auto rotated = RecoverTail(o.path + ".1");  // the current file was just rotated and is still empty
    if (rotated.ok()) last = rotated;
  }
  h->last_position_.store(*last, std::memory_order_release);
  auto fd = ipc::OpenSecure(o.path, /*create=*/true, 0600);
  if (!fd.ok()) return fd.status();
  h->fd_ = *fd;
  ::fcntl(h->fd_, F_SETFL, O_APPEND);
  struct stat st;
  ::fstat(h->fd_, &st);
  h->bytes_ = static_cast<uint64_t>(st.st_size);
  return h;
}

AuditHandler::~AuditHandler() {
  if (fd_ >= 0) {
    ::fdatasync(fd_);
    ::close(fd_);
  }
}

Status AuditHandler::Rotate() {
  ::fdatasync(fd_);
  ::close(fd_);
  fd_ = -1;
  for (int i = o_.keep - 1; i >= 1; --i) {
    std::string from = o_.path + "." + std::to_string(i), to = o_.path + "." + std::to_string(i + 1);
    ::rename(from.c_str(), to.c_str());  // missing ones are fine
  }
  if (o_.keep >= 1 && ::rename(o_.path.c_str(), (o_.path + ".1").c_str()) != 0) {
    return ErrnoStatus("rotate '" + o_.path + "'", errno);
  }
  if (o_.keep < 1) ::unlink(o_.path.c_str());
  auto fd = ipc::OpenSecure(o_.path, true, 0600);
  if (!fd.ok()) return fd.status();
  fd_ = *fd;
  ::fcntl(fd_, F_SETFL, O_APPEND);
  bytes_ = 0;
  return Status::Ok();
}

Status AuditHandler::Handle(const Event& e) {
  if (fd_ < 0) return FailedPrecondition("audit log '" + o_.path + "' is not open");
  nlohmann::json details = json_->Body(e.view.payload);
  nlohmann::json entry;
  entry["event_type"] = AuditEventType(e.type_name);
  entry["resource_id"] = ResourceId(details, e.type_name, e.view.stream);
  entry["details"] = details.is_null() ? nlohmann::json::object() : details;
  entry["event_id"] = e.view.id.ToString();
  entry["position"] = e.view.position;
  entry["stream"] = std::string(e.view.stream);
  entry["version"] = e.view.version;
  entry["occurred_at"] = clock::FormatIso8601(e.view.occurred_at_ns);
  std::string line = entry.dump();
  line += '\n';
  ssize_t n = ::write(fd_, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) {
    return ErrnoStatus("write '" + o_.path + "'", n < 0 ? errno : EIO);
  }
  bytes_ += line.size();
  ++entries_;
  if (o_.sync_every > 0 && entries_ % static_cast<uint64_t>(o_.sync_every) == 0) ::fdatasync(fd_);
  last_position_.store(e.view.position, std::memory_order_release);
  if (bytes_ >= o_.max_bytes) HFE_RETURN_IF_ERROR(Rotate());
  return Status::Ok();
}

}  // namespace hfe::handlers
