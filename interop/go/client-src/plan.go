package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// interfaceVersion is the plan and report version this client speaks.
const interfaceVersion = 1

// Plan is what grpc-conform writes on stdin: one fixture's calls on one channel.
type Plan struct {
	Version    int            `json:"version"`
	Fixture    string         `json:"fixture"`
	Target     string         `json:"target"`
	TimeoutMs  int64          `json:"timeout_ms"`
	Channel    ChannelOptions `json:"channel"`
	Concurrent bool           `json:"concurrent"`
	Calls      []PlanCall     `json:"calls"`
}

// ChannelOptions are the channel settings a fixture fixes; nil means the
// stack's default.
type ChannelOptions struct {
	Keepalive              *Keepalive `json:"keepalive"`
	MaxReceiveMessageBytes *int64     `json:"max_receive_message_bytes"`
}

// Keepalive mirrors keepalive.ClientParameters, in milliseconds.
type Keepalive struct {
	TimeMs              int64 `json:"time_ms"`
	TimeoutMs           int64 `json:"timeout_ms"`
	PermitWithoutStream bool  `json:"permit_without_stream"`
}

// PlanCall is one call: its method, mode, request metadata and steps.
type PlanCall struct {
	Method      string      `json:"method"`
	Mode        string      `json:"mode"`
	Metadata    [][2]string `json:"metadata"`
	DeadlineMs  *int64      `json:"deadline_ms"`
	Compression *string     `json:"compression"`
	Steps       []PlanStep  `json:"steps"`
}

// PlanStep is one step, tagged by Op; the other fields belong to some ops only.
type PlanStep struct {
	Op       string          `json:"op"`
	Message  json.RawMessage `json:"message,omitempty"`
	Count    int             `json:"count,omitempty"`
	Template json.RawMessage `json:"template,omitempty"`
	Ms       int64           `json:"ms,omitempty"`
}

// Report is what this client prints on stdout.
type Report struct {
	Version int          `json:"version"`
	Client  string       `json:"client"`
	Calls   []ReportCall `json:"calls"`
}

// ReportCall is what grpc-go's API surfaced of one call.
type ReportCall struct {
	Headers  *[][2]string      `json:"headers"`
	Messages []json.RawMessage `json:"messages"`
	Trailers [][2]string       `json:"trailers"`
	Status   ReportStatus      `json:"status"`
	Error    *string           `json:"error"`
}

// ReportStatus is a status code and message as grpc-go's status package gives them.
type ReportStatus struct {
	Code    uint32 `json:"code"`
	Message string `json:"message"`
}

const (
	modeUnary           = "unary"
	modeServerStreaming = "server_streaming"
	modeClientStreaming = "client_streaming"
	modeBidi            = "bidi"
)

// readPlan decodes and checks the plan; errors name the call, step and field.
func readPlan(r io.Reader) (*Plan, error) {
	text, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("plan (stdin): %w", err)
	}
	// Unknown fields are ignored, as the C++ peer does: the version says
	// whether this client can run the plan.
	var plan Plan
	if err := json.Unmarshal(text, &plan); err != nil {
		return nil, fmt.Errorf("plan (stdin): %w", err)
	}
	if plan.Version != interfaceVersion {
		return nil, fmt.Errorf("plan (stdin): version %d, this client speaks %d", plan.Version, interfaceVersion)
	}
	if plan.TimeoutMs <= 0 {
		return nil, fmt.Errorf("plan (stdin): timeout_ms must be positive, got %d", plan.TimeoutMs)
	}
	for i := range plan.Calls {
		if err := checkCall(&plan.Calls[i]); err != nil {
			return nil, fmt.Errorf("plan (stdin): calls[%d] (%s): %w", i, plan.Calls[i].Method, err)
		}
	}
	return &plan, nil
}

// checkCall rejects what the interface rules out, so a run never has to guess.
func checkCall(call *PlanCall) error {
	switch call.Mode {
	case modeUnary, modeServerStreaming, modeClientStreaming, modeBidi:
	default:
		return fmt.Errorf("mode: unknown mode %q", call.Mode)
	}
	if call.Compression != nil && *call.Compression != "gzip" {
		return fmt.Errorf("compression: %q is not supported (grpc-go 1.33 ships gzip only)", *call.Compression)
	}
	for j, pair := range call.Metadata {
		if strings.HasSuffix(pair[0], "-bin") {
			if _, err := decodeBase64(pair[1]); err != nil {
				return fmt.Errorf("metadata[%d] (%s): not base64: %w", j, pair[0], err)
			}
		}
	}
	oneRequest := call.Mode == modeUnary || call.Mode == modeServerStreaming
	halfClosed := false
	for j, step := range call.Steps {
		switch step.Op {
		case "send", "send_many", "half_close":
			if halfClosed {
				return fmt.Errorf("steps[%d]: %s after half_close", j, step.Op)
			}
			halfClosed = step.Op == "half_close"
			if oneRequest && !(j == 0 && step.Op == "send") && !(j == 1 && step.Op == "half_close") {
				return fmt.Errorf("steps[%d]: a %s call starts with exactly one send then half_close, got %s here", j, call.Mode, step.Op)
			}
			if step.Op == "send" && len(step.Message) == 0 {
				return fmt.Errorf("steps[%d] (send): missing message", j)
			}
			if step.Op == "send_many" && (step.Count < 0 || len(step.Template) == 0) {
				return fmt.Errorf("steps[%d] (send_many): needs a count >= 0 and a template", j)
			}
		case "receive_headers", "receive", "receive_all", "cancel":
			if oneRequest && j < 2 {
				return fmt.Errorf("steps[%d]: a %s call starts with exactly one send then half_close, got %s here", j, call.Mode, step.Op)
			}
		case "pause":
			if step.Ms < 0 {
				return fmt.Errorf("steps[%d] (pause): ms must not be negative", j)
			}
		default:
			return fmt.Errorf("steps[%d]: unknown op %q", j, step.Op)
		}
	}
	if oneRequest && len(call.Steps) < 2 {
		return fmt.Errorf("steps: a %s call starts with exactly one send then half_close", call.Mode)
	}
	return nil
}

// decodeBase64 accepts padded and unpadded standard base64, as gRPC does.
func decodeBase64(text string) ([]byte, error) {
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(text, "="))
}
