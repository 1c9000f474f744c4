// Command server is the grpc-go peer of the grpc-conform contract
// (docs/contract.md): ChatService, Greeter, SensorService and the Observer,
// on grpc-go's own defaults except where the contract needs a setting.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"conform/pb"

	"google.golang.org/grpc"
	// Registers the gzip compressor: the only one grpc-go ships.
	_ "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

// gracePeriod bounds how long a SIGTERM waits for calls in flight before the
// server drops them, so that `interop/run` never hangs on a stuck stream.
const gracePeriod = 5 * time.Second

func main() {
	listen := flag.String("listen", "127.0.0.1:50051", "address to listen on")
	flag.Parse()

	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("grpc-go peer: cannot listen on %s: %v", *listen, err)
	}

	calls := newRegistry()
	stats := &callStats{calls: calls}
	srv := grpc.NewServer(
		grpc.StatsHandler(stats),
		grpc.UnaryInterceptor(unaryObserver),
		grpc.StreamInterceptor(streamObserver),
	)
	pb.RegisterGreeterServer(srv, &greeter{})
	pb.RegisterChatServiceServer(srv, &chat{})
	pb.RegisterSensorServiceServer(srv, newSensors())
	pb.RegisterObserverServer(srv, &observer{calls: calls})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	reflection.Register(srv)
	stats.setKnownMethods(srv.GetServiceInfo())

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		done := make(chan struct{})
		go func() {
			srv.GracefulStop()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(gracePeriod):
			srv.Stop()
		}
	}()

	fmt.Printf("listening on %s\n", lis.Addr())
	if err := srv.Serve(lis); err != nil {
		log.Fatalf("grpc-go peer: serving on %s failed: %v", lis.Addr(), err)
	}
}
