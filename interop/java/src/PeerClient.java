import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.netty.NettyChannelBuilder;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * The Java client peer: reads grpc-conform's plan on stdin, runs its calls on
 * one grpc-java Netty channel (PlannedCall), prints the report on stdout and
 * exits 0. A plan it cannot run is an error on stderr and exit status 2.
 */
public final class PeerClient {
  /** A plan larger than this is refused rather than read into memory. */
  private static final int MAX_PLAN_BYTES = 64 * 1024 * 1024;

  /** After the plan's time, calls get this long to record their end. */
  private static final long JOIN_GRACE_MS = 2500;

  private static final long STARTED = System.nanoTime();

  private PeerClient() {}

  public static void main(String[] args) throws Exception {
    ClientPlan plan;
    try {
      plan = ClientPlan.parse(readPlan(System.in));
      checkMessages(plan);
    } catch (ClientPlan.Invalid e) {
      System.err.println("java client: plan (stdin): " + e.getMessage());
      System.exit(2);
      return;
    }
    // The plan's time runs from here: the JVM's start-up before it (a second
    // or more on a loaded machine) is covered by the kit's 5 s grace.
    long endNanos = STARTED + TimeUnit.MILLISECONDS.toNanos(plan.timeoutMs);
    log(
        "fixture " + plan.fixture + ": " + plan.calls.size() + " call(s) to " + plan.target + ", "
            + TimeUnit.NANOSECONDS.toMillis(endNanos - System.nanoTime()) + " ms left of timeout_ms");
    ManagedChannel channel = channel(plan);
    connect(channel, endNanos);
    List<PlannedCall> calls = new ArrayList<>();
    for (int i = 0; i < plan.calls.size(); i++) {
      calls.add(new PlannedCall(i, plan.calls.get(i), channel, endNanos));
    }
    if (plan.concurrent) {
      runAtOnce(calls, endNanos);
    } else {
      calls.forEach(PlannedCall::run);
    }
    // Done with the channel, as an application is: shutdown() sends GOAWAY and
    // closes the connection once what grpc-java queued (a RST_STREAM after a
    // failed call, say) is written.
    channel.shutdown();
    if (!channel.awaitTermination(1, TimeUnit.SECONDS)) {
      channel.shutdownNow();
    }
    JsonObject report = new JsonObject();
    report.addProperty("version", ClientPlan.VERSION);
    report.addProperty("client", "grpc-java/" + io.grpc.internal.GrpcUtil.getGrpcBuildVersion().getImplementationVersion());
    JsonArray results = new JsonArray();
    calls.forEach(c -> results.add(c.result()));
    report.add("calls", results);
    System.out.println(new GsonBuilder().serializeNulls().disableHtmlEscaping().create().toJson(report));
    System.out.flush();
    // grpc-java's executor threads are not daemons: exit rather than wait for them.
    System.exit(0);
  }

  /** One channel for the whole plan; what the plan leaves out is grpc-java's default. */
  private static ManagedChannel channel(ClientPlan plan) {
    NettyChannelBuilder builder = NettyChannelBuilder.forTarget(plan.target).usePlaintext();
    if (plan.keepaliveTimeMs != null) {
      // grpc-java raises a keepalive time under 10 s to 10 s, and a timeout
      // under 10 ms to 10 ms (KeepAliveManager's clamps).
      builder
          .keepAliveTime(plan.keepaliveTimeMs, TimeUnit.MILLISECONDS)
          .keepAliveTimeout(plan.keepaliveTimeoutMs, TimeUnit.MILLISECONDS)
          .keepAliveWithoutCalls(plan.keepaliveWithoutCalls);
    }
    if (plan.maxReceiveMessageBytes != null) {
      builder.maxInboundMessageSize((int) Math.min(plan.maxReceiveMessageBytes, Integer.MAX_VALUE));
    }
    return builder.build();
  }

