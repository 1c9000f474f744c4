//! Where message types come from: the embedded contract, `--proto` files
//! compiled at run time with protox, or the target's server reflection. The
//! pool always holds the contract, so the Observer can be asked whatever the
//! user added.

use crate::{drive::Connector, proto::CONTRACT_DESCRIPTOR_SET};
use prost::Message as _;
use prost_reflect::{DescriptorPool, MethodDescriptor};
use std::{path::PathBuf, time::Duration};

/// Why a descriptor pool could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DescriptorError {
    /// The embedded contract did not decode (a build problem).
    #[error("embedded contract descriptors are invalid: {0}")]
    Embedded(prost_reflect::DescriptorError),
    /// protox rejected a `--proto` file.
    #[error("cannot compile {file}{at}: {source}")]
    Compile {
        /// The file given.
        file: PathBuf,
        /// `:line:column` (or `: in <file>:line:column` for an import) when protox knows.
        at: String,
        /// protox's error.
        source: protox::Error,
    },
    /// The compiled or reflected files clash with what the pool has.
    #[error("descriptors from {from} do not fit the pool: {source}")]
    Pool {
        /// Where they came from (a path or `reflection`).
        from: String,
        /// prost-reflect's reason.
        source: prost_reflect::DescriptorError,
    },
    /// Server reflection failed.
    #[error("server reflection on {target}: {what}")]
    Reflect {
        /// The target asked.
        target: String,
        /// What went wrong.
        what: String,
    },
}

/// What server reflection gave.
#[derive(Clone, Debug)]
pub struct Reflected {
    /// The reflection version that answered: `v1` or `v1alpha`.
    pub version: &'static str,
    /// The services listed (reflection itself left out).
    pub services: Vec<String>,
}

/// The message types a run can encode and decode.
#[derive(Clone, Debug)]
pub struct Descriptors {
    pool: DescriptorPool,
}

impl Descriptors {
    /// The contract's services and the Observer.
    pub fn contract() -> Result<Descriptors, DescriptorError> {
        let pool =
            DescriptorPool::decode(CONTRACT_DESCRIPTOR_SET).map_err(DescriptorError::Embedded)?;
        Ok(Descriptors { pool })
    }

    /// Compiles `file` with protox (its directory and `includes` as import
    /// paths) and adds it and its imports to the pool.
    pub fn add_proto(
        &mut self,
        file: &std::path::Path,
        includes: &[PathBuf],
    ) -> Result<(), DescriptorError> {
        let compile_err = |source: protox::Error| DescriptorError::Compile {
            file: file.to_path_buf(),
            at: locate(&source, file),
            source,
        };
        let mut dirs: Vec<PathBuf> = file.parent().map(|p| p.to_path_buf()).into_iter().collect();
        if dirs.first().is_some_and(|d| d.as_os_str().is_empty()) {
            dirs[0] = PathBuf::from(".");
        }
        dirs.extend(includes.iter().cloned());
        let mut compiler = protox::Compiler::new(&dirs).map_err(compile_err)?;
        compiler.include_imports(true);
        compiler.open_file(file).map_err(compile_err)?;
        let bytes = compiler.file_descriptor_set().encode_to_vec();
        self.pool
            .decode_file_descriptor_set(bytes.as_slice())
            .map_err(|source| DescriptorError::Pool {
                from: file.display().to_string(),
                source,
            })
    }

    /// Adds every service the target lists through server reflection, with
    /// the files they need: reflection v1 first, v1alpha when the target does
    /// not implement v1 (grpcio-reflection, older servers). The connection is
    /// the run's own (TLS and client certificates included).
    pub async fn add_reflected(
        &mut self,
        connector: &Connector,
        timeout: Duration,
    ) -> Result<Reflected, DescriptorError> {
        let target = connector.address().to_string();
        let fail = |what: String| DescriptorError::Reflect {
            target: target.clone(),
            what,
        };
        let (set, reflected) = tokio::time::timeout(timeout, reflect::fetch(connector))
            .await
            .map_err(|_| fail(format!("no answer within {timeout:?}")))?
            .map_err(fail)?;
        self.pool
            .decode_file_descriptor_set(set.as_slice())
            .map_err(|source| DescriptorError::Pool {
                from: format!("reflection on {target}"),
                source,
            })?;
        Ok(reflected)
    }

