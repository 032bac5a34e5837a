// Status and Result<T>: how every fallible hfevents call reports failure.
//
// A Status is either OK (no allocation) or a code with a one-line message that says what was expected,
// what was found and what to do. No exception crosses the library boundary.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace hfe {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument,     // the caller's input is malformed
  kNotFound,            // a store, stream or file that should exist does not
  kAlreadyExists,       // creation of something that exists
  kWrongExpectedVersion,// optimistic concurrency conflict
  kDuplicateEvent,      // a batch partly matches events already appended
  kFailedPrecondition,  // the store is in a state that forbids the call
  kPermissionDenied,    // ownership, symlink or mode checks refused a file
  kIncompatible,        // another layout version
  kDataLoss,            // corruption: bad CRC, torn frame, scribbled shared memory
  kResourceExhausted,   // a table or the log is full
  kUnavailable,         // a peer did not get ready in time
  kIoError,             // a system call failed
  kInternal,
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message)
      : rep_(code == StatusCode::kOk ? nullptr : std::make_shared<Rep>(Rep{code, std::move(message)})) {}

  static Status Ok() { return Status(); }
  bool ok() const { return rep_ == nullptr; }
  StatusCode code() const { return rep_ ? rep_->code : StatusCode::kOk; }
  const std::string& message() const {
    static const std::string kEmpty;
    return rep_ ? rep_->message : kEmpty;
  }
  // "Code: message", for logs and the CLI.
  std::string ToString() const;

 private:
  struct Rep {
    StatusCode code;
    std::string message;
  };
  std::shared_ptr<const Rep> rep_;
};

inline Status InvalidArgument(std::string m) { return Status(StatusCode::kInvalidArgument, std::move(m)); }
inline Status NotFound(std::string m) { return Status(StatusCode::kNotFound, std::move(m)); }
inline Status DataLoss(std::string m) { return Status(StatusCode::kDataLoss, std::move(m)); }
inline Status IoError(std::string m) { return Status(StatusCode::kIoError, std::move(m)); }
inline Status PermissionDenied(std::string m) { return Status(StatusCode::kPermissionDenied, std::move(m)); }
inline Status Incompatible(std::string m) { return Status(StatusCode::kIncompatible, std::move(m)); }
inline Status FailedPrecondition(std::string m) { return Status(StatusCode::kFailedPrecondition, std::move(m)); }
inline Status ResourceExhausted(std::string m) { return Status(StatusCode::kResourceExhausted, std::move(m)); }

// IoError for a failed system call: "<what>: <strerror(errno)>".
Status ErrnoStatus(std::string_view what, int err);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}   // NOLINT: must not be OK
  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  std::variant<T, Status> v_;
};

#define HFE_RETURN_IF_ERROR(expr)            \
  do {                                       \
    ::hfe::Status hfe_status_ = (expr);      \
    if (!hfe_status_.ok()) return hfe_status_; \
  } while (0)

}  // namespace hfe