  /**
   * Connects the channel before the first call: a cold JVM spends a few
   * hundred milliseconds loading Netty on its first connection, which would
   * otherwise run inside the first call's deadline. Ends at READY, at a
   * failure (the calls then fail as grpc-java fails them) or at the plan's end.
   */
  private static void connect(ManagedChannel channel, long endNanos) throws InterruptedException {
    while (true) {
      ConnectivityState state = channel.getState(true);
      if (state == ConnectivityState.READY
          || state == ConnectivityState.TRANSIENT_FAILURE
          || state == ConnectivityState.SHUTDOWN) {
        log("channel " + state);
        return;
      }
      CountDownLatch changed = new CountDownLatch(1);
      channel.notifyWhenStateChanged(state, changed::countDown);
      long left = endNanos - System.nanoTime();
      if (left <= 0 || !changed.await(left, TimeUnit.NANOSECONDS)) {
        log("channel still " + state + " at the plan's end");
        return;
      }
    }
  }

  /** Starts every call on a thread of its own at the same moment, then waits for them all. */
  private static void runAtOnce(List<PlannedCall> calls, long endNanos) throws InterruptedException {
    CountDownLatch go = new CountDownLatch(1);
    List<Thread> threads = new ArrayList<>();
    for (PlannedCall call : calls) {
      Thread t =
          new Thread(
              () -> {
                try {
                  go.await();
                } catch (InterruptedException e) {
                  return;
                }
                call.run();
              },
              "planned-call");
      t.setDaemon(true);
      t.start();
      threads.add(t);
    }
    go.countDown();
    long joinBy = endNanos + TimeUnit.MILLISECONDS.toNanos(JOIN_GRACE_MS);
    for (Thread t : threads) {
      long left = joinBy - System.nanoTime();
      if (left > 0) {
        TimeUnit.NANOSECONDS.timedJoin(t, left);
      }
    }
  }

  /**
   * Every message the plan sends must be its method's input type in proto3
   * JSON; those of send steps are built here, before any call starts, as an
   * application has its request ready before it calls.
   */
  private static void checkMessages(ClientPlan plan) throws ClientPlan.Invalid {
    for (int c = 0; c < plan.calls.size(); c++) {
      ClientPlan.Call call = plan.calls.get(c);
      MethodDescriptor<Message, Message> method = ContractMethods.find(call.method, call.mode);
      for (int s = 0; s < call.steps.size(); s++) {
        ClientPlan.Step step = call.steps.get(s);
        String at = "calls[" + c + "].steps[" + s + "]";
        try {
          if (step.op == ClientPlan.Op.SEND) {
            step.request = ContractMethods.request(method, step.message);
          } else if (step.op == ClientPlan.Op.SEND_MANY) {
            ContractMethods.request(method, ContractMethods.numbered(step.message, 1));
          }
        } catch (InvalidProtocolBufferException e) {
          String field = step.op == ClientPlan.Op.SEND ? "message" : "template";
          throw new ClientPlan.Invalid(
              at + "." + field + ": not a " + method.getFullMethodName() + " request: "
                  + e.getMessage());
        }
      }
    }
  }

  private static String readPlan(InputStream in) throws IOException, ClientPlan.Invalid {
    ByteArrayOutputStream buffer = new ByteArrayOutputStream();
    byte[] chunk = new byte[64 * 1024];
    for (int n; (n = in.read(chunk)) > 0; ) {
      if (buffer.size() + n > MAX_PLAN_BYTES) {
        throw new ClientPlan.Invalid("larger than " + MAX_PLAN_BYTES + " bytes");
      }
      buffer.write(chunk, 0, n);
    }
    return buffer.toString(StandardCharsets.UTF_8);
  }

  /** A line on stderr with the time since start, which the kit shows when a fixture fails. */
  static void log(String what) {
    long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - STARTED);
    System.err.println("java client +" + ms + " ms: " + what);
  }
}
