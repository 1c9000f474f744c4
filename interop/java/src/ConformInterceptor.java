import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.ForwardingServerCall.SimpleForwardingServerCall;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;

/**
 * The part of the contract that lives at the ServerCall level rather than in
 * the handlers: the request headers are put in the Context for ContractCall,
 * x-conform-response-encoding picks the response compressor, and the two
 * interop echo headers go back as a response header and a trailer.
 */
final class ConformInterceptor implements ServerInterceptor {
  /** The request headers of the current call. */
  static final Context.Key<Metadata> HEADERS = Context.key("conform-request-headers");

  static final Metadata.Key<String> ECHO_INITIAL =
      Metadata.Key.of("x-grpc-test-echo-initial", Metadata.ASCII_STRING_MARSHALLER);
  static final Metadata.Key<byte[]> ECHO_TRAILING =
      Metadata.Key.of("x-grpc-test-echo-trailing-bin", Metadata.BINARY_BYTE_MARSHALLER);
  static final Metadata.Key<String> RESPONSE_ENCODING =
      Metadata.Key.of("x-conform-response-encoding", Metadata.ASCII_STRING_MARSHALLER);

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
    // Every value of a repeated echo header, in order.
    Iterable<String> echoInitial = headers.getAll(ECHO_INITIAL);
    // Every value: grpc-java splits a comma-joined -bin header into several,
    // and get() would echo only the last of them.
    Iterable<byte[]> echoTrailing = headers.getAll(ECHO_TRAILING);
    ServerCall<Q, R> echoing =
        new SimpleForwardingServerCall<Q, R>(call) {
          private boolean headersSent;

          @Override
          public void sendHeaders(Metadata responseHeaders) {
            headersSent = true;
            if (echoInitial != null) {
              for (String value : echoInitial) {
                responseHeaders.put(ECHO_INITIAL, value);
              }
            }
            super.sendHeaders(responseHeaders);
          }

          @Override
          public void close(Status status, Metadata trailers) {
            // grpc-java answers trailers-only when no header went out: the
            // echoed response header then travels in that single block.
            if (!headersSent && echoInitial != null) {
              for (String value : echoInitial) {
                trailers.put(ECHO_INITIAL, value);
              }
            }
            if (echoTrailing != null) {
              for (byte[] value : echoTrailing) {
                trailers.put(ECHO_TRAILING, value);
              }
            }
            super.close(status, trailers);
          }
        };
    String encoding = headers.get(RESPONSE_ENCODING);
    if (encoding != null) {
      try {
        // grpc-java has gzip and identity; it falls back to identity when the
        // client does not list the encoding in grpc-accept-encoding.
        echoing.setCompression(encoding);
      } catch (IllegalArgumentException unknown) {
        // An encoding grpc-java lacks (deflate, zstd): responses stay as they are.
      }
    }
    Context context = Context.current().withValue(HEADERS, headers);
    return Contexts.interceptCall(context, echoing, headers, next);
  }
}
