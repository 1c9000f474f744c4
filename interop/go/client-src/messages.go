package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	// Registers the contract's generated types with the protobuf registry.
	_ "conform/pb"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// method is what a call needs of its method: the generated request and
// response types, found by name in the registry the generated code fills.
type method struct {
	input  protoreflect.MessageType
	output protoreflect.MessageType
}

// lookupMethod resolves "/Service/Method" (the service's full proto name).
func lookupMethod(path string) (*method, error) {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(parts) != 2 || !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("method %q is not /Service/Method", path)
	}
	desc, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(parts[0]))
	if err != nil {
		return nil, fmt.Errorf("method %q: no service %s in the contract's protos", path, parts[0])
	}
	service, ok := desc.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, fmt.Errorf("method %q: %s is not a service", path, parts[0])
	}
	md := service.Methods().ByName(protoreflect.Name(parts[1]))
	if md == nil {
		return nil, fmt.Errorf("method %q: service %s has no method %s", path, parts[0], parts[1])
	}
	input, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
	if err != nil {
		return nil, fmt.Errorf("method %q: input type: %w", path, err)
	}
	output, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	if err != nil {
		return nil, fmt.Errorf("method %q: output type: %w", path, err)
	}
	return &method{input: input, output: output}, nil
}

// request builds a request of the method's input type from proto3 JSON.
func (m *method) request(text []byte) (protoreflect.ProtoMessage, error) {
	msg := m.input.New().Interface()
	if err := protojson.Unmarshal(text, msg); err != nil {
		return nil, fmt.Errorf("message %s for %s: %w", text, m.input.Descriptor().FullName(), err)
	}
	return msg, nil
}

// responseJSON renders a response as canonical proto3 JSON, compacted
// (protojson varies its whitespace on purpose).
func responseJSON(msg protoreflect.ProtoMessage) (json.RawMessage, error) {
	text, err := protojson.Marshal(msg)
	if err != nil {
		return nil, err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, text); err != nil {
		return nil, err
	}
	return compact.Bytes(), nil
}

// expandTemplate returns the send_many template with every "{i}" in a string
// value replaced by n.
func expandTemplate(template json.RawMessage, n int) ([]byte, error) {
	var value interface{}
	decoder := json.NewDecoder(strings.NewReader(string(template)))
	decoder.UseNumber() // keeps int64 values exact
	if err := decoder.Decode(&value); err != nil {
		return nil, fmt.Errorf("send_many template: %w", err)
	}
	return json.Marshal(replaceIndex(value, strconv.Itoa(n)))
}

func replaceIndex(value interface{}, n string) interface{} {
	switch v := value.(type) {
	case string:
		return strings.ReplaceAll(v, "{i}", n)
	case map[string]interface{}:
		for key, inner := range v {
			v[key] = replaceIndex(inner, n)
		}
		return v
	case []interface{}:
		for i, inner := range v {
			v[i] = replaceIndex(inner, n)
		}
		return v
	default:
		return v
	}
}
