// The control headers of CONTRACT.md section 3 that a handler acts on.
//
// Every response a handler may send is a "slot": before slot n the handler
// pauses (x-conform-delay-ms before the first, x-conform-response-interval-ms
// before the others), and when n equals x-conform-fail-after it ends the call
// with the scripted status instead of sending. A call that would end with OK
// after exactly fail-after responses ends with that status too.
#pragma once

#include <chrono>
#include <string>

#include <grpcpp/grpcpp.h>

namespace peer {

/// One call's script, read from its request headers.
struct Control {
  /// Overrides a server stream's length when >= 0.
  int response_count = -1;
  /// Pause before the first response.
  std::chrono::milliseconds delay{0};
  /// Pause before every response after the first.
  std::chrono::milliseconds interval{0};
  /// The slot that fails instead of sending, -1 for none.
  int fail_after = -1;
  /// The status code of the scripted failure (UNKNOWN unless told).
  grpc::StatusCode fail_code = grpc::StatusCode::UNKNOWN;
  /// The status message of the scripted failure, percent-decoded.
  std::string fail_message;
  /// Ends a client or bidi stream with OK after that many requests, -1: never.
  int close_after = -1;

  /// Reads the headers of `ctx`'s call into `out`; a malformed number is
  /// INVALID_ARGUMENT naming the header, so a typo in a fixture is not read
  /// as "absent".
  static grpc::Status Parse(const grpc::ServerContext& ctx, Control* out);

  /// Paces slot n and returns the scripted status if it fails instead
  /// (CANCELLED / DEADLINE_EXCEEDED if the call ended during the pause).
  grpc::Status BeforeResponse(grpc::ServerContext* ctx, int n) const;

  /// The scripted status when `sent` reached fail-after, OK otherwise.
  grpc::Status FailIfDue(int sent) const;

  /// Whether a client or bidi stream ends now that it read `read` requests.
  bool ClosesAfter(int read) const { return close_after >= 0 && read >= close_after; }

  /// Number of responses of a server stream whose default is `n`.
  int Count(int n) const { return response_count >= 0 ? response_count : n; }
};

/// Sleeps for `d`, waking early (with CANCELLED or DEADLINE_EXCEEDED) when the
/// client cancels or the deadline passes: C++'s own signal,
/// ServerContext::IsCancelled, polled every few milliseconds.
grpc::Status Pause(grpc::ServerContext* ctx, std::chrono::milliseconds d);

/// The status of a call that C-core cancelled: DEADLINE_EXCEEDED when its
/// deadline has passed, CANCELLED otherwise.
grpc::Status EndedStatus(const grpc::ServerContext& ctx);

/// Decodes %XX escapes as grpc-message does; returns `s` unchanged when it is
/// not valid percent-encoding.
std::string PercentDecode(const std::string& s);

/// The first value of request header `key`, or "" (and false) when absent.
bool Header(const grpc::ServerContext& ctx, const std::string& key, std::string* value);

}  // namespace peer
