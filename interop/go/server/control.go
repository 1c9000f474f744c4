package main

// The control headers of CONTRACT.md section 3 that a handler acts on.
//
// Every response a handler may send is a "slot": before slot n the handler
// pauses (x-conform-delay-ms before the first, x-conform-response-interval-ms
// before the others), and when n equals x-conform-fail-after it ends the call
// with the scripted status instead of sending. A call that would end with OK
// after exactly fail-after responses ends with that status too.

import (
	"context"
	"net/url"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// control is one call's script, read from its request headers.
type control struct {
	// responseCount overrides a server stream's length when set (>= 0).
	responseCount int
	delay         time.Duration
	interval      time.Duration
	// failAfter is the slot that fails, -1 for none.
	failAfter int
	failCode  codes.Code
	failMsg   string
	// closeAfter ends a client or bidi stream with OK after that many
	// requests, -1 for never.
	closeAfter int
}

// readControl parses the control headers of ctx's call; a malformed number is
// INVALID_ARGUMENT naming the header, so a typo in a fixture is not silently
// read as "absent".
func readControl(ctx context.Context) (*control, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	c := &control{responseCount: -1, failAfter: -1, failCode: codes.Unknown, closeAfter: -1}
	var err error
	number := func(name string, into *int) {
		v := md.Get(name)
		if err != nil || len(v) == 0 {
			return
		}
		n, perr := strconv.ParseUint(v[0], 10, 31)
		if perr != nil {
			err = status.Errorf(codes.InvalidArgument, "header %s: %q is not a non-negative integer", name, v[0])
			return
		}
		*into = int(n)
	}
	var delayMs, intervalMs, failCode int
	failCode = int(codes.Unknown)
	number("x-conform-response-count", &c.responseCount)
	number("x-conform-delay-ms", &delayMs)
	number("x-conform-response-interval-ms", &intervalMs)
	number("x-conform-fail-after", &c.failAfter)
	number("x-conform-fail-code", &failCode)
	number("x-conform-close-after-requests", &c.closeAfter)
	if err != nil {
		return nil, err
	}
	c.delay = time.Duration(delayMs) * time.Millisecond
	c.interval = time.Duration(intervalMs) * time.Millisecond
	c.failCode = codes.Code(failCode)
	if v := md.Get("x-conform-fail-message"); len(v) > 0 {
		// The header carries the message percent-encoded, as grpc-message
		// does (a header value can't hold non-ASCII text); grpc-go encodes
		// it again for grpc-message. A value that isn't valid
		// percent-encoding is taken as it is.
		c.failMsg = v[0]
		if decoded, err := url.PathUnescape(v[0]); err == nil {
			c.failMsg = decoded
		}
	}
	return c, nil
}

// beforeResponse paces slot n and says whether it fails instead.
func (c *control) beforeResponse(ctx context.Context, n int) error {
	pause := c.interval
	if n == 0 {
		pause = c.delay
	}
	if err := sleep(ctx, pause); err != nil {
		return err
	}
	return c.failIfDue(n)
}

// failIfDue is the scripted status when sent responses reached fail-after,
// nil otherwise.
func (c *control) failIfDue(sent int) error {
	if c.failAfter >= 0 && sent == c.failAfter {
		return status.Error(c.failCode, c.failMsg)
	}
	return nil
}

// closesAfter says whether the call ends with OK now that it read `read`
// requests.
func (c *control) closesAfter(read int) bool {
	return c.closeAfter >= 0 && read >= c.closeAfter
}

// count is the number of responses of a server stream whose default is n.
func (c *control) count(n int) int {
	if c.responseCount >= 0 {
		return c.responseCount
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
