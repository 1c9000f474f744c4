// The control headers of CONTRACT.md section 3 that a handler acts on, with
// the reference's rules:
// - delay-ms pauses before the first response (for unary and client
//   streaming: after the requests were read); response-interval-ms before
//   each later one.
// - fail-after: 0 ends the call with the fail status at the handler's start,
//   after delay-ms, before any request is read. fail-after: N > 0 ends it
//   right after the N-th response; a call that ends with fewer responses ends
//   as it would have, so N > 0 changes nothing for a method with one response.
// - close-after-requests: N stops reading after N requests and finishes OK.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

namespace peer {

/// One call's script, read from its request headers.
struct Control {
  /// Overrides a server stream's length when >= 0.
  int64_t response_count = -1;
  /// Pause before the first response.
  std::chrono::milliseconds delay{0};
  /// Pause before every response after the first.
  std::chrono::milliseconds interval{0};
  /// Responses after which the call fails, -1 for none; 0 fails at the start.
  int64_t fail_after = -1;
  /// The status code of the scripted failure (UNKNOWN unless told).
  grpc::StatusCode fail_code = grpc::StatusCode::UNKNOWN;
  /// The status message of the scripted failure, percent-decoded.
  std::string fail_message;
  /// Stops reading a client or bidi stream after that many requests and
  /// finishes OK, -1: never.
  int64_t close_after = -1;
  /// Pads each response's text to that many bytes, -1: none.
  int64_t response_size = -1;
  /// x-conform-fail-details-bin (C++ hands -bin values over decoded), sent
  /// as grpc-status-details-bin with the scripted failure.
  std::string fail_details;

  /// `text` padded at its end with x to response_size bytes; a longer text,
  /// or no header, leaves it as it is.
  std::string Pad(std::string text) const {
    if (response_size > static_cast<int64_t>(text.size())) text.append(response_size - text.size(), 'x');
    return text;
  }

  /// Reads the headers of `ctx`'s call into `out`; a malformed number is
  /// INVALID_ARGUMENT naming the header, so a typo in a fixture is not read
  /// as "absent".
  static grpc::Status Parse(const grpc::ServerContext& ctx, Control* out);

  /// With fail-after 0: waits delay-ms and gives the status that ends the
  /// call before anything else happens (the scripted one, which may be OK, or
  /// CANCELLED / DEADLINE_EXCEEDED); nothing otherwise.
  std::optional<grpc::Status> FailAtStart(grpc::ServerContext* ctx) const;

  /// Waits as scripted before response number `sent` (from 0); CANCELLED or
  /// DEADLINE_EXCEEDED if the call ended during the pause.
  grpc::Status BeforeResponse(grpc::ServerContext* ctx, int sent) const;

  /// The status that ends the call when the response just sent was the
  /// fail-after-th; nothing otherwise.
  std::optional<grpc::Status> AfterResponse(int sent) const;

  /// Whether a client or bidi stream ends now that it read `read` requests.
  bool ClosesAfter(int64_t read) const { return close_after >= 0 && read >= close_after; }

  /// Number of responses of a server stream whose default is `n`.
  int64_t Count(int64_t n) const { return response_count >= 0 ? response_count : n; }
};

/// Sleeps for `d`, waking early (with CANCELLED or DEADLINE_EXCEEDED) when the
/// client cancels or the deadline passes: C++'s own signal,
/// ServerContext::IsCancelled, polled every few milliseconds.
grpc::Status Pause(grpc::ServerContext* ctx, std::chrono::milliseconds d);

/// The status of a call that C-core cancelled: DEADLINE_EXCEEDED when its
/// deadline has passed, CANCELLED otherwise.
grpc::Status EndedStatus(const grpc::ServerContext& ctx);

/// Decodes %XX escapes leniently, as the reference does: a "%" not followed
/// by two hex digits stays as it is, so plain text may be sent as it is.
std::string PercentDecode(const std::string& s);

/// The first value of request header `key`, or "" (and false) when absent.
bool Header(const grpc::ServerContext& ctx, const std::string& key, std::string* value);

}  // namespace peer
