import conform.v1.ObserverGrpc;
import conform.v1.ObserverOuterClass.CallQuery;
import conform.v1.ObserverOuterClass.CallRecord;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** The contract's methods (CONTRACT.md section 2), each body run by ContractCall. */
final class Services {
  private static final int INVALID_ARGUMENT = Status.Code.INVALID_ARGUMENT.value();
  private static final int NOT_FOUND = Status.Code.NOT_FOUND.value();

  private Services() {}

  /** ChatService: a full-duplex echo. */
  static final class ChatImpl extends ChatServiceGrpc.ChatServiceImplBase {
    private final CallRegistry registry;

    ChatImpl(CallRegistry registry) {
      this.registry = registry;
    }

    @Override
    public StreamObserver<Chat.Message> chatStream(StreamObserver<Chat.Message> responses) {
      return ContractCall.bidi(
          registry,
          "/ChatService/ChatStream",
          responses,
          (call, ignored) -> {
            call.failAtStart();
            while (!call.readsExhausted()) {
              Chat.Message m = call.read();
              if (m == null) {
                break;
              }
              call.write(
                  Chat.Message.newBuilder()
                      .setUser("server")
                      .setContent(call.pad("echo: " + m.getContent()))
                      .setTimestamp(System.currentTimeMillis() / 1000)
                      .build());
            }
          });
    }
  }

  /** Greeter: one method per RPC mode. */
  static final class GreeterImpl extends GreeterGrpc.GreeterImplBase {
    private final CallRegistry registry;

    GreeterImpl(CallRegistry registry) {
      this.registry = registry;
    }

    @Override
    public void sayHello(
        GreeterOuterClass.HelloRequest request,
        StreamObserver<GreeterOuterClass.HelloReply> responses) {
      ContractCall.unary(
          registry,
          "/Greeter/SayHello",
          request,
          responses,
          (call, r) -> {
            call.failAtStart();
            return GreeterOuterClass.HelloReply.newBuilder()
                .setMessage(call.pad("Hello " + r.getName()))
                .build();
          });
    }

    @Override
    public void serverStream(
        GreeterOuterClass.StreamRequestData request,
        StreamObserver<GreeterOuterClass.StreamResponseData> responses) {
      ContractCall.serverStream(
          registry,
          "/Greeter/ServerStream",
          request,
          responses,
          (call, r) -> {
            call.failAtStart();
            int count = call.responseCount == null ? 3 : call.responseCount;
            for (int i = 1; i <= count; i++) {
              call.write(data(call.pad(r.getData() + "-" + i)));
            }
          });
    }

    @Override
    public StreamObserver<GreeterOuterClass.StreamRequestData> clientStream(
        StreamObserver<GreeterOuterClass.StreamResponseData> responses) {
      return ContractCall.clientStream(
          registry,
          "/Greeter/ClientStream",
          responses,
          (call, ignored) -> {
            call.failAtStart();
            List<String> received = new ArrayList<>();
            while (!call.readsExhausted()) {
              GreeterOuterClass.StreamRequestData r = call.read();
              if (r == null) {
                break;
              }
              received.add(r.getData());
            }
            return data(call.pad(String.join(",", received)));
          });
    }

    @Override
    public StreamObserver<GreeterOuterClass.StreamRequestData> allStream(
        StreamObserver<GreeterOuterClass.StreamResponseData> responses) {
      return ContractCall.bidi(
          registry,
          "/Greeter/AllStream",
          responses,
          (call, ignored) -> {
            call.failAtStart();
            while (!call.readsExhausted()) {
              GreeterOuterClass.StreamRequestData r = call.read();
              if (r == null) {
                break;
              }
              call.write(data(call.pad("echo: " + r.getData())));
            }
          });
    }

    private static GreeterOuterClass.StreamResponseData data(String d) {
      return GreeterOuterClass.StreamResponseData.newBuilder().setData(d).build();
    }
  }

  /** SensorService: readings recorded, watched and queried. */
  static final class SensorImpl extends SensorServiceGrpc.SensorServiceImplBase {
    private final CallRegistry registry;
    /** Per device, the last reading of a Record call that ended OK. */
    private final Map<String, Sensor.SensorData> latest = new ConcurrentHashMap<>();

    SensorImpl(CallRegistry registry) {
      this.registry = registry;
    }

    /** The RecordSummary of readings, in arrival order (sums on the float32 values). */
    static Sensor.RecordSummary summarise(List<Sensor.SensorData> readings) {
      Sensor.RecordSummary.Builder s = Sensor.RecordSummary.newBuilder().setCount(readings.size());
      if (readings.isEmpty()) {
        return s.build();
      }
      float min = Float.POSITIVE_INFINITY;
      float max = Float.NEGATIVE_INFINITY;
      double total = 0;
      int outOfOrder = 0;
      LinkedHashSet<String> devices = new LinkedHashSet<>();
      for (int i = 0; i < readings.size(); i++) {
        Sensor.SensorData r = readings.get(i);
        min = Math.min(min, r.getTemperature());
        max = Math.max(max, r.getTemperature());
        total += r.getTemperature();
        if (i > 0 && r.getTimestamp() < readings.get(i - 1).getTimestamp()) {
          outOfOrder++;
        }
        devices.add(r.getDeviceId());
      }
      return s.setMin(min)
          .setMax(max)
          .setMean(total / readings.size())
          .setFirstTimestamp(readings.get(0).getTimestamp())
          .setLastTimestamp(readings.get(readings.size() - 1).getTimestamp())
          .setOutOfOrder(outOfOrder)
          .addAllDeviceIds(devices)
          .build();
    }

