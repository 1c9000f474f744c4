import conform.v1.ObserverOuterClass.Outcome;
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * One call as the contract scripts it: the control headers of CONTRACT.md
 * section 3 applied around the body's reads and writes, and the CallRecord kept
 * up to date (section 4).
 *
 * <p>Bodies are plain blocking code on a thread of their own: grpc-java runs a
 * call's callbacks (messages, half-close, cancel) one at a time on a serializing
 * executor, so a body that slept there would hold back its own cancellation.
 * Requests are asked for one at a time (disableAutoRequest + request(1)), so
 * requests_received is what the body read and close-after-requests reads no
 * further.
 */
final class ContractCall<Q, R> {
  /** A body that produces the one response of a unary-response method. */
  interface UnaryBody<Q, R> {
    R run(ContractCall<Q, R> call, Q request) throws Exception;
  }

  /** A body that writes its responses through call.write. */
  interface StreamBody<Q, R> {
    void run(ContractCall<Q, R> call, Q request) throws Exception;
  }

  /** Ends the call with a status of the body's own. */
  static final class Fail extends Exception {
    final int code;

    /** The x-conform-fail-after status, which carries the scripted details. */
    final boolean scripted;

    Fail(int code, String message) {
      this(code, message, false);
    }

    Fail(int code, String message, boolean scripted) {
      super(message);
      this.code = code;
      this.scripted = scripted;
    }
  }

  /** The call was reset or ran out of time; the body stops at its next step. */
  static final class Cancelled extends Exception {}

  private static final Object END = new Object();
  private static final Object CANCEL = new Object();
  /** How often blocked reads and writes look at the cancel flag. */
  private static final long POLL_MS = 100;

  private static final ExecutorService BODIES =
      Executors.newCachedThreadPool(
          r -> {
            Thread t = new Thread(r, "contract-body");
            t.setDaemon(true);
            return t;
          });

  final CallRegistry.CallState state;
  /** The request headers whose names start with "x-". */
  private final Map<String, String> x;
  private final ServerCallStreamObserver<R> out;
  private final Deadline deadline;
  // The control headers, set by parseControl on the body's thread.
  Integer responseCount;
  private long intervalMs;
  private long delayMs;
  private Integer failAfter;
  private int failCode = Status.Code.UNKNOWN.value();
  private String failMessage = "";
  /** x-conform-response-size, or null. */
  Long responseSize;
  /** x-conform-fail-details-bin, base64-decoded by grpc-java, or null. */
  private byte[] failDetails;
  /** The request headers. */
  private final Metadata requestHeaders;
  /** Largest x-conform-response-size, as the reference bounds it (16 MiB). */
  private static final long MAX_RESPONSE_SIZE = 16L * 1024 * 1024;
  /** grpc-status-details-bin, which grpc-java lets a server set in its trailers. */
  private static final Metadata.Key<byte[]> STATUS_DETAILS =
      Metadata.Key.of("grpc-status-details-bin", Metadata.BINARY_BYTE_MARSHALLER);
  private Integer closeAfter;
  private final LinkedBlockingQueue<Object> inbox = new LinkedBlockingQueue<>();
  private final Object readiness = new Object();
  private volatile boolean cancelled;
  private boolean unaryPrepared;

  private ContractCall(CallRegistry registry, String method, StreamObserver<R> observer) {
    Metadata headers = ConformInterceptor.HEADERS.get();
    if (headers == null) {
      headers = new Metadata();
    }
    x = CallRegistry.xHeaders(headers);
    requestHeaders = headers;
    deadline = Context.current().getDeadline();
    String encoding =
        headers.get(Metadata.Key.of("grpc-encoding", Metadata.ASCII_STRING_MARSHALLER));
    state =
        registry.open(
            method,
            x,
            encoding == null || encoding.equals("identity") ? "" : encoding,
            timeoutMs(
                headers.get(Metadata.Key.of("grpc-timeout", Metadata.ASCII_STRING_MARSHALLER)),
                deadline));
    out = (ServerCallStreamObserver<R>) observer;
    out.setOnCancelHandler(this::onCancel);
    out.setOnReadyHandler(
        () -> {
          synchronized (readiness) {
            readiness.notifyAll();
          }
        });
  }