    /// The method at gRPC path `/package.Service/Method`.
    pub fn method(&self, path: &str) -> Option<MethodDescriptor> {
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        self.pool
            .get_service_by_name(service)?
            .methods()
            .find(|m| m.name() == method)
    }

    /// Every method's gRPC path, `/package.Service/Method`.
    pub fn method_paths(&self) -> Vec<String> {
        self.pool
            .services()
            .flat_map(|s| {
                s.methods()
                    .map(|m| format!("/{}/{}", s.full_name(), m.name()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The pool, for message lookups.
    pub fn pool(&self) -> &DescriptorPool {
        &self.pool
    }
}

/// Where protox's error points, as `:line:column` (1-based) of `given` or,
/// for an error in an imported file, ` (in FILE:line:column)`.
fn locate(error: &protox::Error, given: &std::path::Path) -> String {
    use miette::{Diagnostic, SourceSpan};
    let Some(offset) = error
        .labels()
        .and_then(|mut l| l.next())
        .map(|l| l.offset())
    else {
        return String::new();
    };
    let Some(source) = error.source_code() else {
        return String::new();
    };
    let Ok(span) = source.read_span(&SourceSpan::from(offset..offset), 0, 0) else {
        return String::new();
    };
    let (line, column) = (span.line() + 1, span.column() + 1);
    match error.file() {
        Some(f) if !given.ends_with(f) => format!(" (in {f}:{line}:{column})"),
        _ => format!(":{line}:{column}"),
    }
}

/// A small server reflection client on tonic (reflection is not what is
/// being checked, so tonic's client is fine here). v1 and v1alpha have the
/// same messages on the wire; only the method path differs, so the v1 types
/// serve both.
mod reflect {
    use crate::drive::Connector;
    use prost::{bytes::BufMut, encoding};
    use std::collections::{BTreeMap, VecDeque};
    use tonic::{client::Grpc, codegen::http::uri::PathAndQuery, transport::Channel, Code};
    use tonic_reflection::pb::v1::{
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        ServerReflectionRequest, ServerReflectionResponse,
    };

    /// The reflection method of each version, newest first.
    const PATHS: [&str; 2] = [
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ];

    /// A channel over the run's connector, and the reflection version that answered.
    struct Client {
        grpc: Grpc<Channel>,
        path: &'static str,
    }

    /// Asks for the service list (v1, else v1alpha), then the files defining
    /// each service and their dependencies, and returns them as an encoded
    /// FileDescriptorSet.
    pub async fn fetch(connector: &Connector) -> Result<(Vec<u8>, super::Reflected), String> {
        let mut client = Client {
            grpc: Grpc::new(channel(connector).await?),
            path: PATHS[0],
        };
        let listed = match ask(&mut client, MessageRequest::ListServices(String::new())).await {
            Err((Some(Code::Unimplemented), v1)) => {
                client.path = PATHS[1];
                ask(&mut client, MessageRequest::ListServices(String::new()))
                    .await
                    .map_err(|(code, alpha)| (code, format!("{v1}; {alpha}")))
            }
            other => other,
        };
        let services = match listed.map_err(|(_, e)| e)? {
            MessageResponse::ListServicesResponse(list) => list.service.into_iter().map(|s| s.name),
            other => return Err(format!("unexpected answer to list_services: {other:?}")),
        };
        let services: Vec<String> = services
            .filter(|s| !s.starts_with("grpc.reflection."))
            .collect();
        let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut queue: VecDeque<MessageRequest> = services
            .iter()
            .cloned()
            .map(MessageRequest::FileContainingSymbol)
            .collect();
        while let Some(request) = queue.pop_front() {
            let MessageResponse::FileDescriptorResponse(found) =
                ask(&mut client, request).await.map_err(|(_, e)| e)?
            else {
                return Err("unexpected answer to a file request".into());
            };
            for bytes in found.file_descriptor_proto {
                let file = <prost_types_lite::File as prost::Message>::decode(bytes.as_slice())
                    .map_err(|e| format!("bad file descriptor: {e}"))?;
                for dep in &file.dependency {
                    if !files.contains_key(dep) {
                        queue.push_back(MessageRequest::FileByFilename(dep.clone()));
                    }
                }
                files.insert(file.name, bytes);
            }
        }
        let mut set = Vec::new();
        for bytes in files.values() {
            encoding::encode_key(1, encoding::WireType::LengthDelimited, &mut set);
            encoding::encode_varint(bytes.len() as u64, &mut set);
            set.put_slice(bytes);
        }
        let version = if client.path == PATHS[0] {
            "v1"
        } else {
            "v1alpha"
        };
        Ok((set, super::Reflected { version, services }))
    }

    /// A tonic channel whose connections are the connector's byte streams
    /// (TCP, or TLS with the run's CA, server name and client certificate).
    async fn channel(connector: &Connector) -> Result<Channel, String> {
        let connector = connector.clone();
        // `http` even over TLS: tonic refuses an `https` URI unless it does
        // the TLS itself, and here the connector already did.
        tonic::transport::Endpoint::from_shared(format!("http://{}", connector.address()))
            .map_err(|e| e.to_string())?
            .connect_with_connector(tower::service_fn(move |_| {
                let connector = connector.clone();
                async move {
                    let (io, _) = connector.connect_io().await?;
                    Ok::<_, crate::drive::DriveError>(hyper_util::rt::TokioIo::new(io))
                }
            }))
            .await
            .map_err(|e| format!("cannot connect: {}", describe(&e)))
    }

    /// An error with its sources (tonic's own message is often just "transport error").
    fn describe(error: &dyn std::error::Error) -> String {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(e) = source {
            text.push_str(&format!(": {e}"));
            source = e.source();
        }
        text
    }

    /// One request on a fresh reflection stream; the answer, or the error
    /// it carried (with the gRPC status code when the call itself failed).
    async fn ask(
        client: &mut Client,
        request: MessageRequest,
    ) -> Result<MessageResponse, (Option<Code>, String)> {
        let status = |s: tonic::Status| {
            let version = client.path.split('.').nth(2).unwrap_or("?");
            (
                Some(s.code()),
                format!("reflection {version}: {:?}: {}", s.code(), s.message()),
            )
        };
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(request),
        };
        client
            .grpc
            .ready()
            .await
            .map_err(|e| (None, format!("cannot connect: {}", describe(&e))))?;
        let mut answers = client
            .grpc
            .streaming::<_, _, ServerReflectionResponse, _>(
                tonic::Request::new(futures::stream::iter([request])),
                PathAndQuery::from_static(client.path),
                tonic_prost::ProstCodec::default(),
            )
            .await
            .map_err(status)?
            .into_inner();
        let answer = answers
            .message()
            .await
            .map_err(status)?
            .ok_or((None, "the stream ended without an answer".to_string()))?;
        match answer.message_response {
            Some(MessageResponse::ErrorResponse(e)) => {
                Err((None, format!("error {}: {}", e.error_code, e.error_message)))
            }
            Some(other) => Ok(other),
            None => Err((None, "an empty answer".into())),
        }
    }

    /// Just the two fields of FileDescriptorProto the walk needs.
    mod prost_types_lite {
        /// `google.protobuf.FileDescriptorProto`, name and imports only.
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct File {
            /// Field 1: the file's path.
            #[prost(string, tag = "1")]
            pub name: String,
            /// Field 3: the files it imports.
            #[prost(string, repeated, tag = "3")]
            pub dependency: Vec<String>,
        }
    }
}
