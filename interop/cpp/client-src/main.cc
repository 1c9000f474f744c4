// The C++ (C-core) client peer of grpc-conform's client mode
// (docs/clients.md): reads a plan on stdin, runs its calls on one channel and
// prints what gRPC C++'s API surfaced of each call on stdout.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "call.h"
#include "plan.h"
#include "rpc.h"

namespace conform_client {
namespace {

// How long the channel stays open after the last call ended, so that frames
// C-core queued (a cancel's RST_STREAM) reach the wire.
constexpr std::chrono::milliseconds kFlushLinger{200};

[[noreturn]] void Fail(const std::string& what) {
  std::cerr << "interop/cpp/client: " << what << std::endl;
  std::exit(1);
}

// Finds each call's method and checks every request the plan sends, so that
// a bad plan fails before any call starts.
std::vector<const MethodEntry*> ResolveMethods(const Plan& plan) {
  std::vector<const MethodEntry*> methods;
  for (size_t i = 0; i < plan.calls.size(); ++i) {
    const PlanCall& call = plan.calls[i];
    std::string where = "plan (stdin): calls[" + std::to_string(i) + "]";
    const MethodEntry* method = FindMethod(call.method);
    if (method == nullptr) Fail(where + ".method: \"" + call.method + "\" is not a method of the contract's protos");
    if (method->mode != call.mode) Fail(where + ".mode: not the mode " + call.method + " has");
    for (size_t j = 0; j < call.steps.size(); ++j) {
      const Step& step = call.steps[j];
      if (step.op != Step::Op::kSend && step.op != Step::Op::kSendMany) continue;
      std::string error =
          method->check(step.op == Step::Op::kSend ? step.message : ExpandTemplate(step.message, 1));
      if (!error.empty()) Fail(where + ".steps[" + std::to_string(j) + "]: " + error);
    }
    methods.push_back(method);
  }
  return methods;
}

// The plan's channel settings as C-core channel arguments; what the plan
// leaves out keeps C-core's default.
grpc::ChannelArguments ChannelArgs(const Plan& plan) {
  grpc::ChannelArguments args;
  if (plan.keepalive) {
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(plan.keepalive->time_ms));
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, static_cast<int>(plan.keepalive->timeout_ms));
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, plan.keepalive->permit_without_stream ? 1 : 0);
  }
  if (plan.max_receive_message_bytes)
    args.SetMaxReceiveMessageSize(static_cast<int>(*plan.max_receive_message_bytes));
  return args;
}

int Main() {
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  Plan plan;
  try {
    plan = ParsePlan(text);
  } catch (const std::exception& e) {
    Fail(e.what());
  }
  std::vector<const MethodEntry*> methods = ResolveMethods(plan);
  std::string target = plan.target;
  if (target.empty() && std::getenv("GRPC_CONFORM_TARGET") != nullptr) target = std::getenv("GRPC_CONFORM_TARGET");
  auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), ChannelArgs(plan));
  auto deadline = Clock::now() + std::chrono::milliseconds(plan.timeout_ms);

  std::vector<nlohmann::json> calls(plan.calls.size());
  auto run = [&](size_t i) {
    CallRun call(plan.calls[i], *methods[i], channel, deadline, plan.timeout_ms);
    calls[i] = call.Run();
  };
  if (plan.concurrent) {
    std::vector<std::thread> threads;
    for (size_t i = 0; i < plan.calls.size(); ++i) threads.emplace_back(run, i);
    for (auto& thread : threads) thread.join();
  } else {
    for (size_t i = 0; i < plan.calls.size(); ++i) run(i);
  }

  // C-core can hand the application a call's DEADLINE_EXCEEDED while the
  // RST_STREAM that cancels the stream is still queued in its transport; a
  // process that exits at once can leave it unwritten (the deadline fixtures
  // saw no reset in some runs). C++ has no call that waits for the transport
  // to write what it queued: keep the channel open a moment before it goes.
  std::this_thread::sleep_for(kFlushLinger);
  nlohmann::json report;
  report["version"] = kInterfaceVersion;
  report["client"] = "grpc-c++/" + grpc::Version();
  report["calls"] = calls;
  // A status message or metadata value need not be UTF-8: replace, not throw.
  std::cout << report.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
  return 0;
}

}  // namespace
}  // namespace conform_client

int main() { return conform_client::Main(); }
