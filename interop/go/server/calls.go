package main

// What the server observed of each call (CONTRACT.md section 4). A stats
// handler opens the record when the request headers arrive (the only place
// grpc-go exposes the request's grpc-encoding), the interceptors count what
// the handler read and sent and settle the outcome from the call's context,
// and stats.End settles the calls the stack ended before any handler ran
// (e.g. a request over 4 MiB).

import (
	"context"
	"encoding/base64"
	"io"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"conform/pb"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

// callIDHeader names a call for Observer.GetCall.
const callIDHeader = "x-conform-call-id"

// maxGetCallWait caps GetCall's wait_ms, as the reference does: no call is
// parked longer than a fixture could sensibly need.
const maxGetCallWait = time.Minute

// maxKeptCalls bounds memory on a peer that runs for a whole matrix; the
// oldest records go first, as in the reference.
const maxKeptCalls = 10000

// call is one call's record, shared by the stats handler, the interceptors
// and GetCall.
type call struct {
	mu     sync.Mutex
	record pb.CallRecord
	// done is closed when the outcome leaves RUNNING, for GetCall's wait.
	done chan struct{}
}

func (c *call) update(f func(r *pb.CallRecord)) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.record)
}

// finish settles the outcome; the first ending wins, so a handler that
// returns after the client reset the stream stays CANCELLED.
func (c *call) finish(outcome pb.Outcome, code codes.Code) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.record.Outcome != pb.Outcome_RUNNING {
		return
	}
	c.record.Outcome = outcome
	c.record.StatusCode = uint32(code)
	close(c.done)
}

// finishFromHandler settles the outcome when the handler returned err. The
// call's context is grpc-go's own cancellation signal: Canceled when the
// client reset the stream or the connection went away, DeadlineExceeded when
// grpc-timeout ran out.
func (c *call) finishFromHandler(ctx context.Context, err error) {
	switch ctx.Err() {
	case context.Canceled:
		c.finish(pb.Outcome_CANCELLED, codes.Canceled)
	case context.DeadlineExceeded:
		c.finish(pb.Outcome_DEADLINE_EXCEEDED, codes.DeadlineExceeded)
	default:
		c.finish(pb.Outcome_COMPLETED, status.Code(err))
	}
}

// snapshot copies the record under the lock (the map must not be shared).
func (c *call) snapshot() *pb.CallRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &c.record
	out := &pb.CallRecord{
		CallId: r.CallId, Method: r.Method, RequestsReceived: r.RequestsReceived,
		HalfCloseReceived: r.HalfCloseReceived, Outcome: r.Outcome, StatusCode: r.StatusCode,
		ResponsesSent: r.ResponsesSent, RequestEncoding: r.RequestEncoding,
		TimeoutMs: r.TimeoutMs, Metadata: map[string]string{},
	}
	for k, v := range r.Metadata {
		out.Metadata[k] = v
	}
	return out
}

// registry keeps the calls that carried x-conform-call-id.
type registry struct {
	mu    sync.Mutex
	calls map[string]*call
	order []string
}

func newRegistry() *registry {
	return &registry{calls: map[string]*call{}}
}

// keep stores c under id; a second call with the same id replaces the first,
// so a rerun fixture sees its own call.
func (r *registry) keep(id string, c *call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, seen := r.calls[id]; !seen {
		r.order = append(r.order, id)
		if len(r.order) > maxKeptCalls {
			delete(r.calls, r.order[0])
			r.order = r.order[1:]
		}
	}
	r.calls[id] = c
}

func (r *registry) get(id string) *call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[id]
}

type callKey struct{}

// callFrom returns the call the stats handler put in ctx, or nil (every
// method of *call accepts nil) for a call it did not open.
func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// callStats is the grpc.StatsHandler that opens and, as a fallback, closes
// the records.
type callStats struct {
	calls *registry
	// known holds "/Service/Method" of every registered method: an unknown
	// method never reaches a handler nor stats.End in grpc-go, so it is not
	// recorded (GetCall answers NOT_FOUND for it).
	known map[string]bool
}

func (s *callStats) setKnownMethods(services map[string]grpc.ServiceInfo) {
	s.known = map[string]bool{}
	for name, info := range services {
		for _, m := range info.Methods {
			s.known["/"+name+"/"+m.Name] = true
		}
	}
}

func (s *callStats) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	if !s.known[info.FullMethodName] {
		return ctx
	}
	md, _ := metadata.FromIncomingContext(ctx)
	c := &call{done: make(chan struct{}), record: pb.CallRecord{
		Method:    info.FullMethodName,
		Outcome:   pb.Outcome_RUNNING,
		TimeoutMs: timeoutMs(ctx),
		Metadata:  xHeaders(md),
	}}
	if ids := md.Get(callIDHeader); len(ids) > 0 && ids[0] != "" {
		c.record.CallId = ids[0]
		s.calls.keep(ids[0], c)
	}
	return context.WithValue(ctx, callKey{}, c)
}

func (s *callStats) HandleRPC(ctx context.Context, st stats.RPCStats) {
	c := callFrom(ctx)
	switch st := st.(type) {
	case *stats.InHeader:
		c.update(func(r *pb.CallRecord) { r.RequestEncoding = st.Compression })
	case *stats.End:
		// Only matters when no handler ran: otherwise the interceptor ended it.
		c.finish(pb.Outcome_COMPLETED, status.Code(st.Error))
	}
}

