// One typed call on gRPC C++'s async API (the generated stubs' PrepareAsync*
// methods), behind one interface so that the steps of a plan drive every
// method alike. Each operation posts one tag on the call's completion queue.
#pragma once

#include <cstdlib>
#include <functional>
#include <memory>
#include <string>

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "plan.h"

namespace conform_client {

class Rpc {
 public:
  virtual ~Rpc() = default;
  // Opens the call (for unary and server streaming with its one request).
  // Returns whether a tag was posted (a unary StartCall posts none).
  virtual bool Start(const nlohmann::json* request, void* tag) = 0;
  virtual void Write(const nlohmann::json& message, void* tag) = 0;
  virtual void WritesDone(void* tag) = 0;
  virtual void ReadInitialMetadata(void* tag) = 0;
  // Server streaming and bidi only.
  virtual void Read(void* tag) = 0;
  // Unary and client streaming: also reads the one response.
  virtual void Finish(grpc::Status* status, void* tag) = 0;
  // The response the last Read or Finish filled, as canonical proto3 JSON.
  virtual nlohmann::json Received() const = 0;
};

// What the client knows of a method: its mode, how to open a call of it, and
// how to check a request's JSON before any call starts.
struct MethodEntry {
  Mode mode;
  std::function<std::unique_ptr<Rpc>(const std::shared_ptr<grpc::Channel>&, grpc::ClientContext*,
                                     grpc::CompletionQueue*)>
      open;
  std::function<std::string(const nlohmann::json&)> check;  // "" when valid
};

// The contract's methods by path ("/Greeter/SayHello"); null when unknown.
const MethodEntry* FindMethod(const std::string& path);

// Fills `message` from proto3 JSON; "" or what was wrong.
template <class M>
std::string FromJson(const nlohmann::json& json, M* message) {
  auto status = google::protobuf::util::JsonStringToMessage(json.dump(), message);
  if (status.ok()) return "";
  return "message " + json.dump() + " for " + message->GetTypeName() + ": " + status.ToString();
}

template <class M>
nlohmann::json ToJson(const M& message) {
  std::string text;
  auto status = google::protobuf::util::MessageToJsonString(message, &text);
  if (!status.ok()) return nlohmann::json("unprintable response: " + status.ToString());
  return nlohmann::json::parse(text);
}

template <class M>
M Request(const nlohmann::json& json) {
  M message;
  FromJson(json, &message);  // checked when the plan was read
  return message;
}

// An operation the mode does not have: the call driver never asks for it.
[[noreturn]] inline void NotInMode(const char* op) {
  fprintf(stderr, "interop/cpp/client: internal error: %s on a call whose mode lacks it\n", op);
  std::abort();
}

template <class Stub, class Req, class Resp>
class UnaryRpc final : public Rpc {
 public:
  using Prepare = std::unique_ptr<grpc::ClientAsyncResponseReader<Resp>> (Stub::*)(
      grpc::ClientContext*, const Req&, grpc::CompletionQueue*);
  UnaryRpc(std::unique_ptr<Stub> stub, Prepare prepare, grpc::ClientContext* ctx, grpc::CompletionQueue* cq)
      : stub_(std::move(stub)), prepare_(prepare), ctx_(ctx), cq_(cq) {}
  bool Start(const nlohmann::json* request, void*) override {
    reader_ = ((*stub_).*prepare_)(ctx_, Request<Req>(*request), cq_);
    reader_->StartCall();
    return false;
  }
  void Write(const nlohmann::json&, void*) override { NotInMode("Write"); }
  void WritesDone(void*) override { NotInMode("WritesDone"); }
  void ReadInitialMetadata(void* tag) override { reader_->ReadInitialMetadata(tag); }
  void Read(void*) override { NotInMode("Read"); }
  void Finish(grpc::Status* status, void* tag) override { reader_->Finish(&response_, status, tag); }
  nlohmann::json Received() const override { return ToJson(response_); }

