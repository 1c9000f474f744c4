import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.netty.NettyServerBuilder;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;

/**
 * The Java peer: the contract (CONTRACT.md) on grpc-java's Netty server. Run by
 * ./start PORT; prints the readiness line the interop runner waits for and
 * stops on SIGTERM (JVM shutdown hook).
 */
public final class PeerServer {
  /** Calls in flight get this long to finish after SIGTERM. */
  private static final long STOP_GRACE_MS = 1000;

  private PeerServer() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 1 || !args[0].matches("\\d+")) {
      System.err.println("usage: PeerServer PORT");
      System.exit(2);
    }
    int port = Integer.parseInt(args[0]);
    CallRegistry registry = new CallRegistry();
    ConformInterceptor interceptor = new ConformInterceptor();
    // grpc-java's defaults throughout: 4 MiB messages, its keepalive ping
    // policy (5 minutes, two strikes), gzip accepted on requests and offered
    // for responses when a call asks (ConformInterceptor).
    Server server =
        NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", port))
            .addService(ServerInterceptors.intercept(new Services.ChatImpl(registry), interceptor))
            .addService(
                ServerInterceptors.intercept(new Services.GreeterImpl(registry), interceptor))
            .addService(
                ServerInterceptors.intercept(new Services.SensorImpl(registry), interceptor))
            .addService(new Services.ObserverImpl(registry))
            .build();
    try {
      server.start();
    } catch (java.io.IOException e) {
      System.err.println("java peer: cannot listen on 127.0.0.1:" + port + ": " + e);
      System.exit(1);
    }
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  server.shutdown();
                  try {
                    if (!server.awaitTermination(STOP_GRACE_MS, TimeUnit.MILLISECONDS)) {
                      server.shutdownNow();
                    }
                  } catch (InterruptedException e) {
                    server.shutdownNow();
                  }
                }));
    System.out.println("listening on 127.0.0.1:" + port);
    System.out.flush();
    server.awaitTermination();
  }
}
