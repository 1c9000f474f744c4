#include "call.h"

#include <cstdio>
#include <thread>

#include <google/protobuf/stubs/strutil.h>

namespace conform_client {
namespace {

// How long a call may take to hand its last operation back once the plan's
// timeout_ms has cancelled it.
constexpr auto kStuckGrace = std::chrono::seconds(2);

bool IsBin(const std::string& name) { return name.size() > 4 && name.compare(name.size() - 4, 4, "-bin") == 0; }

// Metadata as C++ hands it over (a multimap: sorted by name, each name's
// values in arrival order); -bin values in padded base64 (as the kit's own
// client reports them).
nlohmann::json Pairs(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [key, raw] : metadata) {
    std::string name(key.data(), key.size()), value(raw.data(), raw.size());
    if (IsBin(name)) {
      std::string encoded;
      google::protobuf::Base64Escape(value, &encoded);
      value = encoded;
    }
    out.push_back({name, value});
  }
  return out;
}

const char* CodeName(grpc::StatusCode code) {
  static const char* const names[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                                      "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                                      "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
                                      "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  int n = static_cast<int>(code);
  return n >= 0 && n <= 16 ? names[n] : "(not a status code)";
}

}  // namespace

CallRun::CallRun(const PlanCall& spec, const MethodEntry& method, std::shared_ptr<grpc::Channel> channel,
                 Clock::time_point plan_deadline, int64_t plan_timeout_ms)
    : spec_(spec),
      method_(method),
      channel_(std::move(channel)),
      plan_deadline_(plan_deadline),
      plan_timeout_ms_(plan_timeout_ms),
      poller_([this] { Poll(); }) {}

CallRun::~CallRun() {
  // Every operation has completed (each step waits for its own), so the
  // queue can shut down: the poller drains it and returns.
  cq_.Shutdown();
  poller_.join();
  rpc_.reset();
}

void CallRun::Poll() {
  void* tag = nullptr;
  bool ok = false;
  while (cq_.Next(&tag, &ok)) {
    std::lock_guard<std::mutex> lock(mutex_);
    completions_.push_back(ok);
    completed_.notify_one();
  }
}

nlohmann::json CallRun::Run() {
  where_ = "when the call opened";
  if (!OneRequest(spec_.mode)) Start(nullptr);
  for (size_t i = 0; i < spec_.steps.size(); ++i) {
    const Step& step = spec_.steps[i];
    if (Clock::now() >= plan_deadline_) break;  // the drain below ends the call
    if (ended_ && step.op != Step::Op::kPause) continue;
    where_ = "at steps[" + std::to_string(i) + "] (" + step.name + ")";
    Do(step);
  }
  where_ = "while draining the call after its last step";
  if (rpc_ == nullptr && !ended_) {
    client_error_ = "client: the call never started: the plan's timeout_ms ran out first";
    ended_ = true;
  }
  ReceiveAll();
  return Report();
}

void CallRun::Do(const Step& step) {
  switch (step.op) {
    case Step::Op::kSend:
      Send(step.message);
      break;
    case Step::Op::kSendMany:
      for (int64_t n = 1; n <= step.count && !ended_; ++n) Send(ExpandTemplate(step.message, n));
      break;
    case Step::Op::kHalfClose:
      HalfClose();
      break;
    case Step::Op::kReceiveHeaders:
      ReceiveHeaders();
      break;
    case Step::Op::kReceive:
      Receive();
      break;
    case Step::Op::kReceiveAll:
      ReceiveAll();
      break;
    case Step::Op::kCancel:
      cancelled_ = true;
      ctx_.TryCancel();
      break;
    case Step::Op::kPause:
      std::this_thread::sleep_until(std::min(Clock::now() + std::chrono::milliseconds(step.ms), plan_deadline_));
      break;
  }
}

// Opens the call: deadline, metadata and compression are set on the
// ClientContext first, as a C++ application does before calling the stub.
void CallRun::Start(const nlohmann::json* request) {
  if (spec_.deadline_ms) ctx_.set_deadline(Clock::now() + std::chrono::milliseconds(*spec_.deadline_ms));
  for (const auto& [name, value] : spec_.metadata) ctx_.AddMetadata(name, value);
  if (spec_.compression) ctx_.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  rpc_ = method_.open(channel_, &ctx_, &cq_);
  if (rpc_->Start(request, this) && !Wait("StartCall")) ReceiveAll();  // the call is over: read why
}

void CallRun::Send(const nlohmann::json& message) {
  if (OneRequest(spec_.mode)) {
    request_ = message;
    return;
  }
  rpc_->Write(message, this);
  if (!Wait("Write")) ReceiveAll();  // the stream is over: its status says why
}

void CallRun::HalfClose() {
  if (spec_.mode == Mode::kUnary) {
    // The usual async unary call: StartCall, then Finish at once. StartCall
    // only stages the batch (headers, request, half-close); Finish sends it
    // with the operations that receive the answer. Later steps wait for it.
    Start(&request_);
    rpc_->Finish(&status_, this);
    finish_pending_ = true;
    return;
  }
  if (spec_.mode == Mode::kServerStreaming) {
    Start(&request_);
    return;
  }
  rpc_->WritesDone(this);
  if (!Wait("WritesDone")) ReceiveAll();
}

void CallRun::ReceiveHeaders() {
  // C++ allows ReadInitialMetadata only before any operation that receives
  // the headers itself; after one, they are already in the context.
  if (metadata_in_) return;
  if (finish_pending_) {
    AwaitFinish();  // a unary call's headers come with its end
    return;
  }
  rpc_->ReadInitialMetadata(this);
  Wait("ReadInitialMetadata");
  metadata_in_ = true;
}

void CallRun::Receive() {
  if (spec_.mode == Mode::kUnary || spec_.mode == Mode::kClientStreaming) {
    FinishCall();
    return;
  }
  rpc_->Read(this);
  bool ok = Wait("Read");
  metadata_in_ = true;
  if (ok) {
    messages_.push_back(rpc_->Received());
  } else {
    FinishCall();
  }
}

void CallRun::ReceiveAll() {
  while (!ended_) Receive();
}

void CallRun::FinishCall() {
  if (!finish_pending_) rpc_->Finish(&status_, this);
  finish_pending_ = true;
  AwaitFinish();
}

// Waits for Finish: the status, the headers if not in yet, and for unary and
// client streaming the one response.
void CallRun::AwaitFinish() {
  Wait("Finish");
  finish_pending_ = false;
  metadata_in_ = true;
  ended_ = true;
  bool one_response = spec_.mode == Mode::kUnary || spec_.mode == Mode::kClientStreaming;
  if (one_response && status_.ok()) messages_.push_back(rpc_->Received());
}

// Waits for the one operation in flight. When the plan's timeout_ms runs out
// first, cancels the call and waits a little more for the operation to fail.
bool CallRun::Wait(const char* op) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto done = [this] { return !completions_.empty(); };
  if (!completed_.wait_until(lock, plan_deadline_, done)) {
    if (timed_out_.empty() && !cancelled_) timed_out_ = where_;
    ctx_.TryCancel();
    if (!completed_.wait_for(lock, kStuckGrace, done)) {
      fprintf(stderr, "interop/cpp/client: %s %s: %s did not complete 2 s after the plan's timeout_ms cancelled it\n",
              spec_.method.c_str(), where_.c_str(), op);
      std::_Exit(1);
    }
  }
  bool ok = completions_.front();
  completions_.pop_front();
  return ok;
}

