package main

// The control headers of CONTRACT.md section 3 that a handler acts on, with
// the reference's rules:
//   - delay-ms pauses before the first response (for unary and client
//     streaming: after the requests were read); response-interval-ms before
//     each later one.
//   - fail-after: 0 ends the call with the fail status at the handler's start,
//     after delay-ms, before any request is read. fail-after: N > 0 ends it
//     right after the N-th response; a call that ends with fewer responses
//     ends as it would have, so N > 0 changes nothing for a method with one
//     response.
//   - close-after-requests: N stops reading after N requests and finishes OK.

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang/protobuf/proto"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// maxPause bounds delay-ms and response-interval-ms, as the reference does:
// every wait is bounded.
const maxPause = 600000

// maxResponseSize bounds x-conform-response-size, as the reference does.
const maxResponseSize = 16 * 1024 * 1024

// control is one call's script, read from its request headers.
type control struct {
	// responseCount overrides a server stream's length when set (>= 0).
	responseCount int64
	delay         time.Duration
	interval      time.Duration
	// failAfter is the response count after which the call fails, -1 for
	// none; 0 fails at the start.
	failAfter int64
	failCode  codes.Code
	failMsg   string
	// closeAfter ends a client or bidi stream with OK after that many
	// requests, -1 for never.
	closeAfter int64
	// responseSize pads each response's text to that many bytes, -1 for none.
	responseSize int64
	// details is the google.rpc.Status of x-conform-fail-details-bin.
	details *spb.Status
}

// readControl parses the control headers of ctx's call; a malformed value is
// INVALID_ARGUMENT naming the header, so a typo in a fixture is not silently
// read as "absent".
func readControl(ctx context.Context) (*control, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	c := &control{responseCount: -1, failAfter: -1, failCode: codes.Unknown, closeAfter: -1, responseSize: -1}
	// The reference's order and wording, so that the same typo gives the same
	// status message on every peer.
	if err := number(md, "x-conform-fail-after", &c.failAfter); err != nil {
		return nil, err
	}
	if c.failAfter >= 0 {
		if err := c.readFailure(md); err != nil {
			return nil, err
		}
	}
	if err := number(md, "x-conform-response-count", &c.responseCount); err != nil {
		return nil, err
	}
	var err error
	if c.interval, err = pause(md, "x-conform-response-interval-ms"); err != nil {
		return nil, err
	}
	if c.delay, err = pause(md, "x-conform-delay-ms"); err != nil {
		return nil, err
	}
	if err := number(md, "x-conform-close-after-requests", &c.closeAfter); err != nil {
		return nil, err
	}
	if err := number(md, "x-conform-response-size", &c.responseSize); err != nil {
		return nil, err
	}
	if c.responseSize > maxResponseSize {
		return nil, controlError("x-conform-response-size", md, "sizes above 16777216 bytes are refused")
	}
	return c, nil
}

// pad is text padded at its end with x to x-conform-response-size bytes; a
// longer text, or no header, leaves it as it is.
func (c *control) pad(text string) string {
	if c == nil || int64(len(text)) >= c.responseSize {
		return text
	}
	return text + strings.Repeat("x", int(c.responseSize)-len(text))
}

// readFailure reads fail-code and fail-message, which count only with
// fail-after.
func (c *control) readFailure(md metadata.MD) error {
	code := int64(codes.Unknown)
	if err := number(md, "x-conform-fail-code", &code); err != nil {
		return err
	}
	if code > 16 {
		return controlError("x-conform-fail-code", md, "expected a gRPC status code from 0 to 16")
	}
	c.failCode = codes.Code(code)
	// grpc-go hands -bin values over base64-decoded (padded or not).
	if v := md.Get("x-conform-fail-details-bin"); len(v) > 0 {
		c.details = &spb.Status{}
		if err := proto.Unmarshal([]byte(v[0]), c.details); err != nil {
			return status.Errorf(codes.InvalidArgument, "control header x-conform-fail-details-bin: not a google.rpc.Status: %v", err)
		}
	}
	if v := md.Get("x-conform-fail-message"); len(v) > 0 {
		// The header carries the message percent-encoded, as grpc-message
		// does (a header value can't hold every text); grpc-go encodes it
		// again for grpc-message.
		c.failMsg = percentDecode(v[0])
		if !utf8.ValidString(c.failMsg) {
			return controlError("x-conform-fail-message", md, "percent-decodes to invalid UTF-8")
		}
	}
	return nil
}

