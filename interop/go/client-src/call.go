package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// callRun drives one planned call through grpc-go's stream API, the one the
// generated stubs use: NewStream with the method's StreamDesc, SendMsg,
// CloseSend, Header, RecvMsg, and the context's cancel function.
type callRun struct {
	spec    *PlanCall
	method  *method
	conn    *grpc.ClientConn
	planCtx context.Context // cancelled when the plan's timeout_ms runs out
	timeout time.Duration   // the plan's timeout_ms, for messages

	cancel    context.CancelFunc
	stream    grpc.ClientStream
	request   protoreflect.ProtoMessage // unary and server streaming: sent at half_close
	cancelled bool                      // a cancel step ran
	ended     bool
	endErr    error  // io.EOF: ended OK
	where     string // the step being run, for the timeout's message
	timedOut  string // where the plan's timeout_ms cut the call short
	headers   *[][2]string
	headersIn bool
	messages  []json.RawMessage
}

func (c *callRun) oneRequest() bool {
	return c.spec.Mode == modeUnary || c.spec.Mode == modeServerStreaming
}

// run performs the steps, drains the call to its end and reports it.
func (c *callRun) run() ReportCall {
	c.where = "when the call opened"
	if !c.oneRequest() {
		c.start()
	}
	for i, step := range c.spec.Steps {
		if c.planCtx.Err() != nil {
			break // the plan's time is up: the drain below ends the call
		}
		if c.ended && step.Op != "pause" {
			continue
		}
		c.where = fmt.Sprintf("at steps[%d] (%s)", i, step.Op)
		c.do(step)
	}
	c.where = "while draining the call after its last step"
	c.receiveAll()
	if c.stream == nil && !c.ended {
		c.end(errors.New("client: the call never started: the plan's timeout_ms ran out first"))
		c.timedOut = "" // the error says it already
	}
	if c.cancel != nil {
		c.cancel() // releases the context's resources; the call has ended
	}
	return c.report()
}

func (c *callRun) do(step PlanStep) {
	switch step.Op {
	case "send":
		c.send(step.Message)
	case "send_many":
		for n := 1; n <= step.Count && !c.ended; n++ {
			text, err := expandTemplate(step.Template, n)
			if err != nil {
				c.end(err)
				return
			}
			c.send(text)
		}
	case "half_close":
		c.halfClose()
	case "receive_headers":
		c.receiveHeaders()
	case "receive":
		c.receive()
	case "receive_all":
		c.receiveAll()
	case "cancel":
		c.cancelled = true
		if c.cancel != nil {
			c.cancel()
		}
	case "pause":
		timer := time.NewTimer(time.Duration(step.Ms) * time.Millisecond)
		select {
		case <-timer.C:
		case <-c.planCtx.Done():
			timer.Stop()
		}
	}
}

// start opens the stream: the context (deadline, metadata) and the call
// options (compression) are fixed here, as a generated stub's caller does.
func (c *callRun) start() {
	var ctx context.Context
	if c.spec.DeadlineMs != nil {
		ctx, c.cancel = context.WithTimeout(c.planCtx, time.Duration(*c.spec.DeadlineMs)*time.Millisecond)
	} else {
		ctx, c.cancel = context.WithCancel(c.planCtx)
	}
	var pairs []string
	for _, pair := range c.spec.Metadata {
		value := pair[1]
		if strings.HasSuffix(pair[0], "-bin") {
			raw, _ := decodeBase64(value) // checked when the plan was read
			value = string(raw)           // grpc-go base64-encodes -bin values itself
		}
		pairs = append(pairs, pair[0], value)
	}
	ctx = metadata.AppendToOutgoingContext(ctx, pairs...)
	var opts []grpc.CallOption
	if c.spec.Compression != nil {
		opts = append(opts, grpc.UseCompressor(*c.spec.Compression))
	}
	desc := &grpc.StreamDesc{
		ServerStreams: c.spec.Mode == modeServerStreaming || c.spec.Mode == modeBidi,
		ClientStreams: c.spec.Mode == modeClientStreaming || c.spec.Mode == modeBidi,
	}
	stream, err := c.conn.NewStream(ctx, desc, c.spec.Method, opts...)
	if err != nil {
		c.end(err)
		return
	}
	c.stream = stream
}

func (c *callRun) send(text []byte) {
	msg, err := c.method.request(text)
	if err != nil {
		c.end(err)
		return
	}
	if c.oneRequest() {
		c.request = msg
		return
	}
	if err := c.stream.SendMsg(msg); err != nil {
		if errors.Is(err, io.EOF) {
			c.receiveAll() // the stream has ended: RecvMsg gives its status
			return
		}
		c.end(err)
	}
}

