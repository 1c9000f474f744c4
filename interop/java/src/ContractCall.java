import conform.v1.ObserverOuterClass.Outcome;
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
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

    Fail(int code, String message) {
      super(message);
      this.code = code;
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
  final Integer responseCount;
  private final ServerCallStreamObserver<R> out;
  private final long intervalMs;
  private final long delayMs;
  private final Integer failAfter;
  private final int failCode;
  private final String failMessage;
  private final Integer closeAfter;
  private final Deadline deadline;
  private final LinkedBlockingQueue<Object> inbox = new LinkedBlockingQueue<>();
  private final Object readiness = new Object();
  private volatile boolean cancelled;
  private boolean unaryPrepared;

  private ContractCall(CallRegistry registry, String method, StreamObserver<R> observer) {
    Metadata headers = ConformInterceptor.HEADERS.get();
    if (headers == null) {
      headers = new Metadata();
    }
    Map<String, String> x = CallRegistry.xHeaders(headers);
    deadline = Context.current().getDeadline();
    String encoding =
        headers.get(Metadata.Key.of("grpc-encoding", Metadata.ASCII_STRING_MARSHALLER));
    state =
        registry.open(
            method,
            x,
            encoding == null || encoding.equals("identity") ? "" : encoding,
            timeoutMs(deadline));
    responseCount = number(x, "x-conform-response-count");
    intervalMs = orZero(number(x, "x-conform-response-interval-ms"));
    delayMs = orZero(number(x, "x-conform-delay-ms"));
    failAfter = number(x, "x-conform-fail-after");
    Integer code = number(x, "x-conform-fail-code");
    failCode = code == null ? Status.Code.UNKNOWN.value() : code;
    failMessage = x.getOrDefault("x-conform-fail-message", "");
    closeAfter = number(x, "x-conform-close-after-requests");
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
   * The deadline in ms, 0 when none. grpc-java turns grpc-timeout into the
   * Context deadline; this is the time left when the handler starts, rounded to
   * the nearest 10 ms to hide the millisecond grpc-java took to get here.
   */
  private static long timeoutMs(Deadline deadline) {
    if (deadline == null) {
      return 0;
    }
    long left = deadline.timeRemaining(TimeUnit.MICROSECONDS);
    if (left <= 0) {
      return 0;
    }
    return left < 5000 ? (left + 999) / 1000 : Math.round(left / 10000.0) * 10;
  }

  /** A numeric control header; absent or malformed means not set. */
  private static Integer number(Map<String, String> x, String name) {
    String v = x.get(name);
    if (v == null || !v.trim().matches("\\d{1,9}")) {
      return null;
    }
    return Integer.valueOf(v.trim());
  }

  private static long orZero(Integer v) {
    return v == null ? 0 : v;
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

  /** The pause before the next response, then fail-after (it takes response N+1's place). */
  void beforeResponse() throws Fail, Cancelled, InterruptedException {
    int sent = state.responsesSent();
    long pause = sent == 0 ? delayMs : intervalMs;
    long end = System.nanoTime() + pause * 1_000_000L;
    while (!cancelled && System.nanoTime() < end) {
      Thread.sleep(Math.max(1, Math.min(POLL_MS, (end - System.nanoTime()) / 1_000_000L)));
    }
    if (cancelled) {
      throw new Cancelled();
    }
    if (failAfter != null && sent >= failAfter) {
      throw new Fail(failCode, failMessage);
    }
  }

  /** beforeResponse for a unary response; a body may call it early, the wrapper then skips it. */
  void beforeUnaryResponse() throws Fail, Cancelled, InterruptedException {
    if (!unaryPrepared) {
      unaryPrepared = true;
      beforeResponse();
    }
  }

  /** One streamed response, after its pause, once grpc-java's buffer has room. */
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
  }

  private void endOk() throws Fail {
    if (failAfter != null && state.responsesSent() >= failAfter) {
      throw new Fail(failCode, failMessage);
    }
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
    out.onError(status.asRuntimeException());
  }

  private void runUnary(UnaryBody<Q, R> body, Q request) {
    BODIES.execute(
        () -> {
          try {
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