// number reads header name into *into when present: a decimal from 0 to
// 2^32-1, surrounding spaces tolerated.
func number(md metadata.MD, name string, into *int64) error {
	v := md.Get(name)
	if len(v) == 0 {
		return nil
	}
	n, err := strconv.ParseUint(strings.TrimSpace(v[0]), 10, 32)
	if err != nil {
		return controlError(name, md, "expected a decimal integer from 0 to 4294967295")
	}
	*into = int64(n)
	return nil
}

// pause reads a pause in milliseconds, at most maxPause.
func pause(md metadata.MD, name string) (time.Duration, error) {
	ms := int64(0)
	if err := number(md, name, &ms); err != nil {
		return 0, err
	}
	if ms > maxPause {
		return 0, controlError(name, md, "pauses above 600000 ms are refused")
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// controlError is INVALID_ARGUMENT naming the header, its value and what is
// wrong, as the reference words it.
func controlError(name string, md metadata.MD, reason string) error {
	return status.Errorf(codes.InvalidArgument, "control header %s: %s (got %q)", name, reason, md.Get(name)[0])
}

// percentDecode decodes %XX escapes leniently, as the reference does: a "%"
// not followed by two hex digits stays as it is, so plain text may be sent
// as it is.
func percentDecode(s string) string {
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if b, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				out.WriteByte(byte(b))
				i += 2
				continue
			}
		}
		out.WriteByte(s[i])
	}
	return out.String()
}

// errScriptedOK ends a call early with OK: a scripted failure whose
// fail-code is 0. grpc-go has no error value for OK (status.Error(OK) is
// nil), so the handlers return this and the interceptors turn it into nil.
var errScriptedOK = errors.New("scripted end with status OK")

// failure is the scripted status as the error a handler returns.
func (c *control) failure() error {
	if c.failCode == codes.OK {
		return errScriptedOK
	}
	if c.details != nil {
		// grpc-go writes grpc-status-details-bin from the status's proto, and
		// only when it has details; its code and message are the proto's.
		return status.FromProto(c.details).Err()
	}
	return status.Error(c.failCode, c.failMsg)
}

// failAtStart ends the call with the fail status when fail-after is 0, after
// delay-ms, before anything else happens.
func (c *control) failAtStart(ctx context.Context) error {
	if c.failAfter != 0 {
		return nil
	}
	if err := sleep(ctx, c.delay); err != nil {
		return err
	}
	return c.failure()
}

// beforeResponse waits as scripted before response number sent (from 0).
func (c *control) beforeResponse(ctx context.Context, sent int) error {
	if sent == 0 {
		return sleep(ctx, c.delay)
	}
	return sleep(ctx, c.interval)
}

// afterResponse is the fail status when the response just sent was the
// fail-after-th, nil otherwise.
func (c *control) afterResponse(sent int) error {
	if c.failAfter > 0 && int64(sent) == c.failAfter {
		return c.failure()
	}
	return nil
}

// closesAfter says whether the call stops reading now that it read `read`
// requests.
func (c *control) closesAfter(read int) bool {
	return c.closeAfter >= 0 && int64(read) >= c.closeAfter
}

// count is the number of responses of a server stream whose default is n.
func (c *control) count(n int) int {
	if c.responseCount >= 0 {
		return int(c.responseCount)
	}
	return n
}

// sleep pauses for d, or less when the call is cancelled or its deadline
// passes (grpc-go's own signal: the call's context).
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return contextStatus(ctx)
	}
}

// contextStatus is the status of a call whose context ended.
func contextStatus(ctx context.Context) error {
	if ctx.Err() == context.DeadlineExceeded {
		return status.Error(codes.DeadlineExceeded, "deadline exceeded while the handler ran")
	}
	return status.Error(codes.Canceled, "call cancelled by the client")
}
