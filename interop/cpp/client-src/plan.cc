#include "plan.h"

#include <cctype>
#include <stdexcept>

#include <google/protobuf/stubs/strutil.h>

namespace conform_client {
namespace {

using nlohmann::json;

[[noreturn]] void Bad(const std::string& where, const std::string& what) {
  throw std::runtime_error("plan (stdin): " + where + ": " + what);
}

// The field `key` of `object`, or null when absent.
const json& Field(const json& object, const char* key) {
  static const json null;
  auto it = object.find(key);
  return it == object.end() ? null : *it;
}

int64_t Int(const json& object, const char* key, const std::string& where) {
  const json& v = Field(object, key);
  if (!v.is_number_integer()) Bad(where + "." + key, "expected an integer, got " + v.dump());
  return v.get<int64_t>();
}

std::string Text(const json& object, const char* key, const std::string& where) {
  const json& v = Field(object, key);
  if (!v.is_string()) Bad(where + "." + key, "expected a string, got " + v.dump());
  return v.get<std::string>();
}

Mode ParseMode(const std::string& text, const std::string& where) {
  if (text == "unary") return Mode::kUnary;
  if (text == "server_streaming") return Mode::kServerStreaming;
  if (text == "client_streaming") return Mode::kClientStreaming;
  if (text == "bidi") return Mode::kBidi;
  Bad(where, "unknown mode \"" + text + "\"");
}

Step ParseStep(const json& j, const std::string& where) {
  if (!j.is_object()) Bad(where, "expected an object");
  Step step;
  step.name = Text(j, "op", where);
  const std::string& op = step.name;
  if (op == "send") {
    step.op = Step::Op::kSend;
    step.message = Field(j, "message");
    if (!step.message.is_object()) Bad(where + ".message", "expected a JSON object");
  } else if (op == "send_many") {
    step.op = Step::Op::kSendMany;
    step.count = Int(j, "count", where);
    step.message = Field(j, "template");
    if (step.count < 0) Bad(where + ".count", "must not be negative");
    if (!step.message.is_object()) Bad(where + ".template", "expected a JSON object");
  } else if (op == "half_close") {
    step.op = Step::Op::kHalfClose;
  } else if (op == "receive_headers") {
    step.op = Step::Op::kReceiveHeaders;
  } else if (op == "receive") {
    step.op = Step::Op::kReceive;
  } else if (op == "receive_all") {
    step.op = Step::Op::kReceiveAll;
  } else if (op == "cancel") {
    step.op = Step::Op::kCancel;
  } else if (op == "pause") {
    step.op = Step::Op::kPause;
    step.ms = Int(j, "ms", where);
    if (step.ms < 0) Bad(where + ".ms", "must not be negative");
  } else {
    Bad(where + ".op", "unknown op \"" + op + "\"");
  }
  return step;
}

// Unary and server streaming calls start with exactly one send then
// half_close, and send nothing more.
void CheckOneRequestSteps(const PlanCall& call, const std::string& where) {
  for (size_t i = 0; i < call.steps.size(); ++i) {
    Step::Op op = call.steps[i].op;
    bool sends = op == Step::Op::kSend || op == Step::Op::kSendMany || op == Step::Op::kHalfClose;
    bool expected = (i == 0 && op == Step::Op::kSend) || (i == 1 && op == Step::Op::kHalfClose);
    if ((i < 2 || sends) && !expected)
      Bad(where + ".steps[" + std::to_string(i) + "]",
          "a unary or server_streaming call starts with exactly one send then half_close, got " + call.steps[i].name);
  }
  if (call.steps.size() < 2) Bad(where + ".steps", "a unary or server_streaming call starts with send then half_close");
}

PlanCall ParseCall(const json& j, const std::string& where) {
  if (!j.is_object()) Bad(where, "expected an object");
  PlanCall call;
  call.method = Text(j, "method", where);
  call.mode = ParseMode(Text(j, "mode", where), where + ".mode");
  const json& metadata = Field(j, "metadata");
  if (!metadata.is_null() && !metadata.is_array()) Bad(where + ".metadata", "expected a list of pairs");
  for (size_t i = 0; i < metadata.size() && metadata.is_array(); ++i) {
    const json& pair = metadata[i];
    std::string at = where + ".metadata[" + std::to_string(i) + "]";
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_string())
      Bad(at, "expected [name, value]");
    std::string name = pair[0], value = pair[1];
    // C-core aborts the process on an illegal header (API misuse): refuse it here.
    for (char c : name)
      if (!(islower(c) || isdigit(c) || c == '-' || c == '_' || c == '.')) Bad(at, "illegal header name \"" + name + "\"");
    if (name.size() > 4 && name.compare(name.size() - 4, 4, "-bin") == 0) {
      std::string raw;
      if (!google::protobuf::Base64Unescape(value, &raw)) Bad(at, "-bin value is not base64");
      value = raw;
    } else {
      for (char c : value)
        if (c < 0x20 || c > 0x7e) Bad(at, "value of " + name + " is not printable ASCII (percent-encode it)");
    }
    call.metadata.emplace_back(name, value);
  }
  if (!Field(j, "deadline_ms").is_null()) call.deadline_ms = Int(j, "deadline_ms", where);
  if (!Field(j, "compression").is_null()) {
    call.compression = Text(j, "compression", where);
    if (*call.compression != "gzip") Bad(where + ".compression", "\"" + *call.compression + "\" is not supported (gzip only)");
  }
  const json& steps = Field(j, "steps");
  if (!steps.is_array()) Bad(where + ".steps", "expected a list");
  bool half_closed = false;
  for (size_t i = 0; i < steps.size(); ++i) {
    std::string at = where + ".steps[" + std::to_string(i) + "]";
    call.steps.push_back(ParseStep(steps[i], at));
    Step::Op op = call.steps.back().op;
    // C++ aborts the process on a write after WritesDone (API misuse).
    if (half_closed && (op == Step::Op::kSend || op == Step::Op::kSendMany || op == Step::Op::kHalfClose))
      Bad(at, call.steps.back().name + " after half_close");
    half_closed = half_closed || op == Step::Op::kHalfClose;
  }
  if (OneRequest(call.mode)) CheckOneRequestSteps(call, where);
  return call;
}

}  // namespace

