// What the server observed of each call (CONTRACT.md section 4), and what
// every call gets whatever its method: the interop echo headers and the
// x-conform-response-encoding choice.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <grpcpp/grpcpp.h>

#include "control.h"
#include "observer.pb.h"

namespace peer {

/// One call's record, shared by its handler and Observer.GetCall.
class Call {
 public:
  explicit Call(conform::v1::CallRecord opening) : record_(std::move(opening)) {}

  /// The handler read one request message.
  void RequestRead();
  /// The client's END_STREAM reached the handler (never for a cancel).
  void HalfClose();
  /// One response message went out.
  void ResponseSent();
  /// Settles the outcome; the first ending wins, so a handler that returns
  /// after the client reset the stream stays CANCELLED.
  void Finish(conform::v1::Outcome outcome, grpc::StatusCode code);
  /// The record once it left RUNNING, or as it stands after `wait`.
  conform::v1::CallRecord Await(std::chrono::milliseconds wait);

 private:
  std::mutex mu_;
  std::condition_variable settled_;
  conform::v1::CallRecord record_;
};

/// The calls that carried x-conform-call-id.
class Registry {
 public:
  /// Keeps `call` under `id`; a second call with the same id replaces the
  /// first, so a rerun fixture sees its own call.
  void Keep(const std::string& id, std::shared_ptr<Call> call);
  /// The call kept under `id`, or null.
  std::shared_ptr<Call> Get(const std::string& id);

 private:
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Call>> calls_;
  std::deque<std::string> order_;
};

/// How a handler's method exchanges messages; unary requests are read by
/// C++ before the handler runs.
enum class Mode { kUnaryRequest, kStreamRequest };

/// One handler's view of its call: opens the record, applies the headers
/// every call honours, counts reads and writes, settles the outcome.
class CallScope {
 public:
  CallScope(Registry& registry, grpc::ServerContext* ctx, const char* method, Mode mode);

  /// The call's script; valid once Start() returned OK.
  const Control& control() const { return control_; }
  /// INVALID_ARGUMENT when a control header was malformed, which the
  /// reference reports before it looks at the request.
  const grpc::Status& control_status() const { return control_status_; }
  /// The call's start: a malformed control header, or fail-after 0 (after
  /// delay-ms), gives the status that ends the call here.
  std::optional<grpc::Status> Start() {
    if (!control_status_.ok()) return control_status_;
    return control_.FailAtStart(ctx_);
  }
  /// Control::BeforeResponse for this call.
  grpc::Status BeforeResponse(int sent) { return control_.BeforeResponse(ctx_, sent); }

  /// Reads one request; false at the half-close or when the call ended
  /// (then records which).
  template <class Stream, class Msg>
  bool Read(Stream* stream, Msg* msg) {
    if (stream->Read(msg)) {
      call_->RequestRead();
      return true;
    }
    NoMoreRequests();
    return false;
  }

  /// Writes one response; false when the call is gone.
  template <class Stream, class Msg>
  bool Write(Stream* stream, const Msg& msg) {
    if (!stream->Write(msg)) return false;
    call_->ResponseSent();
    return true;
  }

  /// Records how the handler ended and returns `status` for it to return.
  /// A unary-response method counts its one response here.
  grpc::Status Finish(grpc::Status status, bool unary_response);

  /// Whether the client cancelled or the deadline passed (C++'s own signal).
  bool Cancelled() const { return ctx_->IsCancelled(); }

  /// The status to end with after a failed Read or Write.
  grpc::Status Ended() const { return EndedStatus(*ctx_); }

 private:
  void NoMoreRequests();

  grpc::ServerContext* ctx_;
  std::shared_ptr<Call> call_;
  Control control_;
  grpc::Status control_status_;
};

}  // namespace peer
