// Command load is a closed-loop bidi echo load client on grpc-go 1.33: the
// comparison point for grpc-conform's own load mode, and the load generator of
// interop/bench. It opens N connections with M ChatStream (or AllStream)
// streams each; every stream keeps one message in flight, sending the next as
// soon as the echo of the last arrived. After a warm-up it measures for a
// fixed duration and prints messages per second, per-message latency (send to
// echo) and its own CPU time. It writes "load: measuring" and "load: measured"
// to stderr when the measured window opens and closes.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"conform/pb"

	"google.golang.org/grpc"
)

// dialTimeout bounds each connection's handshake.
const dialTimeout = 10 * time.Second

// stopGrace bounds how long the streams get to end after the run.
const stopGrace = 10 * time.Second

// echoStream is one bidi stream of either method, as a send and a receive of
// an echo of `size` bytes.
type echoStream interface {
	roundTrip() error
	closeSend() error
}

// bidi is what the generated client stream of either method offers.
type bidi[Req, Resp any] interface {
	Send(Req) error
	Recv() (Resp, error)
	CloseSend() error
}

// echo is a stream that sends the same request each time.
type echo[Req, Resp any] struct {
	stream bidi[Req, Resp]
	req    Req
}

func (e *echo[Req, Resp]) roundTrip() error {
	if err := e.stream.Send(e.req); err != nil {
		return err
	}
	_, err := e.stream.Recv()
	return err
}

func (e *echo[Req, Resp]) closeSend() error { return e.stream.CloseSend() }

// openStream opens one stream of `method` on conn whose requests carry
// `size` bytes of text.
func openStream(ctx context.Context, conn *grpc.ClientConn, method string, size int) (echoStream, error) {
	payload := strings.Repeat("x", size)
	switch method {
	case "/ChatService/ChatStream":
		s, err := pb.NewChatServiceClient(conn).ChatStream(ctx)
		if err != nil {
			return nil, err
		}
		return &echo[*pb.Message, *pb.Message]{stream: s, req: &pb.Message{User: "load", Content: payload}}, nil
	case "/Greeter/AllStream":
		s, err := pb.NewGreeterClient(conn).AllStream(ctx)
		if err != nil {
			return nil, err
		}
		return &echo[*pb.StreamRequestData, *pb.StreamResponseData]{stream: s, req: &pb.StreamRequestData{Data: payload}}, nil
	default:
		return nil, fmt.Errorf("unknown method %q (want /ChatService/ChatStream or /Greeter/AllStream)", method)
	}
}

// cpuSeconds is this process's user plus system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		log.Fatalf("load: getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// Summary is what one run measured; printed as JSON with -json.
type Summary struct {
	Target          string             `json:"target"`
	Method          string             `json:"method"`
	Connections     int                `json:"connections"`
	Streams         int                `json:"streams_per_connection"`
	Size            int                `json:"size"`
	DurationS       float64            `json:"duration_s"`
	Messages        uint64             `json:"messages"`
	MsgsPerS        float64            `json:"msgs_per_s"`
	LatencyUs       map[string]float64 `json:"latency_us"`
	ClientCPUS      float64            `json:"client_cpu_s"`
	ClientCPUPerMsg float64            `json:"client_cpu_per_msg_us"`
	Errors          uint64             `json:"errors"`
	FirstError      string             `json:"first_error,omitempty"`
}

