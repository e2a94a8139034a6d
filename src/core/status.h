// Status and Result<T>: the one error type of the data path (no exceptions).
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace porcupine {

// The numbers travel in inter-node replies (rpc/cluster.proto): never
// renumber, only add.
enum class Code {
  kOk = 0,
  kInvalidArgument = 1,      // the caller's input is malformed
  kNotFound = 2,             // the named object does not exist
  kAlreadyExists = 3,        // creating something that exists
  kPermissionDenied = 4,     // bad credentials, refused policy
  kResourceExhausted = 5,    // a limit or quota was hit
  kUnavailable = 6,          // transient: retry later (peer down, shutting down)
  kIoError = 7,              // the environment failed (disk, socket)
  kCorruption = 8,           // stored or received data is damaged
  kInternal = 9,             // a broken invariant
  kAborted = 10,             // refused because caller and callee are in different views: retry
                             // once the views agree (the cluster's "wrong manager")
  kUnknownOutcome = 11,      // a call to another node timed out or broke after it was sent:
                             // it may or may not have taken effect
  kFailedPrecondition = 12,  // the object is not in a state that allows the operation
};
inline constexpr Code kLastCode = Code::kFailedPrecondition;

// Names a code in lower case ("not_found"); for logs and JSON.
std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
  static Status PermissionDenied(std::string m) { return {Code::kPermissionDenied, std::move(m)}; }
  static Status ResourceExhausted(std::string m) {
    return {Code::kResourceExhausted, std::move(m)};
  }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status Aborted(std::string m) { return {Code::kAborted, std::move(m)}; }
  static Status UnknownOutcome(std::string m) { return {Code::kUnknownOutcome, std::move(m)}; }
  static Status FailedPrecondition(std::string m) {
    return {Code::kFailedPrecondition, std::move(m)};
  }
  static Status IoError(std::string m) { return {Code::kIoError, std::move(m)}; }
  static Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "ok" or "<code name>: <message>".
  std::string ToString() const;

  bool operator==(const Status&) const = default;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  // An error ("no value"); exists so Result can sit in futures and variants.
  Result() : v_(Status::Internal("no value")) {}
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "Result needs a value or an error");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  // REQUIRES: ok()
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  // OK when a value is held.
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace porcupine

// Returns early from the enclosing function when `expr` is not OK.
#define PORCUPINE_RETURN_IF_ERROR(expr) \
  do {                                  \
    ::porcupine::Status _st = (expr);   \
    if (!_st.ok()) return _st;          \
  } while (0)

// The same inside a coroutine.
#define PORCUPINE_CO_RETURN_IF_ERROR(expr) \
  do {                                     \
    ::porcupine::Status _st = (expr);      \
    if (!_st.ok()) co_return _st;          \
  } while (0)
