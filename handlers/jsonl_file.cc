// JsonlFile: torn-tail repair, appends, rotation, sync.
#include "handlers/jsonl_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <vector>

#include "ipc/region.h"

namespace hfe::handlers {

namespace {

// The position of the last complete entry of `path` (0 if none); cuts a torn last line off the file.
Result<uint64_t> RecoverTail(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return errno == ENOENT ? Result<uint64_t>(uint64_t{0}) : Result<uint64_t>(ErrnoStatus("open '" + path + "'", errno));
  struct stat st;
  ::fstat(fd, &st);
  const off_t size = st.st_size;
  const off_t window = std::min<off_t>(size, 1 << 20);
  std::vector<char> buf(static_cast<size_t>(window));
  if (window > 0 && ::pread(fd, buf.data(), buf.size(), size - window) != window) {
    ::close(fd);
    return ErrnoStatus("read '" + path + "'", errno);
  }
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
  if (j.is_discarded() || !j.contains("position") || !j["position"].is_number_unsigned()) {
    return DataLoss("the last line of '" + path + "' is not an hfevents entry; move the file away to start a new one");
  }
  return j["position"].get<uint64_t>();
}

}  // namespace

JsonlFile::~JsonlFile() {
  if (fd_ >= 0) {
    (void)WriteBuffer();
    ::fdatasync(fd_);
    ::close(fd_);
  }
}

Status JsonlFile::Open(const JsonlOptions& o) {
  if (o.path.empty()) return InvalidArgument("a JSON-lines output needs a path");
  o_ = o;
  auto last = RecoverTail(o.path);
  if (!last.ok()) return last.status();
  if (*last == 0) {
    auto rotated = RecoverTail(o.path + ".1");  // the current file was just rotated and is still empty
    if (rotated.ok()) last = rotated;
  }
  last_position_ = written_position_ = *last;
  buffer_.reserve(o.buffer_bytes + 4096);
  auto fd = ipc::OpenSecure(o.path, /*create=*/true, 0600, /*exclusive=*/false, /*refuse_wider=*/false);
  if (!fd.ok()) return fd.status();
  fd_ = *fd;
  ::fcntl(fd_, F_SETFL, O_APPEND);
  struct stat st;
  ::fstat(fd_, &st);
  bytes_ = static_cast<uint64_t>(st.st_size);
  return Status::Ok();
}

Status JsonlFile::Rotate() {
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
  auto fd = ipc::OpenSecure(o_.path, true, 0600, /*exclusive=*/false, /*refuse_wider=*/false);
  if (!fd.ok()) return fd.status();
  fd_ = *fd;
  ::fcntl(fd_, F_SETFL, O_APPEND);
  bytes_ = 0;
  return Status::Ok();
}

Status JsonlFile::Append(const nlohmann::json& entry) {
  uint64_t pos = entry.contains("position") ? entry["position"].get<uint64_t>() : last_position_;
  return AppendLine(entry.dump(), pos);
}

Status JsonlFile::AppendLine(std::string_view line, uint64_t position) {
  if (fd_ < 0) return FailedPrecondition("'" + o_.path + "' is not open");
  buffer_.append(line);
  buffer_.push_back('\n');
  ++entries_;
  ++buffered_;
  last_position_ = position;
  if (buffer_.size() >= o_.buffer_bytes) return WriteBuffer();
  return Status::Ok();
}

Status JsonlFile::Flush() { return WriteBuffer(); }

Status JsonlFile::WriteBuffer() {
  if (buffer_.empty()) return Status::Ok();
  if (fd_ < 0) return FailedPrecondition("'" + o_.path + "' is not open");
  // Whole lines in one write(2): a crash can tear only the last line, which Open() cuts off.
  ssize_t n = ::write(fd_, buffer_.data(), buffer_.size());
  if (n != static_cast<ssize_t>(buffer_.size())) {
    int err = n < 0 ? errno : EIO;
    if (n > 0) {  // a short write: the file ends mid-line; cut it back to the last whole line we know
      ::ftruncate(fd_, static_cast<off_t>(bytes_));
    }
    return ErrnoStatus("write '" + o_.path + "'", err);
  }
  bytes_ += buffer_.size();
  buffer_.clear();
  written_position_ = last_position_;
  unsynced_ += buffered_;
  buffered_ = 0;
  if (o_.sync_every > 0 && unsynced_ >= static_cast<uint64_t>(o_.sync_every)) {
    ::fdatasync(fd_);
    unsynced_ = 0;
  }
  if (o_.max_bytes > 0 && bytes_ >= o_.max_bytes) return Rotate();
  return Status::Ok();
}

Status JsonlFile::Sync() {
  if (fd_ >= 0 && ::fdatasync(fd_) != 0) return ErrnoStatus("fdatasync '" + o_.path + "'", errno);
  return Status::Ok();
}

Status WriteFileAtomically(const std::string& path, std::string_view text) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) return ErrnoStatus("create '" + tmp + "'", errno);
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = std::fclose(f) == 0 && ok;
  if (!ok) return IoError("write '" + tmp + "' failed (disk full?)");
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoStatus("rename to '" + path + "'", errno);
  return Status::Ok();
}

}  // namespace hfe::handlers