    @Override
    public StreamObserver<Sensor.SensorData> record(
        StreamObserver<Sensor.RecordSummary> responses) {
      return ContractCall.clientStream(
          registry,
          "/SensorService/Record",
          responses,
          (call, ignored) -> {
            call.failAtStart();
            List<Sensor.SensorData> readings = new ArrayList<>();
            while (!call.readsExhausted()) {
              Sensor.SensorData r = call.read();
              if (r == null) {
                break;
              }
              if (r.getDeviceId().isEmpty()) {
                throw new ContractCall.Fail(
                    INVALID_ARGUMENT,
                    "Record: reading " + (readings.size() + 1) + " has an empty device_id");
              }
              readings.add(r);
            }
            Sensor.RecordSummary summary = summarise(readings);
            // Stored only once the reply is due (after delay-ms), as the
            // reference does; a call cancelled during the delay stores nothing.
            call.beforeUnaryResponse();
            for (Sensor.SensorData r : readings) {
              latest.put(r.getDeviceId(), r);
            }
            if (call.responseSize != null) {
              // The contract pads the last device id, or one added when none.
              List<String> ids = new ArrayList<>(summary.getDeviceIdsList());
              String last = ids.isEmpty() ? "" : ids.remove(ids.size() - 1);
              ids.add(call.pad(last));
              summary = summary.toBuilder().clearDeviceIds().addAllDeviceIds(ids).build();
            }
            return summary;
          });
    }

    @Override
    public void watch(Sensor.WatchRequest request, StreamObserver<Sensor.SensorData> responses) {
      ContractCall.serverStream(
          registry,
          "/SensorService/Watch",
          request,
          responses,
          (call, r) -> {
            if (r.getDeviceId().isEmpty()) {
              throw new ContractCall.Fail(INVALID_ARGUMENT, "Watch: device_id must not be empty");
            }
            call.failAtStart();
            int count = r.getLimit() == 0 ? 3 : r.getLimit();
            if (call.responseCount != null) {
              count = call.responseCount;
            }
            for (int i = 0; i < count; i++) {
              call.write(
                  Sensor.SensorData.newBuilder()
                      .setTimestamp(1000 + i)
                      .setTemperature(20.0f + 0.25f * i)
                      .setDeviceId(call.pad(r.getDeviceId()))
                      .build());
            }
          });
    }

    @Override
    public void latest(Sensor.DeviceQuery request, StreamObserver<Sensor.SensorData> responses) {
      ContractCall.unary(
          registry,
          "/SensorService/Latest",
          request,
          responses,
          (call, r) -> {
            if (r.getDeviceId().isEmpty()) {
              throw new ContractCall.Fail(INVALID_ARGUMENT, "Latest: device_id must not be empty");
            }
            call.failAtStart();
            Sensor.SensorData reading = latest.get(r.getDeviceId());
            if (reading == null) {
              throw new ContractCall.Fail(
                  NOT_FOUND,
                  "Latest: no Record call stored a reading for device "
                      + ContractCall.quoted(r.getDeviceId()));
            }
            return reading.toBuilder().setDeviceId(call.pad(reading.getDeviceId())).build();
          });
    }
  }

  /**
   * Observer.GetCall. Not itself recorded: a GetCall carrying the id it asks
   * about would replace the very call it looks for. It blocks up to wait_ms on
   * grpc-java's own handler thread, which only holds back this call.
   */
  static final class ObserverImpl extends ObserverGrpc.ObserverImplBase {
    /** GetCall waits at most this long whatever wait_ms says, as the reference. */
    private static final long MAX_GET_CALL_WAIT_MS = 60_000;

    private final CallRegistry registry;

    ObserverImpl(CallRegistry registry) {
      this.registry = registry;
    }

    @Override
    public void getCall(CallQuery query, StreamObserver<CallRecord> responses) {
      try {
        long waitMs = Math.min(Integer.toUnsignedLong(query.getWaitMs()), MAX_GET_CALL_WAIT_MS);
        CallRecord record = registry.get(query.getCallId(), waitMs);
        if (record == null) {
          responses.onError(
              Status.NOT_FOUND
                  .withDescription(
                      "GetCall: no call carried x-conform-call-id "
                          + ContractCall.quoted(query.getCallId()))
                  .asRuntimeException());
          return;
        }
        responses.onNext(record);
        responses.onCompleted();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        responses.onError(Status.CANCELLED.withDescription("interrupted").asRuntimeException());
      }
    }
  }
}
