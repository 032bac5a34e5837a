// Status names and errno helpers.
#include "ipc/status.h"

#include <sys/resource.h>

#include <cstring>

namespace hfe {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kInvalidArgument: return "InvalidArgument";
    case StatusCode::kNotFound: return "NotFound";
    case StatusCode::kAlreadyExists: return "AlreadyExists";
    case StatusCode::kWrongExpectedVersion: return "WrongExpectedVersion";
    case StatusCode::kDuplicateEvent: return "DuplicateEvent";
    case StatusCode::kFailedPrecondition: return "FailedPrecondition";
    case StatusCode::kPermissionDenied: return "PermissionDenied";
    case StatusCode::kIncompatible: return "Incompatible";
    case StatusCode::kDataLoss: return "DataLoss";
    case StatusCode::kResourceExhausted: return "ResourceExhausted";
    case StatusCode::kUnavailable: return "Unavailable";
    case StatusCode::kIoError: return "IoError";
    case StatusCode::kInternal: return "Internal";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s(StatusCodeName(code()));
  s += ": ";
  s += message();
  return s;
}

Status ErrnoStatus(std::string_view what, int err) {
  std::string m(what);
  m += ": ";
  m += std::strerror(err);
  if (err == EMFILE || err == ENFILE) {
    // Not damage: say which limit ran out and how to raise it.
    struct rlimit rl {};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    m += err == EMFILE ? " (this process ran out of file descriptors: its limit, `ulimit -n`, is " +
                             std::to_string(rl.rlim_cur) + "; raise it or close descriptors, then retry)"
                       : " (the system's file table is full; close files elsewhere, then retry)";
    return Status(StatusCode::kResourceExhausted, std::move(m));
  }
  return Status(err == EACCES || err == EPERM ? StatusCode::kPermissionDenied
                : err == ENOENT               ? StatusCode::kNotFound
                                              : StatusCode::kIoError,
                std::move(m));
}

}  // namespace hfe
