package main

// The contract's methods (CONTRACT.md section 2), each following the control
// headers of section 3 through *control.

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"conform/pb"

	"github.com/golang/protobuf/proto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// greeter serves Greeter: one method per RPC mode.
type greeter struct {
	pb.UnimplementedGreeterServer
}

func (greeter) SayHello(ctx context.Context, req *pb.HelloRequest) (*pb.HelloReply, error) {
	ctl, err := readControl(ctx)
	if err != nil {
		return nil, err
	}
	if err := ctl.failAtStart(ctx); err != nil {
		return &pb.HelloReply{}, err
	}
	if err := ctl.beforeResponse(ctx, 0); err != nil {
		return nil, err
	}
	return &pb.HelloReply{Message: ctl.pad("Hello " + req.Name)}, nil
}

func (greeter) ServerStream(req *pb.StreamRequestData, stream pb.Greeter_ServerStreamServer) error {
	ctx := stream.Context()
	ctl, err := readControl(ctx)
	if err != nil {
		return err
	}
	return sendStream(ctx, ctl, ctl.count(3), func(i int) error {
		return stream.Send(&pb.StreamResponseData{Data: ctl.pad(fmt.Sprintf("%s-%d", req.Data, i+1))})
	})
}

func (greeter) ClientStream(stream pb.Greeter_ClientStreamServer) error {
	ctx := stream.Context()
	ctl, err := readControl(ctx)
	if err != nil {
		return err
	}
	var data []string
	err = readRequests(ctx, ctl, stream.Recv, func(req *pb.StreamRequestData) error {
		data = append(data, req.Data)
		return nil
	})
	if err != nil {
		return err
	}
	return stream.SendAndClose(&pb.StreamResponseData{Data: ctl.pad(strings.Join(data, ","))})
}

// readRequests runs a client stream's script: fail-after 0 at the start, then
// reading (recv's io.EOF is the half-close) until the half-close or
// close-after-requests, each request handed to take, which may end the call at
// once; then the pause before the one response.
func readRequests[M any](ctx context.Context, ctl *control, recv func() (M, error), take func(M) error) error {
	if err := ctl.failAtStart(ctx); err != nil {
		return err
	}
	for read := 0; !ctl.closesAfter(read); read++ {
		req, err := recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := take(req); err != nil {
			return err
		}
	}
	return ctl.beforeResponse(ctx, 0)
}

func (greeter) AllStream(stream pb.Greeter_AllStreamServer) error {
	// A malformed header is reported by echoEach; a nil control pads nothing.
	ctl, _ := readControl(stream.Context())
	return echoEach(stream.Context(), func() (func() error, error) {
		req, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		return func() error { return stream.Send(&pb.StreamResponseData{Data: ctl.pad("echo: " + req.Data)}) }, nil
	})
}

// chat serves ChatService.
type chat struct {
	pb.UnimplementedChatServiceServer
}

func (chat) ChatStream(stream pb.ChatService_ChatStreamServer) error {
	// A malformed header is reported by echoEach; a nil control pads nothing.
	ctl, _ := readControl(stream.Context())
	return echoEach(stream.Context(), func() (func() error, error) {
		req, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		return func() error {
			// The timestamp is taken when the answer goes out, after pacing.
			return stream.Send(&pb.Message{User: "server", Content: ctl.pad("echo: " + req.Content), Timestamp: time.Now().Unix()})
		}, nil
	})
}

// echoEach runs a full-duplex echo: recv reads one request and returns what
// sends its answer, which goes out at once (after the scripted pause). The call ends with
// OK at the half-close (recv's io.EOF) or after
// x-conform-close-after-requests requests, without reading further.
func echoEach(ctx context.Context, recv func() (func() error, error)) error {
	ctl, err := readControl(ctx)
	if err != nil {
		return err
	}
	if err := ctl.failAtStart(ctx); err != nil {
		return err
	}
	for read := 0; !ctl.closesAfter(read); {
		answer, err := recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := ctl.beforeResponse(ctx, read); err != nil {
			return err
		}
		if err := answer(); err != nil {
			return err
		}
		read++
		if err := ctl.afterResponse(read); err != nil {
			return err
		}
	}
	return nil
}

// sendStream sends a server stream of n responses, response i sent by
// send(i), paced and cut short as the script says.
func sendStream(ctx context.Context, ctl *control, n int, send func(i int) error) error {
	if err := ctl.failAtStart(ctx); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if err := ctl.beforeResponse(ctx, i); err != nil {
			return err
		}
		if err := send(i); err != nil {
			return err
		}
		if err := ctl.afterResponse(i + 1); err != nil {
			return err
		}
	}
	return nil
}

