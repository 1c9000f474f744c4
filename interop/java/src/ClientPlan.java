import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The plan grpc-conform writes on the client's stdin (docs/clients.md), read
 * strictly: an unknown field, a missing one or a value of the wrong type is an
 * error naming the field's path (e.g. {@code calls[0].steps[2].ms}).
 */
final class ClientPlan {
  /** The interface version this client speaks. */
  static final int VERSION = 1;

  /** A plan that cannot be run; the message names the field. */
  static final class Invalid extends Exception {
    Invalid(String message) {
      super(message);
    }
  }

  /** The four RPC modes. */
  enum Mode {
    UNARY,
    SERVER_STREAMING,
    CLIENT_STREAMING,
    BIDI;

    /** Unary and server streaming: the call is invoked at half_close. */
    boolean invokedAtHalfClose() {
      return this == UNARY || this == SERVER_STREAMING;
    }
  }

  /** The step kinds, named as the plan's {@code op}. */
  enum Op {
    SEND,
    SEND_MANY,
    HALF_CLOSE,
    RECEIVE_HEADERS,
    RECEIVE,
    RECEIVE_ALL,
    CANCEL,
    PAUSE
  }

  /** One step; the fields its op does not use are null or zero. */
  static final class Step {
    Op op;
    /** send: the message; send_many: the template (proto3 JSON). */
    JsonElement message;
    /** send_many: how many messages. */
    long count;
    /** pause: milliseconds. */
    long ms;
    /** send: the request built from {@code message} before any call starts. */
    com.google.protobuf.Message request;
  }

  /** One metadata entry; binary when the name ends in -bin (value decoded). */
  static final class Entry {
    String name;
    String text;
    byte[] bytes;
  }

  /** One planned call. */
  static final class Call {
    String method;
    Mode mode;
    final List<Entry> metadata = new ArrayList<>();
    /** Milliseconds, or null for no deadline. */
    Long deadlineMs;
    /** Request compression, or null for none. */
    String compression;
    final List<Step> steps = new ArrayList<>();
  }

  String fixture;
  String target;
  long timeoutMs;
  /** Null: grpc-java's default (no keepalive). */
  Long keepaliveTimeMs;
  Long keepaliveTimeoutMs;
  boolean keepaliveWithoutCalls;
  /** Null: grpc-java's default (4 MiB). */
  Long maxReceiveMessageBytes;
  boolean concurrent;
  final List<Call> calls = new ArrayList<>();

  private ClientPlan() {}

  static ClientPlan parse(String text) throws Invalid {
    JsonElement root;
    try {
      root = JsonParser.parseString(text);
    } catch (JsonParseException e) {
      throw new Invalid("not JSON: " + e.getMessage());
    }
    JsonObject o = object(root, "plan");
    only(o, "plan", "version", "fixture", "target", "timeout_ms", "channel", "concurrent", "calls");
    long version = number(o, "plan", "version", true);
    if (version != VERSION) {
      throw new Invalid("version: " + version + " is not the version this client speaks, " + VERSION);
    }
    ClientPlan plan = new ClientPlan();
    plan.fixture = string(o, "plan", "fixture", true);
    plan.target = string(o, "plan", "target", true);
    plan.timeoutMs = number(o, "plan", "timeout_ms", true);
    plan.concurrent = bool(o, "plan", "concurrent", false);
    JsonElement channel = o.get("channel");
    if (channel != null && !channel.isJsonNull()) {
      plan.readChannel(object(channel, "channel"));
    }
    JsonArray calls = array(o.get("calls"), "calls");
    for (int i = 0; i < calls.size(); i++) {
      plan.calls.add(readCall(object(calls.get(i), "calls[" + i + "]"), "calls[" + i + "]"));
    }
    return plan;
  }

  private void readChannel(JsonObject c) throws Invalid {
    only(c, "channel", "keepalive", "max_receive_message_bytes");
    JsonElement k = c.get("keepalive");
    if (k != null && !k.isJsonNull()) {
      JsonObject ko = object(k, "channel.keepalive");
      only(ko, "channel.keepalive", "time_ms", "timeout_ms", "permit_without_stream");
      keepaliveTimeMs = number(ko, "channel.keepalive", "time_ms", true);
      keepaliveTimeoutMs = number(ko, "channel.keepalive", "timeout_ms", true);
      keepaliveWithoutCalls = bool(ko, "channel.keepalive", "permit_without_stream", true);
    }
    if (present(c, "max_receive_message_bytes")) {
      maxReceiveMessageBytes = number(c, "channel", "max_receive_message_bytes", true);
    }
  }

  private static Call readCall(JsonObject o, String at) throws Invalid {
    only(o, at, "method", "mode", "metadata", "deadline_ms", "compression", "steps");
    Call call = new Call();
    call.method = string(o, at, "method", true);
    call.mode = enumValue(Mode.class, string(o, at, "mode", true), at + ".mode");
    if (present(o, "metadata")) {
      JsonArray pairs = array(o.get("metadata"), at + ".metadata");
      for (int i = 0; i < pairs.size(); i++) {
        call.metadata.add(readEntry(pairs.get(i), at + ".metadata[" + i + "]"));
      }
    }
    call.deadlineMs = present(o, "deadline_ms") ? number(o, at, "deadline_ms", true) : null;
    call.compression = present(o, "compression") ? string(o, at, "compression", true) : null;
    JsonArray steps = array(o.get("steps"), at + ".steps");
    for (int i = 0; i < steps.size(); i++) {
      String stepAt = at + ".steps[" + i + "]";
      call.steps.add(readStep(object(steps.get(i), stepAt), stepAt));
    }
    checkInvocation(call, at);
    return call;
  }