func (s *callStats) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}

func (s *callStats) HandleConn(context.Context, stats.ConnStats) {}

// timeoutMs is the call's deadline in milliseconds, rounded up so that the
// time grpc-go took to reach here does not turn the client's 1000m into 999.
func timeoutMs(ctx context.Context) int64 {
	deadline, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	return int64(math.Ceil(float64(time.Until(deadline)) / float64(time.Millisecond)))
}

// xHeaders keeps the request headers whose names start with "x-". grpc-go
// hands -bin values over decoded, so they are base64-encoded again (unpadded,
// as the gRPC spec asks senders to); repeated headers are joined with ",".
func xHeaders(md metadata.MD) map[string]string {
	out := map[string]string{}
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !strings.HasPrefix(k, "x-") {
			continue
		}
		// A copy: md is the call's own metadata, still read by the echo.
		values := append([]string(nil), md[k]...)
		if strings.HasSuffix(k, "-bin") {
			for i, v := range values {
				values[i] = base64.RawStdEncoding.EncodeToString([]byte(v))
			}
		}
		out[k] = strings.Join(values, ",")
	}
	return out
}

// unaryObserver counts the one request (grpc-go read it before the handler
// ran) and the one response, echoes the interop headers and settles the
// outcome. grpc-go does not tell a unary handler whether END_STREAM came, so
// half_close_received stays false for unary calls.
func unaryObserver(ctx context.Context, req interface{}, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (interface{}, error) {
	c := callFrom(ctx)
	c.update(func(r *pb.CallRecord) { r.RequestsReceived++ })
	echoInteropHeaders(ctx, grpc.SetHeader, grpc.SetTrailer)
	reply, err := handler(ctx, req)
	if err == errScriptedOK {
		// The handler's empty reply goes out with OK: grpc-go cannot end a
		// unary call OK without one.
		err = nil
	}
	if err == nil {
		c.update(func(r *pb.CallRecord) { r.ResponsesSent++ })
	}
	c.finishFromHandler(ctx, err)
	return reply, err
}

// streamObserver wraps the stream to count messages and see the half-close.
func streamObserver(srv interface{}, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx := ss.Context()
	c := callFrom(ctx)
	echoInteropHeaders(ctx,
		func(_ context.Context, md metadata.MD) error { return ss.SetHeader(md) },
		func(_ context.Context, md metadata.MD) error { ss.SetTrailer(md); return nil })
	err := handler(srv, &countingStream{ServerStream: ss, call: c})
	if err == errScriptedOK {
		err = nil
	}
	c.finishFromHandler(ctx, err)
	return err
}

// echoInteropHeaders sends x-grpc-test-echo-initial back as a response header
// and x-grpc-test-echo-trailing-bin as a trailer (grpc-go re-encodes the
// decoded -bin value).
func echoInteropHeaders(ctx context.Context, setHeader, setTrailer func(context.Context, metadata.MD) error) {
	md, _ := metadata.FromIncomingContext(ctx)
	// Every value of a repeated echo header, in order.
	if v := md.Get("x-grpc-test-echo-initial"); len(v) > 0 {
		_ = setHeader(ctx, metadata.MD{"x-grpc-test-echo-initial": v})
	}
	if v := md.Get("x-grpc-test-echo-trailing-bin"); len(v) > 0 {
		_ = setTrailer(ctx, metadata.MD{"x-grpc-test-echo-trailing-bin": v})
	}
}

// countingStream records what the handler read and sent.
type countingStream struct {
	grpc.ServerStream
	call *call
}

func (s *countingStream) RecvMsg(m interface{}) error {
	err := s.ServerStream.RecvMsg(m)
	switch err {
	case nil:
		s.call.update(func(r *pb.CallRecord) { r.RequestsReceived++ })
	case io.EOF:
		// io.EOF is grpc-go's clean END_STREAM; a reset comes back as a
		// Canceled status error instead, so it is never taken for a half-close.
		s.call.update(func(r *pb.CallRecord) { r.HalfCloseReceived = true })
	}
	return err
}

func (s *countingStream) SendMsg(m interface{}) error {
	err := s.ServerStream.SendMsg(m)
	if err == nil {
		s.call.update(func(r *pb.CallRecord) { r.ResponsesSent++ })
	}
	return err
}

// observer serves conform.v1.Observer.
type observer struct {
	pb.UnimplementedObserverServer
	calls *registry
}

// GetCall waits up to wait_ms for the call to stop running; running out of
// wait is an answer too (the record says RUNNING).
func (o *observer) GetCall(ctx context.Context, q *pb.CallQuery) (*pb.CallRecord, error) {
	c := o.calls.get(q.CallId)
	if c == nil {
		return nil, status.Errorf(codes.NotFound, "GetCall: no call carried %s %q", callIDHeader, q.CallId)
	}
	waitFor := time.Duration(q.WaitMs) * time.Millisecond
	if waitFor > maxGetCallWait {
		waitFor = maxGetCallWait
	}
	wait := time.NewTimer(waitFor)
	defer wait.Stop()
	select {
	case <-c.done:
	case <-wait.C:
	case <-ctx.Done():
		return nil, contextStatus(ctx)
	}
	return c.snapshot(), nil
}
