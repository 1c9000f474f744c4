//! A session turns resolved options into a prepared run: fixtures loaded and
//! validated, the target reached (or the embedded reference started), its
//! transport checked and its capabilities probed, the snapshot store and the
//! known-failing and known-flaky lists read. The command line only parses
//! and prints around it.

use crate::{
    capabilities::{self, Capabilities, TransportError},
    descriptors::{Descriptors, Reflected},
    drive::{Connector, DriveOptions, Target, TlsOptions},
    fixture::{self, FixtureError, NamedFixture},
    known::{self, KnownListError},
    partition::Partition,
    plan::{self, NamePattern},
    reference::{ReferenceConfig, ReferenceServer, ServeError},
    run::RunConfig,
    snapshot::Store,
};
use http::{HeaderName, HeaderValue};
use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    time::Duration,
};

/// How long the target gets to accept a connection and speak HTTP/2 before
/// the run gives up with exit code 3.
pub const UNREACHABLE_AFTER: Duration = Duration::from_secs(2);

/// Everything a session needs, already parsed.
#[derive(Clone, Debug, Default)]
pub struct SessionOptions {
    /// `host:port`; the embedded reference when `None`.
    pub target: Option<String>,
    /// TLS settings, when the target speaks TLS.
    pub tls: Option<TlsOptions>,
    /// Name patterns to select and to leave out.
    pub filters: Vec<NamePattern>,
    /// Name patterns to leave out.
    pub skips: Vec<NamePattern>,
    /// Headers sent on every call (never shown).
    pub extra_headers: Vec<(HeaderName, HeaderValue)>,
    /// Multiplies every time in the fixtures.
    pub time_scale: f64,
    /// Own fixtures instead of the embedded corpus.
    pub fixtures: Option<PathBuf>,
    /// `.proto` files to compile, and their import paths.
    pub protos: Vec<PathBuf>,
    /// Import paths of `protos`.
    pub proto_paths: Vec<PathBuf>,
    /// Take the target's types from its reflection service.
    pub reflect: bool,
    /// The snapshot store.
    pub store: Store,
    /// File of fixtures expected to fail.
    pub known_failing: Option<PathBuf>,
    /// File of fixtures whose transcript varies, with reasons.
    pub known_flaky: Option<PathBuf>,
    /// `NAME=yes|no` overrides of the capability probes.
    pub assume: Vec<String>,
    /// Conversations at once.
    pub jobs: usize,
    /// Runs of each fixture.
    pub repeat: u32,
    /// Keep frame logs for `--trace`.
    pub trace: bool,
    /// Only this shard of the selection.
    pub partition: Option<Partition>,
    /// Stop starting fixtures after the first that fails the run.
    pub fail_fast: bool,
}

