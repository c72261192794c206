//! The process's one wgpu device: a hardware adapter when there is one, Mesa's lavapipe
//! (a CPU Vulkan driver) otherwise. Shared by every egress of the process.

use std::sync::{Arc, OnceLock};

use super::batch::SubmitBatcher;
use super::pipelines::Pipelines;

/// Why no GPU device could be opened.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// No adapter at all (no Vulkan/Metal/DX12/GL driver, not even lavapipe).
    #[error("no GPU adapter found (install mesa-vulkan-drivers for a software fallback)")]
    NoAdapter,
    /// `TESSERA_GPU` named an adapter that does not exist.
    #[error("TESSERA_GPU={0:?} matches no adapter (found: {1})")]
    NoMatch(String, String),
    /// The adapter refused to open a device.
    #[error("opening the GPU device failed: {0}")]
    Device(#[from] wgpu::RequestDeviceError),
}

/// The shared device.
pub struct GpuContext {
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// What the adapter is.
    pub info: wgpu::AdapterInfo,
    /// Whether GPU timestamps can be written at pass boundaries (to time frames).
    pub timestamps: bool,
    /// Pipelines, compiled on first use and shared by every compositor.
    pipelines: OnceLock<Pipelines>,
    /// Glyphon's pipelines for text, made on first use.
    pub(super) text_cache: OnceLock<glyphon::Cache>,
    /// Combines the frames of every compositor that has one ready into one submission.
    pub(super) batcher: Arc<SubmitBatcher>,
    /// Whether new compositors batch their submissions (`TESSERA_GPU_BATCH=0`: no).
    batching: bool,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.info.name)
            .field("backend", &self.info.backend)
            .finish()
    }
}

/// Preference among adapter kinds: real GPUs first, the CPU fallback last.
fn rank(kind: wgpu::DeviceType) -> u8 {
    match kind {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

impl GpuContext {
    /// Opens the best adapter: `TESSERA_GPU` (a substring of the adapter name) if set,
    /// else a discrete GPU, an integrated one, ..., and a CPU adapter last.
    pub fn new() -> Result<Arc<GpuContext>, GpuError> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
        let wanted = std::env::var("TESSERA_GPU").ok().filter(|s| !s.is_empty());
        let mut candidates: Vec<_> = adapters
            .into_iter()
            .filter(|a| a.get_info().backend != wgpu::Backend::Noop)
            .collect();
        let found = candidates
            .iter()
            .map(|a| a.get_info().name)
            .collect::<Vec<_>>()
            .join(", ");
        if let Some(w) = &wanted {
            candidates.retain(|a| a.get_info().name.to_lowercase().contains(&w.to_lowercase()));
            if candidates.is_empty() {
                return Err(GpuError::NoMatch(w.clone(), found));
            }
        }
        // Vulkan before GL for the same device kind.
        candidates.sort_by_key(|a| {
            let i = a.get_info();
            (rank(i.device_type), i.backend != wgpu::Backend::Vulkan)
        });
        let adapter = candidates.into_iter().next().ok_or(GpuError::NoAdapter)?;
        let info = adapter.get_info();
        let timestamp = adapter.features() & wgpu::Features::TIMESTAMP_QUERY;
        let (device, queue) =
            pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
                label: Some("tessera"),
                required_features: timestamp,
                required_limits: wgpu::Limits::default(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            }))?;
        tracing::info!(
            adapter = %info.name,
            kind = ?info.device_type,
            backend = ?info.backend,
            driver = %info.driver_info,
            timestamps = !timestamp.is_empty(),
            considered = %found,
            "GPU device opened"
        );
        Ok(Arc::new(GpuContext {
            device,
            queue,
            info,
            timestamps: !timestamp.is_empty(),
            pipelines: OnceLock::new(),
            text_cache: OnceLock::new(),
            batcher: SubmitBatcher::new(),
            batching: !crate::switch::env_is_off("TESSERA_GPU_BATCH"),
        }))
    }

    /// Whether new compositors put their frames in the device's batched submissions.
    pub fn batching(&self) -> bool {
        self.batching
    }

    /// Batched submissions so far and the frames (command buffers) they carried.
    pub fn batch_counts(&self) -> (u64, u64) {
        self.batcher.counts()
    }

    /// The shared pipelines (compiled on first call).
    pub(super) fn pipelines(&self) -> &Pipelines {
        self.pipelines.get_or_init(|| Pipelines::new(&self.device))
    }

    /// Whether this is a software (CPU) adapter such as lavapipe.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }
}
