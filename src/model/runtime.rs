//! The ONNX Runtime environment: loads `libonnxruntime.so` once (`ort` load-dynamic) and creates sessions on the
//! first configured execution provider that registers, logging which one runs.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::environment::Environment;
use ort::session::Session;
use tracing::{info, warn};

use super::config::{ExecutionProvider, RuntimeConfig};
use super::ModelError;

/// The process's ONNX Runtime environment and the library it came from.
///
/// `ort` allows one environment per process, ever (a second `build` fails even after the first is dropped), and
/// loads one library per process: this is the only process-wide state in facewatch, and it mirrors `ort`'s own.
static ENVIRONMENT: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);

/// The shared environment, created on first use from `library`.
fn shared_environment(library: &Path) -> Result<Environment, ModelError> {
    let mut slot = ENVIRONMENT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((loaded, env)) = slot.as_ref() {
        if loaded != library {
            warn!(loaded = %loaded.display(), requested = %library.display(), "ONNX Runtime is already loaded from another library; keeping it.");
        }
        return Ok(env.clone());
    }
    let runtime_err = |source: Box<dyn std::error::Error + Send + Sync>| ModelError::RuntimeLibrary { path: library.to_path_buf(), source };
    // ONNX Runtime's POSIX builds keep a device id and an event queue under ~/.cache and look up a Microsoft
    // host unless this is set before the library loads; the environment switch below covers the rest.
    if std::env::var_os("ORT_DISABLE_TELEMETRY").is_none() {
        std::env::set_var("ORT_DISABLE_TELEMETRY", "1");
    }
    let builder = ort::init_from(library).map_err(|e| runtime_err(e.into()))?;
    let env = builder.with_name("facewatch").with_telemetry(false).build().map_err(|e| runtime_err(e.into()))?;
    *slot = Some((library.to_path_buf(), env.clone()));
    Ok(env)
}

/// The ONNX Runtime library to load: `ORT_DYLIB_PATH` when set, else `runtime.ort_library`.
pub fn library_path(cfg: &RuntimeConfig) -> PathBuf {
    std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from).unwrap_or_else(|| crate::paths::resolve_path(&cfg.ort_library))
}

/// A loaded ONNX Runtime and the provider preference for the sessions it creates.
#[derive(Clone)]
pub struct Runtime {
    env: Environment,
    providers: Vec<ExecutionProvider>,
    intra_threads: usize,
    library: PathBuf,
    trt_cache: PathBuf,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("library", &self.library).field("providers", &self.providers).finish_non_exhaustive()
    }
}

/// An inference session and the provider it runs on.
pub struct LoadedSession {
    /// The session.
    pub session: Session,
    /// The provider that registered.
    pub provider: ExecutionProvider,
}

impl Runtime {
    /// Loads the ONNX Runtime library named by `ORT_DYLIB_PATH` or the configuration.
    ///
    /// The environment is shared by every `Runtime` of the process (see `ENVIRONMENT`).
    pub fn new(cfg: &RuntimeConfig) -> Result<Self, ModelError> {
        let library = library_path(cfg);
        if !library.is_file() {
            return Err(ModelError::RuntimeLibraryMissing { path: library });
        }
        let env = shared_environment(&library)?;
        Ok(Self {
            env,
            providers: cfg.execution_providers.clone(),
            intra_threads: cfg.intra_threads,
            library,
            trt_cache: crate::paths::resolve_path(&cfg.trt_cache_dir),
        })
    }

    /// Path of the loaded library.
    pub fn library(&self) -> &Path {
        &self.library
    }

    /// Creates a session for a checked model file on the first provider that registers.
    pub fn session(&self, model: &Path) -> Result<LoadedSession, ModelError> {
        self.session_of(model, None, &[])
    }

    /// Creates a session from `bytes`, the checked file `model` as changed in memory (`repair::free_input_size`),
    /// with its free dimensions fixed to `dims` (name, size); `model` names it in messages.
    pub fn session_from_bytes(&self, model: &Path, bytes: &[u8], dims: &[(&str, i64)]) -> Result<LoadedSession, ModelError> {
        self.session_of(model, Some(bytes), dims)
    }

    fn session_of(&self, model: &Path, bytes: Option<&[u8]>, dims: &[(&str, i64)]) -> Result<LoadedSession, ModelError> {
        let inference = |source: ort::Error| ModelError::Inference { model: model.to_path_buf(), source };
        let mut builder = Session::builder(&self.env).map_err(inference)?;
        if self.intra_threads > 0 {
            builder = builder.with_intra_threads(self.intra_threads).map_err(|e| inference(e.into()))?;
        }
        for &(name, size) in dims {
            builder = builder.with_dimension_override(name, size).map_err(|e| inference(e.into()))?;
        }
        let mut tried = Vec::new();
        let mut chosen = None;
        for &provider in &self.providers {
            let dispatch = match provider {
                ExecutionProvider::Cpu => {
                    chosen = Some(provider);
                    break;
                }
                ExecutionProvider::Cuda => ort::ep::CUDA::default().build().error_on_failure(),
                ExecutionProvider::Tensorrt => ort::ep::TensorRT::default()
                    .with_engine_cache(true)
                    .with_engine_cache_path(self.trt_cache.display())
                    .with_fp16(true)
                    .build()
                    .error_on_failure(),
            };
            match builder.with_execution_providers([dispatch]) {
                Ok(b) => {
                    builder = b;
                    chosen = Some(provider);
                    break;
                }
                Err(e) => {
                    warn!(%provider, model = %model.display(), error = %e, "Execution provider unavailable, trying the next one.");
                    tried.push(format!("{provider}: {e}"));
                    builder = e.recover();
                }
            }
        }
        let Some(provider) = chosen else {
            return Err(ModelError::NoProvider { model: model.to_path_buf(), tried: tried.join("; ") });
        };
        let session = match bytes {
            Some(b) => builder.commit_from_memory(b),
            None => builder.commit_from_file(model),
        }
        .map_err(inference)?;
        info!(%provider, model = %model.display(), "Inference session ready.");
        Ok(LoadedSession { session, provider })
    }
}