func main() {
	target := flag.String("target", "127.0.0.1:50051", "server address host:port")
	method := flag.String("method", "/ChatService/ChatStream", "bidi echo method: /ChatService/ChatStream or /Greeter/AllStream")
	connections := flag.Int("connections", 1, "TCP connections")
	streams := flag.Int("streams", 1, "streams per connection")
	size := flag.Int("size", 1024, "bytes of text in each request message")
	duration := flag.Duration("duration", 10*time.Second, "measured time")
	warmup := flag.Duration("warmup", 2*time.Second, "time before measuring")
	asJSON := flag.Bool("json", false, "print the summary as JSON")
	flag.Parse()
	if *connections < 1 || *streams < 1 || *size < 0 || *duration <= 0 || *warmup < 0 {
		log.Fatalf("load: -connections and -streams must be at least 1, -size and -warmup not negative, -duration positive")
	}

	summary, err := run(*target, *method, *connections, *streams, *size, *warmup, *duration)
	if err != nil {
		log.Fatalf("load: %v", err)
	}
	if *asJSON {
		out, _ := json.MarshalIndent(summary, "", "  ")
		fmt.Println(string(out))
		return
	}
	fmt.Printf("%s %s: %d connections x %d streams, %d bytes, %.1f s\n",
		summary.Target, summary.Method, summary.Connections, summary.Streams, summary.Size, summary.DurationS)
	fmt.Printf("  %.0f msgs/s (%d echoed, %d errors)\n", summary.MsgsPerS, summary.Messages, summary.Errors)
	fmt.Printf("  latency us: p50 %.0f  p90 %.0f  p99 %.0f  p99.9 %.0f  max %.0f\n",
		summary.LatencyUs["p50"], summary.LatencyUs["p90"], summary.LatencyUs["p99"],
		summary.LatencyUs["p999"], summary.LatencyUs["max"])
	fmt.Printf("  client CPU %.2f s, %.2f us per message\n", summary.ClientCPUS, summary.ClientCPUPerMsg)
	if summary.FirstError != "" {
		fmt.Printf("  first error: %s\n", summary.FirstError)
	}
}

// run dials, opens every stream, runs the closed loop and measures.
func run(target, method string, connections, streams, size int, warmup, duration time.Duration) (*Summary, error) {
	conns := make([]*grpc.ClientConn, 0, connections)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < connections; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
		// WithBlock: each connection is its own TCP connection, ready now.
		conn, err := grpc.DialContext(ctx, target, grpc.WithInsecure(), grpc.WithBlock())
		cancel()
		if err != nil {
			return nil, fmt.Errorf("connection %d to %s: %v", i+1, target, err)
		}
		conns = append(conns, conn)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var all []echoStream
	for _, conn := range conns {
		for j := 0; j < streams; j++ {
			s, err := openStream(ctx, conn, method, size)
			if err != nil {
				return nil, fmt.Errorf("opening stream %d: %v", len(all)+1, err)
			}
			all = append(all, s)
		}
	}

	var measuring atomic.Bool
	var stopping atomic.Bool
	var messages, errors atomic.Uint64
	var firstError atomic.Value
	hists := make([]*histogram, len(all))
	var wg sync.WaitGroup
	for i, s := range all {
		hists[i] = &histogram{}
		wg.Add(1)
		go func(s echoStream, h *histogram) {
			defer wg.Done()
			for !stopping.Load() {
				sent := time.Now()
				if err := s.roundTrip(); err != nil {
					errors.Add(1)
					firstError.CompareAndSwap(nil, err.Error())
					return
				}
				if measuring.Load() {
					h.record(time.Since(sent))
					messages.Add(1)
				}
			}
			s.closeSend()
		}(s, hists[i])
	}

	time.Sleep(warmup)
	cpuBefore := cpuSeconds()
	started := time.Now()
	measuring.Store(true)
	// The marks let a caller sample the server over the same window.
	fmt.Fprintln(os.Stderr, "load: measuring")
	time.Sleep(duration)
	measuring.Store(false)
	elapsed := time.Since(started).Seconds()
	cpu := cpuSeconds() - cpuBefore
	fmt.Fprintln(os.Stderr, "load: measured")
	count := messages.Load()
	stopping.Store(true)

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(stopGrace):
		cancel()
	}

	merged := &histogram{}
	for _, h := range hists {
		merged.merge(h)
	}
	summary := &Summary{
		Target: target, Method: method, Connections: connections, Streams: streams, Size: size,
		DurationS: elapsed, Messages: count, MsgsPerS: float64(count) / elapsed,
		LatencyUs: map[string]float64{
			"p50": merged.quantileUs(0.50), "p90": merged.quantileUs(0.90),
			"p99": merged.quantileUs(0.99), "p999": merged.quantileUs(0.999),
			"max": float64(merged.max) / 1e3,
		},
		ClientCPUS: cpu, Errors: errors.Load(),
	}
	if count > 0 {
		summary.ClientCPUPerMsg = cpu * 1e6 / float64(count)
	}
	if e, ok := firstError.Load().(string); ok {
		summary.FirstError = e
	}
	return summary, nil
}