  /**
   * The deadline in ms, 0 when none: the request's grpc-timeout, which
   * grpc-java leaves in the Metadata, rounded up to whole ms as the reference
   * does. Without a readable header (never with grpc-java 1.41), the time left
   * on the Context deadline, rounded to the nearest 10 ms.
   */
  private static long timeoutMs(String header, Deadline deadline) {
    if (header != null && header.matches("[0-9]{1,8}[HMSmun]")) {
      long value = Long.parseLong(header.substring(0, header.length() - 1));
      switch (header.charAt(header.length() - 1)) {
        case 'H':
          return value * 3_600_000L;
        case 'M':
          return value * 60_000L;
        case 'S':
          return value * 1000L;
        case 'm':
          return value;
        case 'u':
          return (value + 999) / 1000;
        default:
          return (value + 999_999) / 1_000_000;
      }
    }
    if (deadline == null) {
      return 0;
    }
    long left = deadline.timeRemaining(TimeUnit.MICROSECONDS);
    if (left <= 0) {
      return 0;
    }
    return left < 5000 ? (left + 999) / 1000 : Math.round(left / 10000.0) * 10;
  }

  /** Longest pause a header may ask for, as the reference bounds it. */
  private static final long MAX_PAUSE_MS = 600_000;

  private static Fail controlError(String name, String value, String reason) {
    return new Fail(
        Status.Code.INVALID_ARGUMENT.value(),
        "control header " + name + ": " + reason + " (got " + quoted(value) + ")");
  }

  /** A value quoted as the reference shows it in its messages. */
  static String quoted(String value) {
    return "\"" + value.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
  }

  /**
   * A control header holding a decimal u32 (spaces around tolerated); null when
   * absent. Malformed is INVALID_ARGUMENT naming the header, as the reference
   * answers, so a fixture's typo never passes as "absent".
   */
  private Long number(String name) throws Fail {
    String v = x.get(name);
    if (v == null) {
      return null;
    }
    String t = v.trim();
    if (!t.matches("[0-9]{1,10}") || Long.parseLong(t) > 4294967295L) {
      throw controlError(name, v, "expected a decimal integer from 0 to 4294967295");
    }
    return Long.parseLong(t);
  }

  private long pause(String name) throws Fail {
    Long ms = number(name);
    if (ms != null && ms > MAX_PAUSE_MS) {
      throw controlError(name, x.get(name), "pauses above 600000 ms are refused");
    }
    return ms == null ? 0 : ms;
  }

  private static Integer small(Long v) {
    return v == null ? null : (int) Math.min(v, Integer.MAX_VALUE);
  }

  /**
   * Lenient percent-decoding, as the reference does: a % not followed by two
   * hex digits stays as it is, so plain text may be sent as it is.
   */
  private static String percentDecode(String value) throws CharacterCodingException {
    byte[] raw = value.getBytes(StandardCharsets.ISO_8859_1);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (int i = 0; i < raw.length; i++) {
      if (raw[i] == '%' && i + 2 < raw.length && hex(raw[i + 1]) >= 0 && hex(raw[i + 2]) >= 0) {
        out.write(hex(raw[i + 1]) * 16 + hex(raw[i + 2]));
        i += 2;
      } else {
        out.write(raw[i]);
      }
    }
    return StandardCharsets.UTF_8
        .newDecoder()
        .onMalformedInput(CodingErrorAction.REPORT)
        .decode(ByteBuffer.wrap(out.toByteArray()))
        .toString();
  }

  private static int hex(byte b) {
    return Character.digit((char) b, 16);
  }