/// Why a session could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// An option value is unusable (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A fixture, `.proto` or descriptor problem (exit 2).
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    /// Several fixtures are bad: every one is reported (exit 2).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Fixtures(Vec<FixtureError>),
    /// Filters, skips and the partition left no fixture (exit 4).
    #[error("no fixture selected ({0})")]
    NothingSelected(String),
    /// A known-failing or known-flaky entry matches no fixture (exit 2).
    #[error(transparent)]
    KnownList(#[from] KnownListError),
    /// The descriptors could not be built (exit 2).
    #[error("{0}")]
    Descriptors(String),
    /// The target cannot be reached or does not speak HTTP/2 as addressed (exit 3).
    #[error(transparent)]
    Unreachable(#[from] TransportError),
    /// The embedded reference server did not start (exit 2).
    #[error("the embedded reference server: {0}")]
    Reference(#[source] ServeError),
    /// A list file could not be read (exit 2).
    #[error("{path}: {source}")]
    List {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}

/// A run ready to start, and what must live as long as it.
pub struct Session {
    /// The run's configuration.
    pub config: RunConfig,
    /// The embedded reference, when there is no `--target`.
    pub reference: Option<ReferenceServer>,
    /// The target as reports name it.
    pub label: String,
    /// How the target was reached.
    pub transport: String,
    /// What reflection gave, with `--reflect`.
    pub reflected: Option<Reflected>,
}

/// The contract's descriptors and those of the `.proto` files.
pub fn descriptors(
    protos: &[PathBuf],
    proto_paths: &[PathBuf],
) -> Result<Descriptors, SessionError> {
    let mut descriptors =
        Descriptors::contract().map_err(|e| SessionError::Descriptors(e.to_string()))?;
    for proto in protos {
        descriptors
            .add_proto(proto, proto_paths)
            .map_err(|e| SessionError::Descriptors(e.to_string()))?;
    }
    Ok(descriptors)
}

/// Loads the fixtures (embedded or a directory; every file that does not
/// parse is reported, not only the first) and the descriptors (the
/// contract's plus compiled `.proto` files).
pub fn load(
    fixtures: Option<&PathBuf>,
    protos: &[PathBuf],
    proto_paths: &[PathBuf],
) -> Result<(Vec<NamedFixture>, Descriptors), SessionError> {
    let texts = match fixtures {
        Some(dir) => fixture::read_dir(dir)?,
        None => fixture::read_embedded(),
    };
    let (mut parsed, mut bad) = (Vec::new(), Vec::new());
    for f in texts {
        match fixture::parse(&f.source, &f.text) {
            Ok(fixture) => parsed.push(NamedFixture {
                name: f.name,
                source: f.source,
                fixture,
            }),
            Err(e) => bad.push(e),
        }
    }
    if !bad.is_empty() {
        return Err(SessionError::Fixtures(bad));
    }
    Ok((parsed, descriptors(protos, proto_paths)?))
}

/// Validates every fixture against the descriptors; every bad one is
/// reported, each with the line and column of its field.
pub fn validate_all(
    fixtures: &[NamedFixture],
    descriptors: &Descriptors,
) -> Result<(), SessionError> {
    let bad: Vec<FixtureError> = fixtures
        .iter()
        .filter_map(|f| {
            let e = fixture::validate(f, descriptors).err()?;
            Some(match fixture::text_of(f) {
                Some(text) => e.located_in(&text),
                None => e,
            })
        })
        .collect();
    match bad.len() {
        0 => Ok(()),
        1 => Err(SessionError::Fixture(bad.into_iter().next().expect("one"))),
        _ => Err(SessionError::Fixtures(bad)),
    }
}

/// The selected fixtures, validated unless types come from reflection.
pub fn select(options: &SessionOptions) -> Result<(Vec<NamedFixture>, Descriptors), SessionError> {
    select_among(options).map(|(selected, descriptors, _)| (selected, descriptors))
}

/// [`select`], and the names of every fixture loaded (selected or not).
fn select_among(
    options: &SessionOptions,
) -> Result<(Vec<NamedFixture>, Descriptors, Vec<String>), SessionError> {
    let (fixtures, descriptors) = load(
        options.fixtures.as_ref(),
        &options.protos,
        &options.proto_paths,
    )?;
    let names: Vec<String> = fixtures.iter().map(|f| f.name.clone()).collect();
    let mut selected = plan::select(fixtures, &options.filters, &options.skips);
    if let Some(partition) = &options.partition {
        selected.retain(|f| partition.contains(&f.name));
    }
    if selected.is_empty() {
        let why = match (&options.fixtures, names.is_empty()) {
            (Some(dir), true) => format!("{} holds no *.json fixture", dir.display()),
            _ => format!(
                "{} fixtures, none left by --filter, --skip and --partition",
                names.len()
            ),
        };
        return Err(SessionError::NothingSelected(why));
    }
    // Without reflection every type is known now: a bad fixture is exit 2
    // before the target is even tried.
    if !options.reflect {
        validate_all(&selected, &descriptors)?;
    }
    Ok((selected, descriptors, names))
}

/// Prepares the run: everything before the first fixture.
pub async fn prepare(options: SessionOptions) -> Result<Session, SessionError> {
    let (selected, mut descriptors, names) = select_among(&options)?;
    let (reference, address) = match &options.target {
        Some(t) => (None, t.clone()),
        None => {
            let server = ReferenceServer::start(ReferenceConfig::default())
                .await
                .map_err(SessionError::Reference)?;
            let address = server.local_addr().to_string();
            (Some(server), address)
        }
    };
    let connector = Connector::new(Target {
        address: address.clone(),
        tls: options.tls.clone(),
    })
    .map_err(|e| SessionError::Usage(e.to_string()))?;
    let transport =
        capabilities::check_transport(&connector, options.tls.is_some(), UNREACHABLE_AFTER).await?;
    let reflected = if options.reflect {
        let reflected = descriptors
            .add_reflected(&connector, Duration::from_secs(10))
            .await
            .map_err(|e| SessionError::Descriptors(e.to_string()))?;
        validate_all(&selected, &descriptors)?;
        Some(reflected)
    } else {
        None
    };
    let mut capabilities = match &reference {
        Some(_) => Capabilities::everything(),
        None => capabilities::probe(&connector, options.time_scale)
            .await
            .map_err(|e| TransportError::NotHttp2 {
                target: address.clone(),
                what: format!("failed the capability probes: {e}"),
            })?,
    };
    for given in &options.assume {
        capabilities
            .assume(given)
            .map_err(|e| SessionError::Usage(e.to_string()))?;
    }
    let (known_failing, known_flaky) = known_lists(
        options.known_failing.as_ref(),
        options.known_flaky.as_ref(),
        &names,
    )?;
    let label = match &reference {
        Some(_) => "the embedded reference".to_string(),
        None => address,
    };
    let config = RunConfig {
        connector,
        descriptors,
        fixtures: selected,
        drive: DriveOptions {
            extra_headers: options.extra_headers,
            time_scale: options.time_scale,
            trace: options.trace,
            observer: capabilities.observer,
        },
        store: options.store,
        known_failing,
        known_flaky,
        jobs: options.jobs,
        repeat: options.repeat,
        capabilities,
        fail_fast: options.fail_fast,
    };
    Ok(Session {
        config,
        reference,
        label,
        transport: transport.to_string(),
        reflected,
    })
}

/// The known-failing and known-flaky lists, each entry expanded over the
/// fixture `names` (an entry matching none is an error).
pub fn known_lists(
    known_failing: Option<&PathBuf>,
    known_flaky: Option<&PathBuf>,
    names: &[String],
) -> Result<(BTreeSet<String>, BTreeMap<String, String>), SessionError> {
    let all = names.iter().map(String::as_str);
    let failing = match known_failing {
        Some(path) => known::expand(
            &path.display().to_string(),
            &plan::parse_known_failing(&read_list(path)?),
            all.clone(),
        )?,
        None => BTreeSet::new(),
    };
    let flaky = match known_flaky {
        Some(path) => {
            let mut covered = BTreeMap::new();
            for (entry, why) in plan::parse_known_flaky(&read_list(path)?) {
                let list = path.display().to_string();
                for name in known::expand(&list, std::slice::from_ref(&entry), all.clone())? {
                    covered.insert(name, why.clone());
                }
            }
            covered
        }
        None => BTreeMap::new(),
    };
    Ok((failing, flaky))
}

fn read_list(path: &PathBuf) -> Result<String, SessionError> {
    std::fs::read_to_string(path).map_err(|source| SessionError::List {
        path: path.clone(),
        source,
    })
}