// sensors serves SensorService and keeps the last reading per device of every
// Record that ended OK, for Latest.
type sensors struct {
	pb.UnimplementedSensorServiceServer
	mu     sync.Mutex
	latest map[string]*pb.SensorData
}

func newSensors() *sensors {
	return &sensors{latest: map[string]*pb.SensorData{}}
}

func (s *sensors) Record(stream pb.SensorService_RecordServer) error {
	ctx := stream.Context()
	ctl, err := readControl(ctx)
	if err != nil {
		return err
	}
	var readings []*pb.SensorData
	err = readRequests(ctx, ctl, stream.Recv, func(r *pb.SensorData) error {
		if r.DeviceId == "" {
			return status.Errorf(codes.InvalidArgument, "Record: reading %d has an empty device_id", len(readings)+1)
		}
		readings = append(readings, r)
		return nil
	})
	if err != nil {
		return err
	}
	sum := summarise(readings)
	if ctl.responseSize >= 0 {
		// The contract pads the last device id, or one added when none.
		last := ""
		if n := len(sum.DeviceIds); n > 0 {
			last, sum.DeviceIds = sum.DeviceIds[n-1], sum.DeviceIds[:n-1]
		}
		sum.DeviceIds = append(sum.DeviceIds, ctl.pad(last))
	}
	if err := stream.SendAndClose(sum); err != nil {
		return err
	}
	s.store(readings)
	return nil
}

// summarise is Record's reply (CONTRACT.md section 2).
func summarise(readings []*pb.SensorData) *pb.RecordSummary {
	sum := &pb.RecordSummary{Count: uint32(len(readings))}
	seen := map[string]bool{}
	var total float64
	for i, r := range readings {
		if i == 0 || r.Temperature < sum.Min {
			sum.Min = r.Temperature
		}
		if i == 0 || r.Temperature > sum.Max {
			sum.Max = r.Temperature
		}
		if i > 0 && r.Timestamp < readings[i-1].Timestamp {
			sum.OutOfOrder++
		}
		if !seen[r.DeviceId] {
			seen[r.DeviceId] = true
			sum.DeviceIds = append(sum.DeviceIds, r.DeviceId)
		}
		total += float64(r.Temperature)
	}
	if len(readings) > 0 {
		sum.Mean = total / float64(len(readings))
		sum.FirstTimestamp = readings[0].Timestamp
		sum.LastTimestamp = readings[len(readings)-1].Timestamp
	}
	return sum
}

func (s *sensors) store(readings []*pb.SensorData) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range readings {
		s.latest[r.DeviceId] = r
	}
}

func (s *sensors) Watch(req *pb.WatchRequest, stream pb.SensorService_WatchServer) error {
	ctx := stream.Context()
	ctl, err := readControl(ctx)
	if err != nil {
		return err
	}
	if req.DeviceId == "" {
		return status.Error(codes.InvalidArgument, "Watch: device_id must not be empty")
	}
	limit := int(req.Limit)
	if limit == 0 {
		limit = 3
	}
	return sendStream(ctx, ctl, ctl.count(limit), func(i int) error {
		return stream.Send(&pb.SensorData{Timestamp: int64(1000 + i), Temperature: 20 + 0.25*float32(i), DeviceId: ctl.pad(req.DeviceId)})
	})
}

func (s *sensors) Latest(ctx context.Context, q *pb.DeviceQuery) (*pb.SensorData, error) {
	ctl, err := readControl(ctx)
	if err != nil {
		return nil, err
	}
	if q.DeviceId == "" {
		return nil, status.Error(codes.InvalidArgument, "Latest: device_id must not be empty")
	}
	if err := ctl.failAtStart(ctx); err != nil {
		return &pb.SensorData{}, err
	}
	s.mu.Lock()
	r, ok := s.latest[q.DeviceId]
	s.mu.Unlock()
	if !ok {
		return nil, status.Errorf(codes.NotFound, "Latest: no Record call stored a reading for device %q", q.DeviceId)
	}
	if err := ctl.beforeResponse(ctx, 0); err != nil {
		return nil, err
	}
	reply := proto.Clone(r).(*pb.SensorData)
	reply.DeviceId = ctl.pad(r.DeviceId)
	return reply, nil
}
