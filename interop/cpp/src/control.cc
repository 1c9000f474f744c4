#include "control.h"

#include <thread>

namespace peer {
namespace {

// How often a pause looks at IsCancelled: short enough that a cancel shows
// up at once on the wire's time scale, long enough to cost nothing.
constexpr std::chrono::milliseconds kPollStep{5};

// Bounds delay-ms and response-interval-ms, as the reference does: every
// wait is bounded.
constexpr int64_t kMaxPauseMs = 600000;

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// INVALID_ARGUMENT naming the header, its value and what is wrong, as the
// reference words it.
grpc::Status ControlError(const grpc::ServerContext& ctx, const char* name, const char* reason) {
  std::string value;
  Header(ctx, name, &value);
  std::string quoted = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') quoted.push_back('\\');
    quoted.push_back(c);
  }
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                      std::string("control header ") + name + ": " + reason + " (got " + quoted + "\")");
}

// Reads header `name` into *into when present: a decimal from 0 to 2^32-1,
// surrounding spaces tolerated.
grpc::Status Number(const grpc::ServerContext& ctx, const char* name, int64_t* into) {
  std::string v;
  if (!Header(ctx, name, &v)) return grpc::Status::OK;
  size_t first = v.find_first_not_of(' '), last = v.find_last_not_of(' ');
  std::string digits = first == std::string::npos ? "" : v.substr(first, last - first + 1);
  bool decimal =
      !digits.empty() && digits.size() <= 10 && digits.find_first_not_of("0123456789") == std::string::npos;
  int64_t parsed = decimal ? std::stoll(digits) : -1;
  if (parsed < 0 || parsed > 0xffffffffLL) {
    return ControlError(ctx, name, "expected a decimal integer from 0 to 4294967295");
  }
  *into = parsed;
  return grpc::Status::OK;
}

// Reads a pause in milliseconds, at most kMaxPauseMs.
grpc::Status ParsePause(const grpc::ServerContext& ctx, const char* name, std::chrono::milliseconds* into) {
  int64_t ms = 0;
  grpc::Status bad = Number(ctx, name, &ms);
  if (!bad.ok()) return bad;
  if (ms > kMaxPauseMs) return ControlError(ctx, name, "pauses above 600000 ms are refused");
  *into = std::chrono::milliseconds(ms);
  return grpc::Status::OK;
}

// Whether s is well-formed UTF-8 (no overlongs, surrogates or values past
// U+10FFFF), as the reference requires of a decoded fail-message.
bool ValidUtf8(const std::string& s) {
  static const uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
  for (size_t i = 0; i < s.size();) {
    unsigned char c = s[i];
    // Continuation bytes after the lead byte: 0 to 3; 4 marks an invalid lead.
    size_t n = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xe ? 2 : (c >> 3) == 0x1e ? 3 : 4;
    if (n == 4 || i + n >= s.size()) return false;
    uint32_t cp = n == 0 ? c : c & (0x3f >> n);
    for (size_t k = 1; k <= n; ++k) {
      unsigned char cc = s[i + k];
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

// fail-code and fail-message, which count only with fail-after.
grpc::Status ParseFailure(const grpc::ServerContext& ctx, Control* out) {
  int64_t code = static_cast<int64_t>(grpc::StatusCode::UNKNOWN);
  grpc::Status bad = Number(ctx, "x-conform-fail-code", &code);
  if (!bad.ok()) return bad;
  if (code > 16) return ControlError(ctx, "x-conform-fail-code", "expected a gRPC status code from 0 to 16");
  out->fail_code = static_cast<grpc::StatusCode>(code);
  std::string message;
  if (Header(ctx, "x-conform-fail-message", &message)) {
    // The header carries the message percent-encoded, as grpc-message does
    // (a header value can't hold every text); C-core encodes it again.
    out->fail_message = PercentDecode(message);
    if (!ValidUtf8(out->fail_message)) {
      return ControlError(ctx, "x-conform-fail-message", "percent-decodes to invalid UTF-8");
    }
  }
  Header(ctx, "x-conform-fail-details-bin", &out->fail_details);
  return grpc::Status::OK;
}

}  // namespace

bool Header(const grpc::ServerContext& ctx, const std::string& key, std::string* value) {
  auto it = ctx.client_metadata().find(key);
  if (it == ctx.client_metadata().end()) {
    value->clear();
    return false;
  }
  value->assign(it->second.data(), it->second.size());
  return true;
}

std::string PercentDecode(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    int hi = s[i] == '%' && i + 2 < s.size() ? HexDigit(s[i + 1]) : -1;
    int lo = hi >= 0 ? HexDigit(s[i + 2]) : -1;
    if (lo < 0) {
      out.push_back(s[i]);
      continue;
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

grpc::Status Control::Parse(const grpc::ServerContext& ctx, Control* out) {
  *out = Control{};
  // The reference's order and wording, so that the same typo gives the same
  // status message on every peer.
  grpc::Status bad = Number(ctx, "x-conform-fail-after", &out->fail_after);
  if (bad.ok() && out->fail_after >= 0) bad = ParseFailure(ctx, out);
  if (bad.ok()) bad = Number(ctx, "x-conform-response-count", &out->response_count);
  if (bad.ok()) bad = ParsePause(ctx, "x-conform-response-interval-ms", &out->interval);
  if (bad.ok()) bad = ParsePause(ctx, "x-conform-delay-ms", &out->delay);
  if (bad.ok()) bad = Number(ctx, "x-conform-close-after-requests", &out->close_after);
  if (bad.ok()) bad = Number(ctx, "x-conform-response-size", &out->response_size);
  if (bad.ok() && out->response_size > 16 * 1024 * 1024) {
    bad = ControlError(ctx, "x-conform-response-size", "sizes above 16777216 bytes are refused");
  }
  return bad;
}

std::optional<grpc::Status> Control::FailAtStart(grpc::ServerContext* ctx) const {
  if (fail_after != 0) return std::nullopt;
  grpc::Status paused = Pause(ctx, delay);
  if (!paused.ok()) return paused;
  return grpc::Status(fail_code, fail_message, fail_details);
}

grpc::Status Control::BeforeResponse(grpc::ServerContext* ctx, int sent) const {
  return Pause(ctx, sent == 0 ? delay : interval);
}

std::optional<grpc::Status> Control::AfterResponse(int sent) const {
  if (fail_after > 0 && sent == fail_after) return grpc::Status(fail_code, fail_message, fail_details);
  return std::nullopt;
}

grpc::Status Pause(grpc::ServerContext* ctx, std::chrono::milliseconds d) {
  auto until = std::chrono::steady_clock::now() + d;
  while (true) {
    if (ctx->IsCancelled()) return EndedStatus(*ctx);
    auto left = until - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) return grpc::Status::OK;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(left, kPollStep));
  }
}

grpc::Status EndedStatus(const grpc::ServerContext& ctx) {
  if (ctx.deadline() <= std::chrono::system_clock::now()) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline exceeded while the handler ran");
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled by the client");
}

}  // namespace peer
