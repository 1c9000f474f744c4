import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ForwardingClientCall;
import io.grpc.ForwardingClientCallListener;
import io.grpc.InternalMetadata;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.ClientResponseObserver;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * One planned call on grpc-java's async stub API (io.grpc.stub.ClientCalls with
 * a ClientResponseObserver and manual flow control), so each step is one API
 * operation: send is onNext, half_close is onCompleted, cancel is cancel,
 * receive is request(1) and the response observer's onNext or onError or
 * onCompleted. Unary and server streaming calls are invoked at half_close
 * (asyncUnaryCall, asyncServerStreamingCall: start, request, half-close at
 * once); streaming-request calls start before their first step. Every wait
 * ends at the plan's end ({@code endNanos}); a call still open then is
 * cancelled.
 */
final class PlannedCall implements Runnable {
  /** The text of a cancel step, which grpc-java makes the CANCELLED status's message. */
  static final String CANCEL_MESSAGE = "cancelled by the application";

  /** How long grpc-java gets to close a call this client cancelled. */
  private static final long CLOSE_GRACE_NANOS = TimeUnit.SECONDS.toNanos(1);

  /** Responses kept per call; more cancel the call (a bound, never reached by fixtures). */
  private static final int MAX_MESSAGES = 100_000;

  /** Request bytes a call may queue beyond grpc-java's readiness before a send waits for it. */
  private static final long MAX_UNREADY_BYTES = 16L * 1024 * 1024;

  private final int index;
  private final ClientPlan.Call plan;
  private final Channel channel;
  private final long endNanos;
  private final MethodDescriptor<Message, Message> method;

  // Touched by the step thread only.
  /** The request side of the call, from the stub's beforeStart; null until the call starts. */
  private volatile ClientCallStreamObserver<Message> call;
  private Message pendingRequest;
  /** receive_all: the response observer asks for the next message as each arrives. */
  private volatile boolean draining;
  /** A receive found the call over: the remaining steps but pauses are skipped. */
  private boolean ended;
  /** Request bytes sent since grpc-java last said the stream was ready. */
  private long sentWhileUnready;

  // What grpc-java's listener delivered, guarded by this.
  private Metadata headers;
  private final List<JsonElement> messages = new ArrayList<>();
  private int taken;
  private Status status;
  private Metadata trailers;

  PlannedCall(int index, ClientPlan.Call plan, Channel channel, long endNanos) {
    this.index = index;
    this.plan = plan;
    this.channel = channel;
    this.endNanos = endNanos;
    this.method = ContractMethods.find(plan.method, plan.mode);
  }

  @Override
  public void run() {
    try {
      if (!plan.mode.invokedAtHalfClose()) {
        start(null);
      }
      for (int i = 0; i < plan.steps.size(); i++) {
        ClientPlan.Step step = plan.steps.get(i);
        if (ended && step.op != ClientPlan.Op.PAUSE) {
          log("skips step " + i + " (" + ClientPlan.lower(step.op) + "): the call is over");
          continue;
        }
        log("step " + i + ": " + ClientPlan.lower(step.op));
        boolean inTime;
        try {
          inTime = step(step);
        } catch (IllegalStateException refused) {
          // E.g. a send after cancel: grpc-java refuses it and the call goes on.
          log("grpc-java refused step " + i + ": " + refused);
          continue;
        }
        if (!inTime) {
          timeUp("step " + i + " (" + ClientPlan.lower(step.op) + ")");
          return;
        }
      }
      if (call != null && !awaitClose()) {
        timeUp("the drain after the last step");
      }
    } catch (IllegalArgumentException | InvalidProtocolBufferException e) {
      // Refused by grpc-java before the call could go on (e.g. a metadata name
      // it rejects): the call ends with the status grpc-java derives from it.
      log("grpc-java refused: " + e);
      if (call != null) {
        call.cancel("the client could not go on: " + e, e);
        awaitUntil(this::closed, System.nanoTime() + CLOSE_GRACE_NANOS);
      }
      synchronized (this) {
        if (status == null) {
          status = Status.fromThrowable(e);
        }
      }
    }
  }

  /** Runs one step; false when the plan's time ran out during it. */
  private boolean step(ClientPlan.Step step) throws InvalidProtocolBufferException {
    switch (step.op) {
      case SEND:
        return send(step.request);
      case SEND_MANY:
        for (long i = 1; i <= step.count; i++) {
          if (!send(ContractMethods.request(method, ContractMethods.numbered(step.message, i)))) {
            return false;
          }
        }
        return true;
      case HALF_CLOSE:
        if (call == null) {
          start(pendingRequest);
        } else {
          call.onCompleted();
        }
        return true;
      case RECEIVE_HEADERS:
        return awaitUntil(() -> headers != null || status != null, endNanos);
      case RECEIVE:
        return receiveOne();
      case RECEIVE_ALL:
        return awaitClose();
      case CANCEL:
        call.cancel(CANCEL_MESSAGE, null);
        return true;
      case PAUSE:
        long left = endNanos - System.nanoTime();
        long nanos = Math.min(TimeUnit.MILLISECONDS.toNanos(step.ms), left);
        if (nanos > 0) {
          sleep(nanos);
        }
        return step.ms == 0 || nanos >= TimeUnit.MILLISECONDS.toNanos(step.ms);
    }
    throw new AssertionError(step.op);
  }

