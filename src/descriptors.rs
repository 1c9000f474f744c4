//! Where message types come from: the embedded contract, `--proto` files
//! compiled at run time with protox, or the target's server reflection. The
//! pool always holds the contract, so the Observer can be asked whatever the
//! user added.

use crate::proto::CONTRACT_DESCRIPTOR_SET;
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

    /// Adds every service the target lists through server reflection (v1),
    /// with the files they need. Plain TCP only: reflection over TLS is not
    /// supported yet.
    pub async fn add_reflected(
        &mut self,
        target: &str,
        timeout: Duration,
    ) -> Result<(), DescriptorError> {
        let fail = |what: String| DescriptorError::Reflect {
            target: target.to_string(),
            what,
        };
        let set = tokio::time::timeout(timeout, reflect::fetch(target))
            .await
            .map_err(|_| fail(format!("no answer within {timeout:?}")))?
            .map_err(fail)?;
        self.pool
            .decode_file_descriptor_set(set.as_slice())
            .map_err(|source| DescriptorError::Pool {
                from: format!("reflection on {target}"),
                source,
            })
    }

    /// The method at gRPC path `/package.Service/Method`.
    pub fn method(&self, path: &str) -> Option<MethodDescriptor> {
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        self.pool
            .get_service_by_name(service)?
            .methods()
            .find(|m| m.name() == method)
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

/// A small server reflection v1 client on tonic (reflection is not what is
/// being checked, so tonic's client is fine here).
mod reflect {
    use prost::{bytes::BufMut, encoding};
    use std::collections::{BTreeMap, VecDeque};
    use tonic_reflection::pb::v1::{
        server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        ServerReflectionRequest,
    };

    /// Asks for the service list, then the files defining each service and
    /// their dependencies, and returns them as an encoded FileDescriptorSet.
    pub async fn fetch(target: &str) -> Result<Vec<u8>, String> {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{target}"))
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let mut client = ServerReflectionClient::new(channel);
        let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let services = match ask(&mut client, MessageRequest::ListServices(String::new())).await? {
            MessageResponse::ListServicesResponse(list) => list.service.into_iter().map(|s| s.name),
            other => return Err(format!("unexpected answer to list_services: {other:?}")),
        };
        let mut queue: VecDeque<MessageRequest> = services
            .filter(|s| !s.starts_with("grpc.reflection."))
            .map(MessageRequest::FileContainingSymbol)
            .collect();
        while let Some(request) = queue.pop_front() {
            let MessageResponse::FileDescriptorResponse(found) = ask(&mut client, request).await?
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
        Ok(set)
    }

    /// One request on a fresh reflection stream; the answer or the error it carried.
    async fn ask(
        client: &mut ServerReflectionClient<tonic::transport::Channel>,
        request: MessageRequest,
    ) -> Result<MessageResponse, String> {
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(request),
        };
        let mut answers = client
            .server_reflection_info(futures::stream::iter([request]))
            .await
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
            .into_inner();
        let answer = answers
            .message()
            .await
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
            .ok_or("the stream ended without an answer")?;
        match answer.message_response {
            Some(MessageResponse::ErrorResponse(e)) => {
                Err(format!("error {}: {}", e.error_code, e.error_message))
            }
            Some(other) => Ok(other),
            None => Err("an empty answer".into()),
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