  private static Entry readEntry(JsonElement e, String at) throws Invalid {
    JsonArray pair = array(e, at);
    if (pair.size() != 2 || !isString(pair.get(0)) || !isString(pair.get(1))) {
      throw new Invalid(at + ": expected [name, value], two strings");
    }
    Entry entry = new Entry();
    entry.name = pair.get(0).getAsString();
    entry.text = pair.get(1).getAsString();
    if (entry.name.endsWith("-bin")) {
      try {
        entry.bytes = Base64.getDecoder().decode(entry.text);
      } catch (IllegalArgumentException bad) {
        throw new Invalid(at + ": the value of " + entry.name + " is not base64: " + bad.getMessage());
      }
    }
    return entry;
  }

  private static Step readStep(JsonObject o, String at) throws Invalid {
    Step step = new Step();
    step.op = enumValue(Op.class, string(o, at, "op", true), at + ".op");
    switch (step.op) {
      case SEND:
        only(o, at, "op", "message");
        step.message = required(o, at, "message");
        break;
      case SEND_MANY:
        only(o, at, "op", "count", "template");
        step.count = number(o, at, "count", true);
        step.message = required(o, at, "template");
        break;
      case PAUSE:
        only(o, at, "op", "ms");
        step.ms = number(o, at, "ms", true);
        break;
      case HALF_CLOSE:
      case RECEIVE_HEADERS:
      case RECEIVE:
      case RECEIVE_ALL:
      case CANCEL:
        only(o, at, "op");
        break;
    }
    return step;
  }

  /** Unary and server streaming calls start with one send, then half_close. */
  private static void checkInvocation(Call call, String at) throws Invalid {
    if (!call.mode.invokedAtHalfClose()) {
      return;
    }
    int sends = 0;
    for (int i = 0; i < call.steps.size(); i++) {
      Op op = call.steps.get(i).op;
      if (op == Op.HALF_CLOSE) {
        if (sends == 1) {
          return;
        }
        break;
      }
      if (op == Op.SEND) {
        sends++;
      } else if (op != Op.PAUSE) {
        throw new Invalid(
            at + ".steps[" + i + "]: a " + lower(call.mode) + " call starts with one send then"
                + " half_close, not " + lower(op));
      }
    }
    throw new Invalid(at + ".steps: a " + lower(call.mode) + " call starts with one send then half_close");
  }

  static String lower(Enum<?> e) {
    return e.name().toLowerCase(java.util.Locale.ROOT);
  }

  private static <E extends Enum<E>> E enumValue(Class<E> type, String text, String at)
      throws Invalid {
    for (E e : type.getEnumConstants()) {
      if (lower(e).equals(text)) {
        return e;
      }
    }
    List<String> names = new ArrayList<>();
    for (E e : type.getEnumConstants()) {
      names.add(lower(e));
    }
    throw new Invalid(at + ": unknown value \"" + text + "\", expected one of " + names);
  }

  private static void only(JsonObject o, String at, String... fields) throws Invalid {
    Set<String> allowed = Set.of(fields);
    for (Map.Entry<String, JsonElement> e : o.entrySet()) {
      if (!allowed.contains(e.getKey())) {
        throw new Invalid(at + "." + e.getKey() + ": unknown field");
      }
    }
  }

  private static boolean present(JsonObject o, String field) {
    JsonElement e = o.get(field);
    return e != null && !e.isJsonNull();
  }

  private static JsonElement required(JsonObject o, String at, String field) throws Invalid {
    if (!present(o, field)) {
      throw new Invalid(at + "." + field + ": missing");
    }
    return o.get(field);
  }

  private static JsonObject object(JsonElement e, String at) throws Invalid {
    if (e == null || !e.isJsonObject()) {
      throw new Invalid(at + ": expected an object");
    }
    return e.getAsJsonObject();
  }

  private static JsonArray array(JsonElement e, String at) throws Invalid {
    if (e == null || !e.isJsonArray()) {
      throw new Invalid(at + ": expected an array");
    }
    return e.getAsJsonArray();
  }

  private static boolean isString(JsonElement e) {
    return e.isJsonPrimitive() && e.getAsJsonPrimitive().isString();
  }

  private static String string(JsonObject o, String at, String field, boolean needed)
      throws Invalid {
    if (!present(o, field) && !needed) {
      return null;
    }
    JsonElement e = required(o, at, field);
    if (!isString(e)) {
      throw new Invalid(at + "." + field + ": expected a string");
    }
    return e.getAsString();
  }

  private static long number(JsonObject o, String at, String field, boolean needed)
      throws Invalid {
    if (!present(o, field) && !needed) {
      return 0;
    }
    JsonElement e = required(o, at, field);
    if (e.isJsonPrimitive() && e.getAsJsonPrimitive().isNumber()) {
      try {
        long n = new java.math.BigDecimal(e.getAsString()).longValueExact();
        if (n >= 0) {
          return n;
        }
      } catch (ArithmeticException | NumberFormatException notWhole) {
        // Falls through to the error below.
      }
    }
    throw new Invalid(at + "." + field + ": expected a whole number >= 0, got " + e);
  }

  private static boolean bool(JsonObject o, String at, String field, boolean needed)
      throws Invalid {
    if (!present(o, field) && !needed) {
      return false;
    }
    JsonElement e = required(o, at, field);
    if (!(e.isJsonPrimitive() && ((JsonPrimitive) e).isBoolean())) {
      throw new Invalid(at + "." + field + ": expected true or false");
    }
    return e.getAsBoolean();
  }
}