  /**
   * Starts the call through the stub API of its mode; {@code request} is the
   * one request of unary and server streaming calls, else null.
   */
  private void start(Message request) {
    Metadata metadata = new Metadata();
    for (ClientPlan.Entry e : plan.metadata) {
      if (e.bytes != null) {
        metadata.put(Metadata.Key.of(e.name, Metadata.BINARY_BYTE_MARSHALLER), e.bytes);
      } else {
        metadata.put(Metadata.Key.of(e.name, Metadata.ASCII_STRING_MARSHALLER), e.text);
      }
    }
    // The deadline counts from here, just before grpc-java starts the call.
    CallOptions options = CallOptions.DEFAULT;
    if (plan.deadlineMs != null) {
      options = options.withDeadlineAfter(plan.deadlineMs, TimeUnit.MILLISECONDS);
    }
    if (plan.compression != null) {
      options = options.withCompression(plan.compression);
    }
    ClientCall<Message, Message> recorded =
        new RecordedCall(channel.newCall(method, options), metadata);
    Responses responses = new Responses();
    switch (plan.mode) {
      case UNARY:
        ClientCalls.asyncUnaryCall(recorded, request, responses);
        break;
      case SERVER_STREAMING:
        ClientCalls.asyncServerStreamingCall(recorded, request, responses);
        break;
      case CLIENT_STREAMING:
        ClientCalls.asyncClientStreamingCall(recorded, responses);
        break;
      case BIDI:
        ClientCalls.asyncBidiStreamingCall(recorded, responses);
        break;
    }
  }

  /**
   * Unary and server streaming: keeps the request for half_close. Streaming
   * requests: onNext at once, as an application that ignores isReady()
   * does (most do), so a call the server has already finished takes the
   * message as grpc-java does (drops it). Only when more than
   * MAX_UNREADY_BYTES went out while grpc-java said the stream was not ready
   * does the send wait for onReady, so a long send_many stays bounded.
   */
  private boolean send(Message request) {
    if (call == null) {
      pendingRequest = request;
      return true;
    }
    if (call.isReady()) {
      sentWhileUnready = 0;
    } else if (sentWhileUnready >= MAX_UNREADY_BYTES) {
      if (!awaitUntil(() -> call.isReady() || status != null, endNanos)) {
        return false;
      }
      sentWhileUnready = 0;
    } else {
      sentWhileUnready += request.getSerializedSize();
    }
    call.onNext(request);
    return true;
  }

  private boolean receiveOne() {
    call.request(1);
    if (!awaitUntil(() -> messages.size() > taken || status != null, endNanos)) {
      return false;
    }
    synchronized (this) {
      if (messages.size() > taken) {
        taken++;
      } else {
        ended = true;
      }
    }
    return true;
  }

  /**
   * Reads every remaining response and the status: one request(1) here, then
   * one more from the response observer as each message arrives (what the
   * stub's automatic flow control does).
   */
  private boolean awaitClose() {
    if (!closed()) {
      draining = true;
      call.request(1);
      if (!awaitUntil(() -> status != null, endNanos)) {
        return false;
      }
    }
    synchronized (this) {
      taken = messages.size();
    }
    return true;
  }

  /** The plan's time is over: cancel the call and give grpc-java a moment to close it. */
  private void timeUp(String during) {
    String why = "the plan's timeout_ms elapsed during " + during;
    log(why + "; cancelling");
    if (call != null) {
      call.cancel(why, null);
      awaitUntil(this::closed, System.nanoTime() + CLOSE_GRACE_NANOS);
    }
    synchronized (this) {
      if (status == null) {
        status = Status.DEADLINE_EXCEEDED.withDescription(why);
      }
    }
  }

  private synchronized boolean closed() {
    return status != null;
  }

  /** Waits until {@code done} (checked under this lock) or {@code until}; false on time out. */
  private synchronized boolean awaitUntil(BooleanSupplier done, long until) {
    while (!done.getAsBoolean()) {
      long left = until - System.nanoTime();
      if (left <= 0) {
        return false;
      }
      try {
        TimeUnit.NANOSECONDS.timedWait(this, left);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return false;
      }
    }
    return true;
  }