 private:
  std::unique_ptr<Stub> stub_;
  Prepare prepare_;
  grpc::ClientContext* ctx_;
  grpc::CompletionQueue* cq_;
  Resp response_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Resp>> reader_;
};

template <class Stub, class Req, class Resp>
class ServerStreamingRpc final : public Rpc {
 public:
  using Prepare = std::unique_ptr<grpc::ClientAsyncReader<Resp>> (Stub::*)(grpc::ClientContext*, const Req&,
                                                                            grpc::CompletionQueue*);
  ServerStreamingRpc(std::unique_ptr<Stub> stub, Prepare prepare, grpc::ClientContext* ctx,
                     grpc::CompletionQueue* cq)
      : stub_(std::move(stub)), prepare_(prepare), ctx_(ctx), cq_(cq) {}
  bool Start(const nlohmann::json* request, void* tag) override {
    reader_ = ((*stub_).*prepare_)(ctx_, Request<Req>(*request), cq_);
    reader_->StartCall(tag);
    return true;
  }
  void Write(const nlohmann::json&, void*) override { NotInMode("Write"); }
  void WritesDone(void*) override { NotInMode("WritesDone"); }
  void ReadInitialMetadata(void* tag) override { reader_->ReadInitialMetadata(tag); }
  void Read(void* tag) override { reader_->Read(&response_, tag); }
  void Finish(grpc::Status* status, void* tag) override { reader_->Finish(status, tag); }
  nlohmann::json Received() const override { return ToJson(response_); }

 private:
  std::unique_ptr<Stub> stub_;
  Prepare prepare_;
  grpc::ClientContext* ctx_;
  grpc::CompletionQueue* cq_;
  Resp response_;
  std::unique_ptr<grpc::ClientAsyncReader<Resp>> reader_;
};

template <class Stub, class Req, class Resp>
class ClientStreamingRpc final : public Rpc {
 public:
  using Prepare = std::unique_ptr<grpc::ClientAsyncWriter<Req>> (Stub::*)(grpc::ClientContext*, Resp*,
                                                                          grpc::CompletionQueue*);
  ClientStreamingRpc(std::unique_ptr<Stub> stub, Prepare prepare, grpc::ClientContext* ctx,
                     grpc::CompletionQueue* cq)
      : stub_(std::move(stub)), prepare_(prepare), ctx_(ctx), cq_(cq) {}
  bool Start(const nlohmann::json*, void* tag) override {
    writer_ = ((*stub_).*prepare_)(ctx_, &response_, cq_);
    writer_->StartCall(tag);
    return true;
  }
  void Write(const nlohmann::json& message, void* tag) override {
    request_ = Request<Req>(message);
    writer_->Write(request_, tag);
  }
  void WritesDone(void* tag) override { writer_->WritesDone(tag); }
  void ReadInitialMetadata(void* tag) override { writer_->ReadInitialMetadata(tag); }
  void Read(void*) override { NotInMode("Read"); }
  void Finish(grpc::Status* status, void* tag) override { writer_->Finish(status, tag); }
  nlohmann::json Received() const override { return ToJson(response_); }

 private:
  std::unique_ptr<Stub> stub_;
  Prepare prepare_;
  grpc::ClientContext* ctx_;
  grpc::CompletionQueue* cq_;
  Req request_;
  Resp response_;
  std::unique_ptr<grpc::ClientAsyncWriter<Req>> writer_;
};

template <class Stub, class Req, class Resp>
class BidiRpc final : public Rpc {
 public:
  using Prepare = std::unique_ptr<grpc::ClientAsyncReaderWriter<Req, Resp>> (Stub::*)(grpc::ClientContext*,
                                                                                      grpc::CompletionQueue*);
  BidiRpc(std::unique_ptr<Stub> stub, Prepare prepare, grpc::ClientContext* ctx, grpc::CompletionQueue* cq)
      : stub_(std::move(stub)), prepare_(prepare), ctx_(ctx), cq_(cq) {}
  bool Start(const nlohmann::json*, void* tag) override {
    stream_ = ((*stub_).*prepare_)(ctx_, cq_);
    stream_->StartCall(tag);
    return true;
  }
  void Write(const nlohmann::json& message, void* tag) override {
    request_ = Request<Req>(message);
    stream_->Write(request_, tag);
  }
  void WritesDone(void* tag) override { stream_->WritesDone(tag); }
  void ReadInitialMetadata(void* tag) override { stream_->ReadInitialMetadata(tag); }
  void Read(void* tag) override { stream_->Read(&response_, tag); }
  void Finish(grpc::Status* status, void* tag) override { stream_->Finish(status, tag); }
  nlohmann::json Received() const override { return ToJson(response_); }

 private:
  std::unique_ptr<Stub> stub_;
  Prepare prepare_;
  grpc::ClientContext* ctx_;
  grpc::CompletionQueue* cq_;
  Req request_;
  Resp response_;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<Req, Resp>> stream_;
};

}  // namespace conform_client
