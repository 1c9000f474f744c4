// The contract's services (CONTRACT.md section 2) on the C++ sync API, each
// method following the control headers of section 3 through CallScope.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include <grpcpp/grpcpp.h>

#include "calls.h"
#include "chat.grpc.pb.h"
#include "greeter.grpc.pb.h"
#include "observer.grpc.pb.h"
#include "sensor.grpc.pb.h"

namespace peer {

/// Greeter: one method per RPC mode.
class GreeterImpl final : public ::Greeter::Service {
 public:
  explicit GreeterImpl(Registry& calls) : calls_(calls) {}
  grpc::Status SayHello(grpc::ServerContext* ctx, const HelloRequest* req, HelloReply* reply) override;
  grpc::Status ServerStream(grpc::ServerContext* ctx, const StreamRequestData* req,
                            grpc::ServerWriter<StreamResponseData>* stream) override;
  grpc::Status ClientStream(grpc::ServerContext* ctx, grpc::ServerReader<StreamRequestData>* stream,
                            StreamResponseData* reply) override;
  grpc::Status AllStream(grpc::ServerContext* ctx,
                         grpc::ServerReaderWriter<StreamResponseData, StreamRequestData>* stream) override;

 private:
  Registry& calls_;
};

/// ChatService: the full-duplex echo.
class ChatImpl final : public ::ChatService::Service {
 public:
  explicit ChatImpl(Registry& calls) : calls_(calls) {}
  grpc::Status ChatStream(grpc::ServerContext* ctx, grpc::ServerReaderWriter<Message, Message>* stream) override;

 private:
  Registry& calls_;
};

/// SensorService; keeps, per device, the last reading of every Record that
/// ended OK, for Latest.
class SensorImpl final : public ::SensorService::Service {
 public:
  explicit SensorImpl(Registry& calls) : calls_(calls) {}
  grpc::Status Record(grpc::ServerContext* ctx, grpc::ServerReader<SensorData>* stream,
                      RecordSummary* reply) override;
  grpc::Status Watch(grpc::ServerContext* ctx, const WatchRequest* req,
                     grpc::ServerWriter<SensorData>* stream) override;
  grpc::Status Latest(grpc::ServerContext* ctx, const DeviceQuery* req, SensorData* reply) override;

 private:
  Registry& calls_;
  std::mutex mu_;
  std::map<std::string, SensorData> latest_;
};

/// conform.v1.Observer.
class ObserverImpl final : public conform::v1::Observer::Service {
 public:
  explicit ObserverImpl(Registry& calls) : calls_(calls) {}
  grpc::Status GetCall(grpc::ServerContext* ctx, const conform::v1::CallQuery* query,
                       conform::v1::CallRecord* reply) override;

 private:
  Registry& calls_;
};

}  // namespace peer