  private static void sleep(long nanos) {
    try {
      TimeUnit.NANOSECONDS.sleep(nanos);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private void log(String what) {
    PeerClient.log("call " + index + " " + plan.method + ": " + what);
  }

  /** What grpc-java delivered, as the report's call entry. */
  synchronized JsonObject result() {
    JsonObject o = new JsonObject();
    o.add("headers", headers == null ? JsonNull.INSTANCE : pairs(headers));
    JsonArray received = new JsonArray();
    messages.forEach(received::add);
    o.add("messages", received);
    o.add("trailers", trailers == null ? new JsonArray() : pairs(trailers));
    Status s = status != null ? status : Status.UNKNOWN.withDescription("grpc-java never closed the call");
    JsonObject st = new JsonObject();
    st.addProperty("code", s.getCode().value());
    st.addProperty("message", s.getDescription() == null ? "" : s.getDescription());
    o.add("status", st);
    o.add("error", s.isOk() ? JsonNull.INSTANCE : new com.google.gson.JsonPrimitive(errorText(s)));
    return o;
  }

  /** The StatusRuntimeException grpc-java's stubs would throw, with its causes. */
  private String errorText(Status s) {
    StringBuilder text = new StringBuilder(s.asRuntimeException(trailers).toString());
    for (Throwable c = s.getCause(); c != null; c = c.getCause()) {
      text.append(" (caused by ").append(c).append(')');
    }
    return text.toString();
  }

  /**
   * Metadata as [name, value] pairs in the order they came; -bin values base64.
   * Metadata.keys() is a HashSet, so the order comes from InternalMetadata's
   * serialized form (names and values as grpc-java holds them, -bin decoded).
   */
  private static JsonArray pairs(Metadata metadata) {
    JsonArray out = new JsonArray();
    byte[][] serialized = InternalMetadata.serialize(metadata);
    for (int i = 0; i + 1 < serialized.length; i += 2) {
      String name = new String(serialized[i], StandardCharsets.US_ASCII);
      byte[] value = serialized[i + 1];
      JsonArray pair = new JsonArray();
      pair.add(name);
      pair.add(
          name.endsWith(Metadata.BINARY_HEADER_SUFFIX)
              ? Base64.getEncoder().encodeToString(value)
              : new String(value, StandardCharsets.US_ASCII));
      out.add(pair);
    }
    return out;
  }

  /**
   * The call as the stub drives it, with the plan's metadata attached and the
   * response headers and trailers recorded on their way to the stub (what
   * MetadataUtils' attach and capture interceptors do).
   */
  private final class RecordedCall extends ForwardingClientCall.SimpleForwardingClientCall<Message, Message> {
    private final Metadata planned;

    RecordedCall(ClientCall<Message, Message> call, Metadata planned) {
      super(call);
      this.planned = planned;
    }

    @Override
    public void start(Listener<Message> listener, Metadata requestHeaders) {
      requestHeaders.merge(planned);
      super.start(
          new ForwardingClientCallListener.SimpleForwardingClientCallListener<Message>(listener) {
            @Override
            public void onHeaders(Metadata h) {
              synchronized (PlannedCall.this) {
                headers = h;
                PlannedCall.this.notifyAll();
              }
              super.onHeaders(h);
            }

            @Override
            public void onClose(Status s, Metadata t) {
              synchronized (PlannedCall.this) {
                trailers = t;
              }
              log("closed on the wire: " + describe(s));
              super.onClose(s, t);
            }
          },
          requestHeaders);
    }
  }

  /** The application's side: what the stub hands it, on grpc-java's call executor. */
  private final class Responses implements ClientResponseObserver<Message, Message> {
    @Override
    public void beforeStart(ClientCallStreamObserver<Message> requests) {
      requests.disableAutoRequestWithInitial(0);
      requests.setOnReadyHandler(
          () -> {
            synchronized (PlannedCall.this) {
              PlannedCall.this.notifyAll();
            }
          });
      call = requests;
    }

    @Override
    public void onNext(Message m) {
      JsonElement json = ContractMethods.json(m);
      boolean full;
      synchronized (PlannedCall.this) {
        messages.add(json);
        full = messages.size() >= MAX_MESSAGES;
        PlannedCall.this.notifyAll();
      }
      if (full) {
        call.cancel("the client keeps at most " + MAX_MESSAGES + " responses a call", null);
      } else if (draining) {
        call.request(1);
      }
    }

    @Override
    public void onError(Throwable t) {
      Status s = Status.fromThrowable(t);
      end(s, Status.trailersFromThrowable(t));
    }

    @Override
    public void onCompleted() {
      end(Status.OK, null);
    }

    private void end(Status s, Metadata t) {
      synchronized (PlannedCall.this) {
        status = s;
        if (trailers == null) {
          trailers = t;
        }
        PlannedCall.this.notifyAll();
      }
      log("the application got: " + describe(s));
    }
  }

  private static String describe(Status s) {
    return s.getCode() + (s.getDescription() == null ? "" : " " + s.getDescription());
  }
}