nlohmann::json CallRun::Report() const {
  nlohmann::json out;
  nlohmann::json headers = nullptr;
  if (rpc_ != nullptr && metadata_in_) {
    headers = Pairs(ctx_.GetServerInitialMetadata());
    if (headers.empty()) headers = nullptr;
  }
  out["headers"] = headers;
  out["messages"] = messages_;
  out["trailers"] = rpc_ != nullptr ? Pairs(ctx_.GetServerTrailingMetadata()) : nlohmann::json::array();
  if (!client_error_.empty()) {
    out["status"] = {{"code", static_cast<int>(grpc::StatusCode::UNKNOWN)}, {"message", client_error_}};
    out["error"] = client_error_;
    return out;
  }
  out["status"] = {{"code", static_cast<int>(status_.error_code())}, {"message", status_.error_message()}};
  if (status_.ok()) {
    out["error"] = nullptr;
    return out;
  }
  std::string error = std::string(CodeName(status_.error_code())) + ": " + status_.error_message();
  if (!ctx_.debug_error_string().empty()) error += " (debug_error_string: " + ctx_.debug_error_string() + ")";
  if (!timed_out_.empty())
    error = "client: the plan's timeout_ms (" + std::to_string(plan_timeout_ms_) + " ms) ran out " + timed_out_ +
            " and cancelled the call: " + error;
  out["error"] = error;
  return out;
}

}  // namespace conform_client
