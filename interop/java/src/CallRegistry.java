import conform.v1.ObserverOuterClass.CallRecord;
import conform.v1.ObserverOuterClass.Outcome;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * What the server observed of each call (CONTRACT.md section 4). Calls that
 * carried x-conform-call-id are kept by id for Observer.GetCall, which can wait
 * for a call to settle: every state change notifies the state's monitor.
 */
final class CallRegistry {
  static final String CALL_ID_HEADER = "x-conform-call-id";

  /** Calls kept at most, oldest dropped first, so a long-running peer stays bounded. */
  private static final int MAX_KEPT_CALLS = 10_000;

  private final Map<String, CallState> calls =
      new LinkedHashMap<String, CallState>() {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, CallState> eldest) {
          return size() > MAX_KEPT_CALLS;
        }
      };

  /** One call's record, updated by its handler and by grpc-java's cancel callback. */
  static final class CallState {
    private final CallRecord.Builder record;

    CallState(CallRecord.Builder record) {
      this.record = record;
    }

    synchronized void requestRead() {
      record.setRequestsReceived(record.getRequestsReceived() + 1);
    }

    /** The client's END_STREAM reached the handler; never for a cancel. */
    synchronized void halfClose() {
      record.setHalfCloseReceived(true);
    }

    synchronized void responseSent() {
      record.setResponsesSent(record.getResponsesSent() + 1);
    }

    synchronized int responsesSent() {
      return record.getResponsesSent();
    }

    synchronized int requestsReceived() {
      return record.getRequestsReceived();
    }

    synchronized boolean finished() {
      return record.getOutcome() != Outcome.RUNNING;
    }

    /** The first ending wins: a handler that ends after a reset stays CANCELLED. */
    synchronized void finish(Outcome outcome, int statusCode) {
      if (finished()) {
        return;
      }
      record.setOutcome(outcome).setStatusCode(statusCode);
      notifyAll();
    }

    /** The record after waiting up to waitMs for the call to settle. */
    synchronized CallRecord await(long waitMs) throws InterruptedException {
      long end = System.nanoTime() + waitMs * 1_000_000L;
      while (!finished()) {
        long left = (end - System.nanoTime()) / 1_000_000L;
        if (left <= 0) {
          break; // Timing out is an answer too: the record says RUNNING.
        }
        wait(left);
      }
      return record.build();
    }
  }

  /**
   * Request headers whose names start with "x-": -bin values arrive decoded, so
   * they are put back into base64, unpadded as the gRPC spec asks senders to
   * (the other peers do the same); repeated keys are joined with ",".
   */
  static Map<String, String> xHeaders(io.grpc.Metadata headers) {
    Map<String, String> out = new TreeMap<>();
    for (String key : headers.keys()) {
      if (!key.startsWith("x-")) {
        continue;
      }
      StringBuilder joined = new StringBuilder();
      if (key.endsWith(io.grpc.Metadata.BINARY_HEADER_SUFFIX)) {
        for (byte[] v :
            headers.getAll(io.grpc.Metadata.Key.of(key, io.grpc.Metadata.BINARY_BYTE_MARSHALLER))) {
          joined.append(joined.length() > 0 ? "," : "");
          joined.append(Base64.getEncoder().withoutPadding().encodeToString(v));
        }
      } else {
        for (String v :
            headers.getAll(io.grpc.Metadata.Key.of(key, io.grpc.Metadata.ASCII_STRING_MARSHALLER))) {
          joined.append(joined.length() > 0 ? "," : "").append(v);
        }
      }
      out.put(key, joined.toString());
    }
    return out;
  }

  /** Opens a call; keeps it when it carried an id (a rerun replaces the older call). */
  CallState open(String method, Map<String, String> xHeaders, String encoding, long timeoutMs) {
    String id = xHeaders.getOrDefault(CALL_ID_HEADER, "");
    CallRecord.Builder record =
        CallRecord.newBuilder()
            .setCallId(id)
            .setMethod(method)
            .setOutcome(Outcome.RUNNING)
            .setRequestEncoding(encoding)
            .setTimeoutMs(timeoutMs)
            .putAllMetadata(xHeaders);
    CallState state = new CallState(record);
    if (!id.isEmpty()) {
      synchronized (calls) {
        calls.remove(id);
        calls.put(id, state);
      }
    }
    return state;
  }

  /** The record of callId after waiting up to waitMs; null when no call carried it. */
  CallRecord get(String callId, long waitMs) throws InterruptedException {
    CallState state;
    synchronized (calls) {
      state = calls.get(callId);
    }
    return state == null ? null : state.await(waitMs);
  }
}
