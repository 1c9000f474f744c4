#include "services.h"

#include <algorithm>
#include <ctime>
#include <set>
#include <vector>

namespace peer {
namespace {

using grpc::Status;
using grpc::StatusCode;

// GetCall's wait_ms is capped, as by the reference: no call is parked longer
// than a fixture could sensibly need.
constexpr std::chrono::milliseconds kMaxGetCallWait{60000};

// A server stream of n responses, response i made by make(i), paced and cut
// short as the script says.
template <class Out, class Make>
Status SendStream(CallScope& call, grpc::ServerWriter<Out>* stream, int64_t n, Make make) {
  if (auto end = call.Start()) return *end;
  for (int i = 0; i < n; ++i) {
    Status paced = call.BeforeResponse(i);
    if (!paced.ok()) return paced;
    if (!call.Write(stream, make(i))) return call.Ended();
    if (auto end = call.control().AfterResponse(i + 1)) return *end;
  }
  return Status::OK;
}

// Reads a client stream until the half-close or close-after-requests; check
// may end the call early on a request. C++ sends the one response of a client
// stream only with an OK status, so fail-after N > 0 changes nothing here.
template <class In, class Check>
Status ReadRequests(CallScope& call, grpc::ServerReader<In>* stream, std::vector<In>* got, Check check) {
  if (auto end = call.Start()) return *end;
  In req;
  while (!call.control().ClosesAfter(static_cast<int64_t>(got->size()))) {
    if (!call.Read(stream, &req)) {
      if (call.Cancelled()) return call.Ended();
      break;  // the half-close: delay-ms still comes before the one response
    }
    Status ok = check(req, got->size());
    if (!ok.ok()) return ok;
    got->push_back(req);
  }
  return call.BeforeResponse(0);
}

// A full-duplex echo: each request is answered at once (after the scripted
// pause); the call ends with OK at the half-close or after
// close-after-requests requests, without reading further.
template <class Out, class In, class Answer>
Status EchoEach(CallScope& call, grpc::ServerReaderWriter<Out, In>* stream, Answer answer) {
  if (auto end = call.Start()) return *end;
  In req;
  for (int read = 0; !call.control().ClosesAfter(read);) {
    if (!call.Read(stream, &req)) return call.Cancelled() ? call.Ended() : Status::OK;
    Status paced = call.BeforeResponse(read);
    if (!paced.ok()) return paced;
    if (!call.Write(stream, answer(req))) return call.Ended();
    if (auto end = call.control().AfterResponse(++read)) return *end;
  }
  return Status::OK;
}

RecordSummary Summarise(const std::vector<SensorData>& readings) {
  RecordSummary sum;
  sum.set_count(static_cast<uint32_t>(readings.size()));
  if (readings.empty()) return sum;
  std::set<std::string> seen;
  double total = 0;
  float lo = readings[0].temperature(), hi = lo;
  for (size_t i = 0; i < readings.size(); ++i) {
    const SensorData& r = readings[i];
    lo = std::min(lo, r.temperature());
    hi = std::max(hi, r.temperature());
    if (i > 0 && r.timestamp() < readings[i - 1].timestamp()) sum.set_out_of_order(sum.out_of_order() + 1);
    if (seen.insert(r.device_id()).second) sum.add_device_ids(r.device_id());
    total += r.temperature();
  }
  sum.set_min(lo);
  sum.set_max(hi);
  sum.set_mean(total / readings.size());
  sum.set_first_timestamp(readings.front().timestamp());
  sum.set_last_timestamp(readings.back().timestamp());
  return sum;
}

}  // namespace

Status GreeterImpl::SayHello(grpc::ServerContext* ctx, const HelloRequest* req, HelloReply* reply) {
  CallScope call(calls_, ctx, "/Greeter/SayHello", Mode::kUnaryRequest);
  // A scripted end with OK sends the empty reply: C++ cannot end a unary
  // call OK without one.
  if (auto end = call.Start()) return call.Finish(*end, true);
  Status paced = call.BeforeResponse(0);
  if (paced.ok()) reply->set_message(call.control().Pad("Hello " + req->name()));
  return call.Finish(paced, true);
}

Status GreeterImpl::ServerStream(grpc::ServerContext* ctx, const StreamRequestData* req,
                                 grpc::ServerWriter<StreamResponseData>* stream) {
  CallScope call(calls_, ctx, "/Greeter/ServerStream", Mode::kUnaryRequest);
  return call.Finish(SendStream(call, stream, call.control().Count(3),
                                [&](int i) {
                                  StreamResponseData out;
                                  out.set_data(call.control().Pad(req->data() + "-" + std::to_string(i + 1)));
                                  return out;
                                }),
                     false);
}

Status GreeterImpl::ClientStream(grpc::ServerContext* ctx, grpc::ServerReader<StreamRequestData>* stream,
                                 StreamResponseData* reply) {
  CallScope call(calls_, ctx, "/Greeter/ClientStream", Mode::kStreamRequest);
  std::vector<StreamRequestData> got;
  Status read = ReadRequests(call, stream, &got, [](const StreamRequestData&, size_t) { return Status::OK; });
  if (read.ok()) {
    std::string joined;
    for (size_t i = 0; i < got.size(); ++i) joined += (i ? "," : "") + got[i].data();
    reply->set_data(call.control().Pad(joined));
  }
  return call.Finish(read, true);
}

Status GreeterImpl::AllStream(grpc::ServerContext* ctx,
                              grpc::ServerReaderWriter<StreamResponseData, StreamRequestData>* stream) {
  CallScope call(calls_, ctx, "/Greeter/AllStream", Mode::kStreamRequest);
  return call.Finish(EchoEach(call, stream,
                              [&call](const StreamRequestData& req) {
                                StreamResponseData out;
                                out.set_data(call.control().Pad("echo: " + req.data()));
                                return out;
                              }),
                     false);
}

Status ChatImpl::ChatStream(grpc::ServerContext* ctx, grpc::ServerReaderWriter<Message, Message>* stream) {
  CallScope call(calls_, ctx, "/ChatService/ChatStream", Mode::kStreamRequest);
  return call.Finish(EchoEach(call, stream,
                              [&call](const Message& req) {
                                Message out;
                                out.set_user("server");
                                out.set_content(call.control().Pad("echo: " + req.content()));
                                out.set_timestamp(static_cast<int64_t>(std::time(nullptr)));
                                return out;
                              }),
                     false);
}

Status SensorImpl::Record(grpc::ServerContext* ctx, grpc::ServerReader<SensorData>* stream, RecordSummary* reply) {
  CallScope call(calls_, ctx, "/SensorService/Record", Mode::kStreamRequest);
  std::vector<SensorData> readings;
  Status read = ReadRequests(call, stream, &readings, [](const SensorData& r, size_t i) {
    if (!r.device_id().empty()) return Status::OK;
    return Status(StatusCode::INVALID_ARGUMENT, "Record: reading " + std::to_string(i + 1) + " has an empty device_id");
  });
  if (read.ok()) {
    *reply = Summarise(readings);
    if (call.control().response_size >= 0) {
      // The contract pads the last device id, or one added when none.
      if (reply->device_ids_size() == 0) reply->add_device_ids("");
      auto* last = reply->mutable_device_ids(reply->device_ids_size() - 1);
      *last = call.control().Pad(*last);
    }
    std::lock_guard<std::mutex> lock(mu_);
    for (const SensorData& r : readings) latest_[r.device_id()] = r;
  }
  return call.Finish(read, true);
}

Status SensorImpl::Watch(grpc::ServerContext* ctx, const WatchRequest* req, grpc::ServerWriter<SensorData>* stream) {
  CallScope call(calls_, ctx, "/SensorService/Watch", Mode::kUnaryRequest);
  if (!call.control_status().ok()) return call.Finish(call.control_status(), false);
  if (req->device_id().empty()) {
    return call.Finish(Status(StatusCode::INVALID_ARGUMENT, "Watch: device_id must not be empty"), false);
  }
  int64_t limit = req->limit() == 0 ? 3 : req->limit();
  return call.Finish(SendStream(call, stream, call.control().Count(limit),
                                [&](int i) {
                                  SensorData out;
                                  out.set_timestamp(1000 + i);
                                  out.set_temperature(20.0f + 0.25f * i);
                                  out.set_device_id(call.control().Pad(req->device_id()));
                                  return out;
                                }),
                     false);
}

Status SensorImpl::Latest(grpc::ServerContext* ctx, const DeviceQuery* req, SensorData* reply) {
  CallScope call(calls_, ctx, "/SensorService/Latest", Mode::kUnaryRequest);
  if (!call.control_status().ok()) return call.Finish(call.control_status(), true);
  if (req->device_id().empty()) {
    return call.Finish(Status(StatusCode::INVALID_ARGUMENT, "Latest: device_id must not be empty"), true);
  }
  if (auto end = call.Start()) return call.Finish(*end, true);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = latest_.find(req->device_id());
    if (it == latest_.end()) {
      return call.Finish(
          Status(StatusCode::NOT_FOUND,
                 "Latest: no Record call stored a reading for device \"" + req->device_id() + "\""),
          true);
    }
    *reply = it->second;
    reply->set_device_id(call.control().Pad(reply->device_id()));
  }
  return call.Finish(call.BeforeResponse(0), true);
}

Status ObserverImpl::GetCall(grpc::ServerContext* ctx, const conform::v1::CallQuery* query,
                             conform::v1::CallRecord* reply) {
  // Not scripted: the reference's GetCall ignores the control headers too.
  CallScope call(calls_, ctx, "/conform.v1.Observer/GetCall", Mode::kUnaryRequest);
  auto found = calls_.Get(query->call_id());
  if (!found) {
    return call.Finish(
        Status(StatusCode::NOT_FOUND, "GetCall: no call carried x-conform-call-id \"" + query->call_id() + "\""), true);
  }
  // Waits in slices so that a cancelled GetCall stops waiting; running out of
  // wait is an answer too (RUNNING).
  auto until = std::chrono::steady_clock::now() +
               std::min(std::chrono::milliseconds(query->wait_ms()), kMaxGetCallWait);
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    *reply = found->Await(std::clamp(left, std::chrono::milliseconds(0), std::chrono::milliseconds(50)));
    if (reply->outcome() != conform::v1::RUNNING || left.count() <= 0) break;
    if (ctx->IsCancelled()) return call.Finish(call.Ended(), true);
  }
  return call.Finish(Status::OK, true);
}

}  // namespace peer