  /** The handler-side control headers; fail-code and fail-message only with fail-after. */
  private void parseControl() throws Fail {
    responseCount = small(number("x-conform-response-count"));
    intervalMs = pause("x-conform-response-interval-ms");
    delayMs = pause("x-conform-delay-ms");
    failAfter = small(number("x-conform-fail-after"));
    if (failAfter != null) {
      Long code = number("x-conform-fail-code");
      if (code != null && code > 16) {
        throw controlError(
            "x-conform-fail-code",
            x.get("x-conform-fail-code"),
            "expected a gRPC status code from 0 to 16");
      }
      failCode = code == null ? Status.Code.UNKNOWN.value() : code.intValue();
      String message = x.getOrDefault("x-conform-fail-message", "");
      try {
        failMessage = percentDecode(message);
      } catch (CharacterCodingException e) {
        throw controlError("x-conform-fail-message", message, "percent-decodes to invalid UTF-8");
      }
    }
    closeAfter = small(number("x-conform-close-after-requests"));
    responseSize = number("x-conform-response-size");
    if (responseSize != null && responseSize > MAX_RESPONSE_SIZE) {
      throw controlError(
          "x-conform-response-size",
          x.get("x-conform-response-size"),
          "sizes above 16777216 bytes are refused");
    }
    if (failAfter != null) {
      failDetails =
          requestHeaders.get(
              Metadata.Key.of("x-conform-fail-details-bin", Metadata.BINARY_BYTE_MARSHALLER));
    }
  }

  /** text padded at its end with x to x-conform-response-size UTF-8 bytes. */
  String pad(String text) {
    if (responseSize == null) {
      return text;
    }
    long missing = responseSize - text.getBytes(StandardCharsets.UTF_8).length;
    return missing > 0 ? text + "x".repeat((int) missing) : text;
  }

  /** fail-after 0: the scripted status after delay-ms, before any request is read. */
  void failAtStart() throws Fail, Cancelled, InterruptedException {
    if (failAfter != null && failAfter == 0) {
      sleep(delayMs);
      throw new Fail(failCode, failMessage, true);
    }
  }

  /** Sleeps ms, waking early (Cancelled) when the call is reset. */
  private void sleep(long ms) throws Cancelled, InterruptedException {
    long end = System.nanoTime() + ms * 1_000_000L;
    while (!cancelled && System.nanoTime() < end) {
      Thread.sleep(Math.max(1, Math.min(POLL_MS, (end - System.nanoTime()) / 1_000_000L)));
    }
    if (cancelled) {
      throw new Cancelled();
    }
  }

  /** CANCELLED, or DEADLINE_EXCEEDED once the deadline passed; the first ending wins. */
  private void onCancel() {
    cancelled = true;
    if (deadline != null && deadline.isExpired()) {
      state.finish(Outcome.DEADLINE_EXCEEDED, Status.Code.DEADLINE_EXCEEDED.value());
    } else {
      state.finish(Outcome.CANCELLED, Status.Code.CANCELLED.value());
    }
    inbox.add(CANCEL);
    synchronized (readiness) {
      readiness.notifyAll();
    }
  }

  /** A request observer feeding the body's reads. */
  private StreamObserver<Q> requests() {
    out.disableAutoRequest();
    return new StreamObserver<Q>() {
      @Override
      public void onNext(Q value) {
        inbox.add(value);
      }

      @Override
      public void onError(Throwable t) {
        inbox.add(CANCEL); // grpc-java reports a client reset here.
      }

      @Override
      public void onCompleted() {
        inbox.add(END);
      }
    };
  }

  /** The next request, or null at the client's half-close. */
  @SuppressWarnings("unchecked")
  Q read() throws Cancelled, InterruptedException {
    if (cancelled) {
      throw new Cancelled();
    }
    out.request(1);
    for (; ; ) {
      Object next = inbox.poll(POLL_MS, TimeUnit.MILLISECONDS);
      if (next == CANCEL || cancelled) {
        throw new Cancelled();
      }
      if (next == END) {
        state.halfClose();
        return null;
      }
      if (next != null) {
        state.requestRead();
        return (Q) next;
      }
    }
  }