bool OneRequest(Mode mode) { return mode == Mode::kUnary || mode == Mode::kServerStreaming; }

Plan ParsePlan(const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    Bad("JSON", e.what());
  }
  if (!j.is_object()) Bad("top level", "expected an object");
  int64_t version = Int(j, "version", "plan");
  if (version != kInterfaceVersion)
    Bad("version", std::to_string(version) + ", this client speaks " + std::to_string(kInterfaceVersion));
  Plan plan;
  plan.fixture = Field(j, "fixture").is_string() ? Field(j, "fixture").get<std::string>() : "";
  plan.target = Field(j, "target").is_string() ? Field(j, "target").get<std::string>() : "";
  plan.timeout_ms = Int(j, "timeout_ms", "plan");
  if (plan.timeout_ms <= 0) Bad("timeout_ms", "must be positive");
  plan.concurrent = Field(j, "concurrent").is_boolean() && Field(j, "concurrent").get<bool>();
  const json& channel = Field(j, "channel");
  if (channel.is_object()) {
    const json& keepalive = Field(channel, "keepalive");
    if (!keepalive.is_null()) {
      Keepalive k;
      k.time_ms = Int(keepalive, "time_ms", "channel.keepalive");
      k.timeout_ms = Int(keepalive, "timeout_ms", "channel.keepalive");
      k.permit_without_stream = Field(keepalive, "permit_without_stream").is_boolean() &&
                                Field(keepalive, "permit_without_stream").get<bool>();
      plan.keepalive = k;
    }
    if (!Field(channel, "max_receive_message_bytes").is_null())
      plan.max_receive_message_bytes = Int(channel, "max_receive_message_bytes", "channel");
  }
  const json& calls = Field(j, "calls");
  if (!calls.is_array()) Bad("calls", "expected a list");
  for (size_t i = 0; i < calls.size(); ++i) plan.calls.push_back(ParseCall(calls[i], "calls[" + std::to_string(i) + "]"));
  return plan;
}

json ExpandTemplate(const json& tmpl, int64_t n) {
  if (tmpl.is_string()) {
    std::string s = tmpl.get<std::string>();
    const std::string needle = "{i}", number = std::to_string(n);
    for (size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + number.size()))
      s.replace(at, needle.size(), number);
    return s;
  }
  json out = tmpl;
  if (tmpl.is_structured())
    for (auto it = out.begin(); it != out.end(); ++it) *it = ExpandTemplate(*it, n);
  return out;
}

}  // namespace conform_client
