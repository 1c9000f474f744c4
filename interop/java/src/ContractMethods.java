import com.google.gson.JsonElement;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import com.google.protobuf.Empty;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.util.JsonFormat;
import io.grpc.MethodDescriptor;
import io.grpc.ServiceDescriptor;
import io.grpc.protobuf.ProtoUtils;
import java.util.HashMap;
import java.util.Map;

/**
 * The contract's methods as grpc-java's generated code describes them, and
 * their messages to and from proto3 JSON with protobuf-java-util's JsonFormat.
 */
final class ContractMethods {
  private static final Map<String, MethodDescriptor<?, ?>> BY_NAME = new HashMap<>();

  static {
    for (ServiceDescriptor service :
        new ServiceDescriptor[] {
          GreeterGrpc.getServiceDescriptor(),
          ChatServiceGrpc.getServiceDescriptor(),
          SensorServiceGrpc.getServiceDescriptor(),
          conform.v1.ObserverGrpc.getServiceDescriptor()
        }) {
      for (MethodDescriptor<?, ?> method : service.getMethods()) {
        BY_NAME.put("/" + method.getFullMethodName(), method);
      }
    }
  }

  /** Field names as in the .proto, as the plan writes them; no whitespace. */
  private static final JsonFormat.Printer PRINTER =
      JsonFormat.printer().preservingProtoFieldNames().omittingInsignificantWhitespace();

  private static final JsonFormat.Parser PARSER = JsonFormat.parser();

  private ContractMethods() {}

  /**
   * The method called {@code path} ("/Service/Method") with the plan's mode.
   * A method the protos do not declare is called with google.protobuf.Empty
   * both ways, so a plan can still call it with {@code {}} (the server's
   * answer, e.g. UNIMPLEMENTED, is what matters then).
   */
  @SuppressWarnings("unchecked")
  static MethodDescriptor<Message, Message> find(String path, ClientPlan.Mode mode) {
    MethodDescriptor<Message, Message> known = (MethodDescriptor<Message, Message>) BY_NAME.get(path);
    MethodDescriptor.Builder<Message, Message> builder;
    if (known != null) {
      builder = known.toBuilder();
    } else {
      MethodDescriptor.Marshaller<Message> empty =
          (MethodDescriptor.Marshaller<Message>)
              (MethodDescriptor.Marshaller<?>) ProtoUtils.marshaller(Empty.getDefaultInstance());
      builder =
          MethodDescriptor.<Message, Message>newBuilder()
              .setFullMethodName(path.startsWith("/") ? path.substring(1) : path)
              .setRequestMarshaller(empty)
              .setResponseMarshaller(empty);
    }
    return builder.setType(type(mode)).build();
  }

  private static MethodDescriptor.MethodType type(ClientPlan.Mode mode) {
    switch (mode) {
      case UNARY:
        return MethodDescriptor.MethodType.UNARY;
      case SERVER_STREAMING:
        return MethodDescriptor.MethodType.SERVER_STREAMING;
      case CLIENT_STREAMING:
        return MethodDescriptor.MethodType.CLIENT_STREAMING;
      case BIDI:
        return MethodDescriptor.MethodType.BIDI_STREAMING;
    }
    throw new AssertionError(mode);
  }

  /** The request type's message built from proto3 JSON. */
  static Message request(MethodDescriptor<Message, Message> method, JsonElement json)
      throws InvalidProtocolBufferException {
    MethodDescriptor.PrototypeMarshaller<Message> marshaller =
        (MethodDescriptor.PrototypeMarshaller<Message>) method.getRequestMarshaller();
    Message.Builder builder = marshaller.getMessagePrototype().newBuilderForType();
    PARSER.merge(json.toString(), builder);
    return builder.build();
  }

  /** A response as proto3 JSON (defaults omitted, int64 as strings). */
  static JsonElement json(Message message) {
    try {
      return JsonParser.parseString(PRINTER.print(message));
    } catch (InvalidProtocolBufferException cannotHappen) {
      // Only Any fields with unknown types fail to print; the protos have none.
      throw new IllegalStateException(cannotHappen);
    }
  }

  /** {@code template} with every "{i}" in its string values replaced by {@code i}. */
  static JsonElement numbered(JsonElement template, long i) {
    if (template.isJsonPrimitive() && template.getAsJsonPrimitive().isString()) {
      return new JsonPrimitive(template.getAsString().replace("{i}", Long.toString(i)));
    }
    JsonElement copy = template.deepCopy();
    if (copy.isJsonObject()) {
      for (Map.Entry<String, JsonElement> e : copy.getAsJsonObject().entrySet()) {
        e.setValue(numbered(e.getValue(), i));
      }
    } else if (copy.isJsonArray()) {
      for (int k = 0; k < copy.getAsJsonArray().size(); k++) {
        copy.getAsJsonArray().set(k, numbered(copy.getAsJsonArray().get(k), i));
      }
    }
    return copy;
  }
}
