// The C++ (C-core) peer of the grpc-conform contract (docs/contract.md):
// ChatService, Greeter, SensorService and the Observer on the sync API, with
// gRPC's own defaults except where the contract needs a setting.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "services.h"

namespace {

// How long SIGTERM lets calls in flight finish before they are cancelled, so
// that interop/run never hangs on a stuck stream.
constexpr int kGraceSeconds = 5;

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s 127.0.0.1:PORT\n", argv[0]);
    return 2;
  }
  const std::string address = argv[1];

  // SIGTERM and SIGINT are taken by a thread of their own (sigwait), so they
  // must be blocked before gRPC starts its threads, which inherit the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  peer::Registry calls;
  peer::GreeterImpl greeter(calls);
  peer::ChatImpl chat(calls);
  peer::SensorImpl sensors(calls);
  peer::ObserverImpl observer(calls);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&greeter);
  builder.RegisterService(&chat);
  builder.RegisterService(&sensors);
  builder.RegisterService(&observer);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "C++ peer: cannot listen on %s\n", address.c_str());
    return 1;
  }
  std::printf("listening on %s\n", address.c_str());
  std::fflush(stdout);

  std::thread stopper([&] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(kGraceSeconds));
  });
  server->Wait();
  stopper.join();
  return 0;
}
