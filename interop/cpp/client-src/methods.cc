// The contract's methods, each bound to its generated stub's PrepareAsync*.
#include <map>

#include "chat.grpc.pb.h"
#include "greeter.grpc.pb.h"
#include "observer.grpc.pb.h"
#include "rpc.h"
#include "sensor.grpc.pb.h"

namespace conform_client {
namespace {

template <class Req>
std::string CheckRequest(const nlohmann::json& json) {
  Req message;
  return FromJson(json, &message);
}

// Binds one method: `Call` is the Rpc class of its mode, `prepare` the stub's
// PrepareAsync* member.
template <template <class, class, class> class Call, class Service, class Req, class Resp>
MethodEntry Bind(Mode mode, typename Call<typename Service::Stub, Req, Resp>::Prepare prepare) {
  using Stub = typename Service::Stub;
  auto open = [prepare](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* ctx,
                        grpc::CompletionQueue* cq) -> std::unique_ptr<Rpc> {
    return std::make_unique<Call<Stub, Req, Resp>>(Service::NewStub(channel), prepare, ctx, cq);
  };
  return MethodEntry{mode, open, CheckRequest<Req>};
}

std::map<std::string, MethodEntry> Methods() {
  using conform::v1::Observer;
  std::map<std::string, MethodEntry> m;
  m.emplace("/Greeter/SayHello", Bind<UnaryRpc, Greeter, HelloRequest, HelloReply>(
                                     Mode::kUnary, &Greeter::Stub::PrepareAsyncSayHello));
  m.emplace("/Greeter/ServerStream",
            Bind<ServerStreamingRpc, Greeter, StreamRequestData, StreamResponseData>(
                Mode::kServerStreaming, &Greeter::Stub::PrepareAsyncServerStream));
  m.emplace("/Greeter/ClientStream",
            Bind<ClientStreamingRpc, Greeter, StreamRequestData, StreamResponseData>(
                Mode::kClientStreaming, &Greeter::Stub::PrepareAsyncClientStream));
  m.emplace("/Greeter/AllStream", Bind<BidiRpc, Greeter, StreamRequestData, StreamResponseData>(
                                      Mode::kBidi, &Greeter::Stub::PrepareAsyncAllStream));
  m.emplace("/ChatService/ChatStream",
            Bind<BidiRpc, ChatService, Message, Message>(Mode::kBidi, &ChatService::Stub::PrepareAsyncChatStream));
  m.emplace("/SensorService/Record", Bind<ClientStreamingRpc, SensorService, SensorData, RecordSummary>(
                                         Mode::kClientStreaming, &SensorService::Stub::PrepareAsyncRecord));
  m.emplace("/SensorService/Watch", Bind<ServerStreamingRpc, SensorService, WatchRequest, SensorData>(
                                        Mode::kServerStreaming, &SensorService::Stub::PrepareAsyncWatch));
  m.emplace("/SensorService/Latest", Bind<UnaryRpc, SensorService, DeviceQuery, SensorData>(
                                         Mode::kUnary, &SensorService::Stub::PrepareAsyncLatest));
  m.emplace("/conform.v1.Observer/GetCall",
            Bind<UnaryRpc, Observer, conform::v1::CallQuery, conform::v1::CallRecord>(
                Mode::kUnary, &Observer::Stub::PrepareAsyncGetCall));
  return m;
}

}  // namespace

const MethodEntry* FindMethod(const std::string& path) {
  static const std::map<std::string, MethodEntry> methods = Methods();
  auto it = methods.find(path);
  return it == methods.end() ? nullptr : &it->second;
}

}  // namespace conform_client
