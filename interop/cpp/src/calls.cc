#include "calls.h"

#include <cmath>
#include <thread>

#include <absl/strings/escaping.h>

namespace peer {
namespace {

using conform::v1::CallRecord;
using conform::v1::Outcome;

// Bounds memory on a peer that runs for a whole matrix; the oldest records go
// first, as in the reference.
constexpr size_t kMaxKeptCalls = 10000;

// C++'s sync Read() says false both at the half-close and when the call was
// cancelled, and C-core may flag the cancel on the ServerContext a moment
// after the failed read returns. A false Read is taken for a half-close only
// once IsCancelled() stayed false this long, so a reset is never recorded as
// a half-close. (Without the wait, 25 runs of check.py's cancel checks never
// saw the flag late; the wait is a margin, kept short because every client
// stream's answer waits for it.)
constexpr std::chrono::milliseconds kCancelSettle{10};

// The time left on the call's deadline in milliseconds, rounded up so that
// the time C-core took to reach the handler does not turn 1000m into 999;
// 0 when the call has no deadline.
int64_t TimeoutMs(const grpc::ServerContext& ctx) {
  if (ctx.raw_deadline().tv_sec == gpr_inf_future(GPR_CLOCK_REALTIME).tv_sec) return 0;
  auto left = ctx.deadline() - std::chrono::system_clock::now();
  return static_cast<int64_t>(std::ceil(std::chrono::duration<double, std::milli>(left).count()));
}

// Request headers whose names start with "x-". C-core hands -bin values over
// decoded, so they are base64-encoded again (unpadded, as the gRPC spec asks
// senders to); repeated headers are joined with ",".
void XHeaders(const grpc::ServerContext& ctx, CallRecord* record) {
  auto* out = record->mutable_metadata();
  for (const auto& [k, v] : ctx.client_metadata()) {
    std::string key(k.data(), k.size());
    if (key.rfind("x-", 0) != 0) continue;
    std::string value(v.data(), v.size());
    if (key.size() > 4 && key.compare(key.size() - 4, 4, "-bin") == 0) {
      value = absl::Base64Escape(value);
      value.erase(value.find_last_not_of('=') + 1);
    }
    auto [it, fresh] = out->insert({key, value});
    if (!fresh) it->second += "," + value;
  }
}

// x-conform-response-encoding: C-core compresses with it only when the
// client's grpc-accept-encoding lists it; "identity" forces none. C-core has
// gzip and deflate (zlib-wrapped); any other name is ignored.
void ChooseResponseEncoding(grpc::ServerContext* ctx) {
  std::string name;
  if (!Header(*ctx, "x-conform-response-encoding", &name)) return;
  if (name == "identity") ctx->set_compression_algorithm(GRPC_COMPRESS_NONE);
  if (name == "gzip") ctx->set_compression_algorithm(GRPC_COMPRESS_GZIP);
  if (name == "deflate") ctx->set_compression_algorithm(GRPC_COMPRESS_DEFLATE);
}

// Sends x-grpc-test-echo-initial back as a response header and
// x-grpc-test-echo-trailing-bin as a trailer (C++ re-encodes the -bin value).
void EchoInteropHeaders(grpc::ServerContext* ctx) {
  // Every value of a repeated echo header, in order.
  auto echo = [ctx](const char* key, bool initial) {
    auto range = ctx->client_metadata().equal_range(key);
    for (auto it = range.first; it != range.second; ++it) {
      std::string value(it->second.data(), it->second.size());
      if (initial) {
        ctx->AddInitialMetadata(key, value);
      } else {
        ctx->AddTrailingMetadata(key, value);
      }
    }
  };
  echo("x-grpc-test-echo-initial", true);
  echo("x-grpc-test-echo-trailing-bin", false);
}

}  // namespace

void Call::RequestRead() {
  std::lock_guard<std::mutex> lock(mu_);
  record_.set_requests_received(record_.requests_received() + 1);
}

void Call::HalfClose() {
  std::lock_guard<std::mutex> lock(mu_);
  record_.set_half_close_received(true);
}

void Call::ResponseSent() {
  std::lock_guard<std::mutex> lock(mu_);
  record_.set_responses_sent(record_.responses_sent() + 1);
}

void Call::Finish(Outcome outcome, grpc::StatusCode code) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (record_.outcome() != conform::v1::RUNNING) return;
    record_.set_outcome(outcome);
    record_.set_status_code(static_cast<uint32_t>(code));
  }
  settled_.notify_all();
}

CallRecord Call::Await(std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(mu_);
  settled_.wait_for(lock, wait, [this] { return record_.outcome() != conform::v1::RUNNING; });
  return record_;
}

void Registry::Keep(const std::string& id, std::shared_ptr<Call> call) {
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, fresh] = calls_.insert({id, call});
  if (!fresh) {
    it->second = std::move(call);
    return;
  }
  order_.push_back(id);
  if (order_.size() > kMaxKeptCalls) {
    calls_.erase(order_.front());
    order_.pop_front();
  }
}

std::shared_ptr<Call> Registry::Get(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = calls_.find(id);
  return it == calls_.end() ? nullptr : it->second;
}

CallScope::CallScope(Registry& registry, grpc::ServerContext* ctx, const char* method, Mode mode)
    : ctx_(ctx) {
  CallRecord opening;
  opening.set_method(method);
  opening.set_outcome(conform::v1::RUNNING);
  opening.set_timeout_ms(TimeoutMs(*ctx));
  std::string encoding;
  Header(*ctx, "grpc-encoding", &encoding);
  opening.set_request_encoding(encoding);
  XHeaders(*ctx, &opening);
  std::string id;
  Header(*ctx, "x-conform-call-id", &id);
  opening.set_call_id(id);
  call_ = std::make_shared<Call>(std::move(opening));
  if (!id.empty()) registry.Keep(id, call_);
  // C++ read a unary call's one request before the handler ran.
  if (mode == Mode::kUnaryRequest) call_->RequestRead();
  EchoInteropHeaders(ctx);
  ChooseResponseEncoding(ctx);
  control_status_ = Control::Parse(*ctx, &control_);
}

void CallScope::NoMoreRequests() {
  auto settle = std::chrono::steady_clock::now() + kCancelSettle;
  while (std::chrono::steady_clock::now() < settle) {
    if (ctx_->IsCancelled()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!ctx_->IsCancelled()) call_->HalfClose();
}

grpc::Status CallScope::Finish(grpc::Status status, bool unary_response) {
  if (ctx_->IsCancelled()) {
    bool expired = ctx_->deadline() <= std::chrono::system_clock::now();
    call_->Finish(expired ? conform::v1::DEADLINE_EXCEEDED : conform::v1::CANCELLED,
                  expired ? grpc::StatusCode::DEADLINE_EXCEEDED : grpc::StatusCode::CANCELLED);
    return status;
  }
  if (unary_response && status.ok()) call_->ResponseSent();
  call_->Finish(conform::v1::COMPLETED, status.error_code());
  return status;
}

}  // namespace peer
