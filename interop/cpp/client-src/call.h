// One planned call driven step by step on gRPC C++'s async API, with its own
// completion queue drained by its own thread (as an async C++ application
// keeps one polling, which is also what lets C-core read the connection
// during a pause), so that every wait is bounded by the plan's deadline.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "plan.h"
#include "rpc.h"

namespace conform_client {

using Clock = std::chrono::system_clock;

class CallRun {
 public:
  CallRun(const PlanCall& spec, const MethodEntry& method, std::shared_ptr<grpc::Channel> channel,
          Clock::time_point plan_deadline, int64_t plan_timeout_ms);
  ~CallRun();
  CallRun(const CallRun&) = delete;
  CallRun& operator=(const CallRun&) = delete;

  // Runs the steps, drains the call to its end and returns its report entry.
  nlohmann::json Run();

 private:
  void Do(const Step& step);
  void Start(const nlohmann::json* request);
  void Send(const nlohmann::json& message);
  void HalfClose();
  void ReceiveHeaders();
  void Receive();
  void ReceiveAll();
  void FinishCall();
  void AwaitFinish();
  bool Wait(const char* op);
  void Poll();
  nlohmann::json Report() const;

  const PlanCall& spec_;
  const MethodEntry& method_;
  std::shared_ptr<grpc::Channel> channel_;
  Clock::time_point plan_deadline_;
  int64_t plan_timeout_ms_;

  // Declared so that they are destroyed rpc_ first, then ctx_, then cq_.
  grpc::CompletionQueue cq_;
  grpc::ClientContext ctx_;
  std::unique_ptr<Rpc> rpc_;

  // What the poller thread hands over: the ok flag of each finished
  // operation (one is in flight at a time).
  std::mutex mutex_;
  std::condition_variable completed_;
  std::deque<bool> completions_;
  std::thread poller_;

  nlohmann::json request_;  // unary and server streaming: sent at half_close
  bool ended_ = false;
  bool cancelled_ = false;        // a cancel step ran
  bool metadata_in_ = false;      // an operation that receives the headers completed
  bool finish_pending_ = false;   // Finish was posted (unary: at half_close)
  grpc::Status status_;
  std::string client_error_;      // why the call never ran, when it did not
  std::vector<nlohmann::json> messages_;
  std::string where_;             // the step being run, for the timeout's message
  std::string timed_out_;         // where the plan's timeout_ms cut the call short
};

}  // namespace conform_client
