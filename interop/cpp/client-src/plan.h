// The plan grpc-conform writes on the client's stdin (docs/clients.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace conform_client {

// The plan and report version this client speaks.
inline constexpr int kInterfaceVersion = 1;

enum class Mode { kUnary, kServerStreaming, kClientStreaming, kBidi };

struct Keepalive {
  int64_t time_ms = 0;
  int64_t timeout_ms = 0;
  bool permit_without_stream = false;
};

struct Step {
  enum class Op { kSend, kSendMany, kHalfClose, kReceiveHeaders, kReceive, kReceiveAll, kCancel, kPause };
  Op op = Op::kPause;
  std::string name;           // the op as the plan spells it, for messages
  nlohmann::json message;     // send: the request; send_many: the template
  int64_t count = 0;          // send_many
  int64_t ms = 0;             // pause
};

struct PlanCall {
  std::string method;
  Mode mode = Mode::kUnary;
  std::vector<std::pair<std::string, std::string>> metadata;  // -bin values decoded
  std::optional<int64_t> deadline_ms;
  std::optional<std::string> compression;
  std::vector<Step> steps;
};

struct Plan {
  std::string fixture;
  std::string target;
  int64_t timeout_ms = 0;
  std::optional<Keepalive> keepalive;
  std::optional<int64_t> max_receive_message_bytes;
  bool concurrent = false;
  std::vector<PlanCall> calls;
};

// Parses and checks the plan; throws std::runtime_error naming the field.
Plan ParsePlan(const std::string& text);

// Every "{i}" in a string value of `tmpl` replaced by `n`.
nlohmann::json ExpandTemplate(const nlohmann::json& tmpl, int64_t n);

bool OneRequest(Mode mode);

}  // namespace conform_client