// halfClose ends the request stream; for unary and server streaming it
// invokes the call (a unary StreamDesc half-closes with its one SendMsg, as
// grpc-go's Invoke does).
func (c *callRun) halfClose() {
	if !c.oneRequest() {
		if err := c.stream.CloseSend(); err != nil {
			c.end(err)
		}
		return
	}
	c.start()
	if c.ended {
		return
	}
	if err := c.stream.SendMsg(c.request); err != nil {
		if errors.Is(err, io.EOF) {
			c.receiveAll()
			return
		}
		c.end(err)
		return
	}
	if c.spec.Mode == modeServerStreaming {
		if err := c.stream.CloseSend(); err != nil {
			c.end(err)
		}
	}
}

func (c *callRun) receiveHeaders() {
	md, err := c.stream.Header()
	c.headersIn = true
	c.headers = headerPairs(md, err)
}

// receive reads one message; a call whose responses are not a stream ends
// with it (grpc-go's RecvMsg then also read the OK status).
func (c *callRun) receive() {
	msg := c.method.output.New().Interface()
	if err := c.stream.RecvMsg(msg); err != nil {
		if errors.Is(err, io.EOF) && !c.responseStream() {
			// An OK status without the one response: grpc-go 1.33 hands the
			// io.EOF itself to the application (Invoke, CloseAndRecv).
			err = errNoResponse{}
		}
		c.end(err)
		return
	}
	text, err := responseJSON(msg)
	if err != nil {
		c.end(fmt.Errorf("rendering a response as JSON: %w", err))
		return
	}
	c.messages = append(c.messages, text)
	if !c.responseStream() {
		c.end(io.EOF)
	}
}

func (c *callRun) responseStream() bool {
	return c.spec.Mode == modeServerStreaming || c.spec.Mode == modeBidi
}

// errNoResponse is the io.EOF grpc-go returns from a unary or client
// streaming call that ended OK without its response; this client keeps a bare
// io.EOF for "ended OK", so it stands in for it (same text, and
// status.Convert makes it UNKNOWN "EOF", as it would for the application).
type errNoResponse struct{}

func (errNoResponse) Error() string { return io.EOF.Error() }

func (c *callRun) receiveAll() {
	for !c.ended && c.stream != nil {
		c.receive()
	}
}

func (c *callRun) end(err error) {
	if c.ended {
		return
	}
	c.ended = true
	c.endErr = err
	if c.planCtx.Err() != nil && !c.cancelled && c.timedOut == "" {
		c.timedOut = c.where
	}
}

func (c *callRun) report() ReportCall {
	out := ReportCall{Messages: c.messages, Trailers: [][2]string{}}
	if out.Messages == nil {
		out.Messages = []json.RawMessage{}
	}
	if c.stream != nil {
		if !c.headersIn {
			md, err := c.stream.Header()
			out.Headers = headerPairs(md, err)
		} else {
			out.Headers = c.headers
		}
		if trailers := headerPairs(c.stream.Trailer(), nil); trailers != nil {
			out.Trailers = *trailers
		}
	}
	if c.endErr == nil || errors.Is(c.endErr, io.EOF) {
		return out
	}
	st := status.Convert(c.endErr)
	out.Status = ReportStatus{Code: uint32(st.Code()), Message: st.Message()}
	text := c.endErr.Error()
	if c.timedOut != "" {
		text = fmt.Sprintf("client: the plan's timeout_ms (%v) ran out %s and cancelled the call: %s", c.timeout, c.timedOut, text)
	}
	out.Error = &text
	return out
}

// headerPairs lists metadata sorted by name (grpc-go hands it over as a map),
// each name's values in arrival order, -bin values in padded base64 (as the
// kit's own client reports them); nil when grpc-go gave none (an error or
// trailers-only).
func headerPairs(md metadata.MD, err error) *[][2]string {
	if err != nil || len(md) == 0 {
		return nil
	}
	names := make([]string, 0, len(md))
	for name := range md {
		names = append(names, name)
	}
	sort.Strings(names)
	pairs := [][2]string{}
	for _, name := range names {
		for _, value := range md[name] {
			if strings.HasSuffix(name, "-bin") {
				value = base64.StdEncoding.EncodeToString([]byte(value))
			}
			pairs = append(pairs, [2]string{name, value})
		}
	}
	return &pairs
}
