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
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// maxPause bounds delay-ms and response-interval-ms, as the reference does:
// every wait is bounded.
const maxPause = 600000

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
}

// readControl parses the control headers of ctx's call; a malformed value is
// INVALID_ARGUMENT naming the header, so a typo in a fixture is not silently
// read as "absent".
func readControl(ctx context.Context) (*control, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	c := &control{responseCount: -1, failAfter: -1, failCode: codes.Unknown, closeAfter: -1}
	var bad error
	// number reads a decimal from 0 to max (surrounding spaces tolerated).
	number := func(name string, max int64, into *int64) {
		v := md.Get(name)
		if bad != nil || len(v) == 0 {
			return
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v[0]), 10, 32)
		if err != nil || int64(n) > max {
			bad = status.Errorf(codes.InvalidArgument, "control header %s: expected a decimal integer from 0 to %d (got %q)", name, max, v[0])
			return
		}
		*into = int64(n)
	}
	var delayMs, intervalMs int64
	failCode := int64(codes.Unknown)
	number("x-conform-response-count", 1<<32-1, &c.responseCount)
	number("x-conform-delay-ms", maxPause, &delayMs)
	number("x-conform-response-interval-ms", maxPause, &intervalMs)
	number("x-conform-fail-after", 1<<32-1, &c.failAfter)
	number("x-conform-fail-code", 16, &failCode)
	number("x-conform-close-after-requests", 1<<32-1, &c.closeAfter)
	if bad != nil {
		return nil, bad
	}
	c.delay = time.Duration(delayMs) * time.Millisecond
	c.interval = time.Duration(intervalMs) * time.Millisecond
	c.failCode = codes.Code(failCode)
	if v := md.Get("x-conform-fail-message"); len(v) > 0 {
		// The header carries the message percent-encoded, as grpc-message
		// does (a header value can't hold every text); grpc-go encodes it
		// again for grpc-message.
		c.failMsg = percentDecode(v[0])
		if !utf8.ValidString(c.failMsg) {
			return nil, status.Errorf(codes.InvalidArgument, "control header x-conform-fail-message: percent-decodes to invalid UTF-8 (got %q)", v[0])
		}
	}
	return c, nil
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

// failAtStart ends the call with the fail status when fail-after is 0, after
// delay-ms, before anything else happens.
func (c *control) failAtStart(ctx context.Context) error {
	if c.failAfter != 0 {
		return nil
	}
	if err := sleep(ctx, c.delay); err != nil {
		return err
	}
	return status.Error(c.failCode, c.failMsg)
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
		return status.Error(c.failCode, c.failMsg)
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