  boolean readsExhausted() {
    return closeAfter != null && state.requestsReceived() >= closeAfter;
  }

  /** delay-ms before the first response, response-interval-ms before each later one. */
  void beforeResponse() throws Cancelled, InterruptedException {
    sleep(state.responsesSent() == 0 ? delayMs : intervalMs);
  }

  /**
   * beforeResponse for a unary response; a body may call it early, the wrapper
   * then skips it. fail-after N > 0 changes nothing for a single response.
   */
  void beforeUnaryResponse() throws Cancelled, InterruptedException {
    if (!unaryPrepared) {
      unaryPrepared = true;
      beforeResponse();
    }
  }

  /**
   * One streamed response, after its pause, once grpc-java's buffer has room;
   * fail-after N ends the call right after the N-th.
   */
  void write(R message) throws Fail, Cancelled, InterruptedException {
    beforeResponse();
    synchronized (readiness) {
      while (!out.isReady() && !cancelled) {
        readiness.wait(POLL_MS);
      }
    }
    if (cancelled) {
      throw new Cancelled();
    }
    out.onNext(message);
    state.responseSent();
    if (failAfter != null && failAfter > 0 && state.responsesSent() == failAfter) {
      throw new Fail(failCode, failMessage, true);
    }
  }

  private void endOk() {
    state.finish(Outcome.COMPLETED, 0);
    out.onCompleted();
  }

  private void fail(Throwable error) {
    if (error instanceof Cancelled || cancelled) {
      return; // grpc-java already ended the call.
    }
    Status status;
    if (error instanceof Fail) {
      status = Status.fromCodeValue(((Fail) error).code).withDescription(error.getMessage());
    } else {
      status = Status.UNKNOWN.withDescription("handler failed: " + error);
    }
    state.finish(Outcome.COMPLETED, status.getCode().value());
    Metadata trailers = new Metadata();
    if (error instanceof Fail && ((Fail) error).scripted && failDetails != null) {
      trailers.put(STATUS_DETAILS, failDetails);
    }
    out.onError(status.asRuntimeException(trailers));
  }

  private void runUnary(UnaryBody<Q, R> body, Q request) {
    BODIES.execute(
        () -> {
          try {
            parseControl();
            R response = body.run(this, request);
            beforeUnaryResponse();
            out.onNext(response);
            state.responseSent();
            endOk();
          } catch (Throwable t) {
            fail(t);
          }
        });
  }

  private void runStream(StreamBody<Q, R> body, Q request) {
    BODIES.execute(
        () -> {
          try {
            parseControl();
            body.run(this, request);
            endOk();
          } catch (Throwable t) {
            fail(t);
          }
        });
  }

  private void unaryRequest() {
    state.requestRead();
    state.halfClose();
  }

  static <Q, R> void unary(
      CallRegistry reg, String method, Q request, StreamObserver<R> obs, UnaryBody<Q, R> body) {
    ContractCall<Q, R> call = new ContractCall<>(reg, method, obs);
    call.unaryRequest();
    call.runUnary(body, request);
  }

  static <Q, R> void serverStream(
      CallRegistry reg, String method, Q request, StreamObserver<R> obs, StreamBody<Q, R> body) {
    ContractCall<Q, R> call = new ContractCall<>(reg, method, obs);
    call.unaryRequest();
    call.runStream(body, request);
  }

  static <Q, R> StreamObserver<Q> clientStream(
      CallRegistry reg, String method, StreamObserver<R> obs, UnaryBody<Q, R> body) {
    ContractCall<Q, R> call = new ContractCall<>(reg, method, obs);
    StreamObserver<Q> requests = call.requests();
    call.runUnary(body, null);
    return requests;
  }

  static <Q, R> StreamObserver<Q> bidi(
      CallRegistry reg, String method, StreamObserver<R> obs, StreamBody<Q, R> body) {
    ContractCall<Q, R> call = new ContractCall<>(reg, method, obs);
    StreamObserver<Q> requests = call.requests();
    call.runStream(body, null);
    return requests;
  }
}
