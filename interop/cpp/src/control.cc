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
  struct Number {
    const char* name;
    int64_t max;
    int64_t* into;
  };
  constexpr int64_t kU32 = 0xffffffffLL;
  int64_t delay_ms = 0, interval_ms = 0, fail_code = static_cast<int64_t>(grpc::StatusCode::UNKNOWN);
  const Number numbers[] = {
      {"x-conform-response-count", kU32, &out->response_count},
      {"x-conform-delay-ms", kMaxPauseMs, &delay_ms},
      {"x-conform-response-interval-ms", kMaxPauseMs, &interval_ms},
      {"x-conform-fail-after", kU32, &out->fail_after},
      {"x-conform-fail-code", 16, &fail_code},
      {"x-conform-close-after-requests", kU32, &out->close_after},
  };
  for (const Number& n : numbers) {
    std::string v;
    if (!Header(ctx, n.name, &v)) continue;
    // Surrounding spaces are tolerated, as by the reference.
    size_t first = v.find_first_not_of(' '), last = v.find_last_not_of(' ');
    std::string digits = first == std::string::npos ? "" : v.substr(first, last - first + 1);
    bool decimal = !digits.empty() && digits.size() <= 10 &&
                   digits.find_first_not_of("0123456789") == std::string::npos;
    int64_t parsed = decimal ? std::stoll(digits) : -1;
    if (parsed < 0 || parsed > n.max) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          std::string("control header ") + n.name + ": expected a decimal integer from 0 to " +
                              std::to_string(n.max) + " (got \"" + v + "\")");
    }
    *n.into = parsed;
  }
  out->delay = std::chrono::milliseconds(delay_ms);
  out->interval = std::chrono::milliseconds(interval_ms);
  out->fail_code = static_cast<grpc::StatusCode>(fail_code);
  std::string message;
  if (Header(ctx, "x-conform-fail-message", &message)) {
    // The header carries the message percent-encoded, as grpc-message does
    // (a header value can't hold every text); C-core encodes it again.
    out->fail_message = PercentDecode(message);
  }
  return grpc::Status::OK;
}

grpc::Status Control::FailAtStart(grpc::ServerContext* ctx) const {
  if (fail_after != 0) return grpc::Status::OK;
  grpc::Status paused = Pause(ctx, delay);
  if (!paused.ok()) return paused;
  return grpc::Status(fail_code, fail_message);
}

grpc::Status Control::BeforeResponse(grpc::ServerContext* ctx, int sent) const {
  return Pause(ctx, sent == 0 ? delay : interval);
}

grpc::Status Control::AfterResponse(int sent) const {
  if (fail_after > 0 && sent == fail_after) return grpc::Status(fail_code, fail_message);
  return grpc::Status::OK;
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
