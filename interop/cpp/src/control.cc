#include "control.h"

#include <cerrno>
#include <cstdlib>
#include <thread>

namespace peer {
namespace {

// How often a pause looks at IsCancelled: short enough that a cancel shows
// up at once on the wire's time scale, long enough to cost nothing.
constexpr std::chrono::milliseconds kPollStep{5};

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
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    int hi = i + 2 < s.size() ? HexDigit(s[i + 1]) : -1;
    int lo = i + 2 < s.size() ? HexDigit(s[i + 2]) : -1;
    if (hi < 0 || lo < 0) return s;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

grpc::Status Control::Parse(const grpc::ServerContext& ctx, Control* out) {
  *out = Control{};
  struct Number {
    const char* name;
    int* into;
  };
  int delay_ms = 0, interval_ms = 0, fail_code = static_cast<int>(grpc::StatusCode::UNKNOWN);
  const Number numbers[] = {
      {"x-conform-response-count", &out->response_count},
      {"x-conform-delay-ms", &delay_ms},
      {"x-conform-response-interval-ms", &interval_ms},
      {"x-conform-fail-after", &out->fail_after},
      {"x-conform-fail-code", &fail_code},
      {"x-conform-close-after-requests", &out->close_after},
  };
  for (const Number& n : numbers) {
    std::string v;
    if (!Header(ctx, n.name, &v)) continue;
    char* end = nullptr;
    errno = 0;
    long parsed = v.empty() || v[0] == '-' ? -1 : std::strtol(v.c_str(), &end, 10);
    if (parsed < 0 || errno != 0 || *end != '\0' || parsed > 0x7fffffff) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          std::string("header ") + n.name + ": \"" + v + "\" is not a non-negative integer");
    }
    *n.into = static_cast<int>(parsed);
  }
  out->delay = std::chrono::milliseconds(delay_ms);
  out->interval = std::chrono::milliseconds(interval_ms);
  out->fail_code = static_cast<grpc::StatusCode>(fail_code);
  std::string message;
  if (Header(ctx, "x-conform-fail-message", &message)) {
    // The header carries the message percent-encoded, as grpc-message does
    // (a header value can't hold non-ASCII text); C-core encodes it again.
    out->fail_message = PercentDecode(message);
  }
  return grpc::Status::OK;
}

grpc::Status Control::BeforeResponse(grpc::ServerContext* ctx, int n) const {
  grpc::Status paused = Pause(ctx, n == 0 ? delay : interval);
  if (!paused.ok()) return paused;
  return FailIfDue(n);
}

grpc::Status Control::FailIfDue(int sent) const {
  if (fail_after >= 0 && sent == fail_after) return grpc::Status(fail_code, fail_message);
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
