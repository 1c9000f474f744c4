// Command client is the grpc-go client peer of grpc-conform's client mode
// (docs/clients.md): it reads a plan on stdin, runs its calls on one grpc-go
// channel and prints what grpc-go's API surfaced of each call on stdout.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	// Registers the gzip compressor: the only one grpc-go ships.
	_ "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/keepalive"
)

// stuckGrace bounds how long the client waits, after the plan's timeout_ms
// cancelled every call, for grpc-go to hand the calls back.
const stuckGrace = 2 * time.Second

// flushLinger is how long the client keeps its channel open after the last
// call ended. grpc-go 1.33 queues a call's RST_STREAM (a cancel, an expired
// deadline) for the transport's writer goroutine, and ClientConn.Close drops
// whatever that goroutine has not written yet (http2Client.Close closes the
// socket at once), so without a pause the server sometimes never sees the
// reset. The library has no call that waits for its queue to drain.
const flushLinger = 200 * time.Millisecond

func main() {
	plan, err := readPlan(os.Stdin)
	if err != nil {
		fail(err)
	}
	methods, err := resolveMethods(plan)
	if err != nil {
		fail(err)
	}
	target := plan.Target
	if target == "" {
		target = os.Getenv("GRPC_CONFORM_TARGET")
	}
	conn, err := grpc.Dial(target, dialOptions(plan.Channel)...)
	if err != nil {
		fail(fmt.Errorf("dialling %s: %w", target, err))
	}
	defer conn.Close()

	timeout := time.Duration(plan.TimeoutMs) * time.Millisecond
	// A cancel, not a deadline: a deadline on the parent would reach every
	// call as a grpc-timeout the plan did not ask for.
	planCtx, stop := context.WithCancel(context.Background())
	defer stop()
	timer := time.AfterFunc(timeout, stop)
	defer timer.Stop()

	runs := make([]*callRun, len(plan.Calls))
	for i := range plan.Calls {
		runs[i] = &callRun{spec: &plan.Calls[i], method: methods[i], conn: conn, planCtx: planCtx, timeout: timeout}
	}
	calls := make([]ReportCall, len(runs))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if !plan.Concurrent {
			for i, run := range runs {
				calls[i] = run.run()
			}
			return
		}
		var wg sync.WaitGroup
		for i, run := range runs {
			wg.Add(1)
			go func(i int, run *callRun) {
				defer wg.Done()
				calls[i] = run.run()
			}(i, run)
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(timeout + stuckGrace):
		fail(fmt.Errorf("calls still running %v after the plan's timeout_ms (%v) cancelled them", stuckGrace, timeout))
	}
	// Before the deferred conn.Close(): let grpc-go write what it queued.
	time.Sleep(flushLinger)
	report := Report{Version: interfaceVersion, Client: "grpc-go/" + grpc.Version, Calls: calls}
	if err := json.NewEncoder(os.Stdout).Encode(report); err != nil {
		fail(fmt.Errorf("writing the report: %w", err))
	}
}

// dialOptions maps the plan's channel settings to grpc-go's dial options;
// what the plan leaves out keeps grpc-go's default.
func dialOptions(channel ChannelOptions) []grpc.DialOption {
	opts := []grpc.DialOption{grpc.WithInsecure()}
	if k := channel.Keepalive; k != nil {
		// grpc-go raises a Time under 10 s to 10 s.
		opts = append(opts, grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                time.Duration(k.TimeMs) * time.Millisecond,
			Timeout:             time.Duration(k.TimeoutMs) * time.Millisecond,
			PermitWithoutStream: k.PermitWithoutStream,
		}))
	}
	if n := channel.MaxReceiveMessageBytes; n != nil {
		opts = append(opts, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(int(*n))))
	}
	return opts
}

// resolveMethods finds each call's types and checks every message the plan
// sends, so that a bad plan fails before any call starts.
func resolveMethods(plan *Plan) ([]*method, error) {
	methods := make([]*method, len(plan.Calls))
	for i, call := range plan.Calls {
		m, err := lookupMethod(call.Method)
		if err != nil {
			return nil, fmt.Errorf("plan (stdin): calls[%d]: %w", i, err)
		}
		for j, step := range call.Steps {
			text := []byte(step.Message)
			if step.Op == "send_many" {
				if text, err = expandTemplate(step.Template, 1); err != nil {
					return nil, fmt.Errorf("plan (stdin): calls[%d].steps[%d]: %w", i, j, err)
				}
			} else if step.Op != "send" {
				continue
			}
			if _, err := m.request(text); err != nil {
				return nil, fmt.Errorf("plan (stdin): calls[%d].steps[%d]: %w", i, j, err)
			}
		}
		methods[i] = m
	}
	return methods, nil
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "interop/go/client: %v\n", err)
	os.Exit(1)
}
