//! Why a frame could not be composited, and the limits a scene must keep.

/// Most layers one frame may draw (cells and pictures together): a 16x16 grid, the most a
/// layout rule allows, needs up to 768 (a picture and two bars per cell).
pub const MAX_LAYERS: usize = 1024;
/// Most output sizes one compositor draws (the main frame, HLS renditions, thumbnails).
pub const MAX_TARGETS: usize = 8;

/// Why a frame could not be composited.
#[derive(Debug, thiserror::Error)]
pub enum CompositorError {
    /// Every staging buffer is waiting to be read: call `receive_frame` first.
    #[error("readback ring is full; receive a frame first")]
    RingFull,
    /// More layers than [`MAX_LAYERS`].
    #[error("too many layers: {0} (max {MAX_LAYERS})")]
    TooManyLayers(usize),
    /// The output size is unusable.
    #[error("output size {0}x{1} must be even and non-zero")]
    BadSize(u32, u32),
    /// Mapping a staging buffer failed (device lost).
    #[error("GPU readback failed: {0}")]
    Readback(String),
    /// Text could not be prepared (the glyph atlas is full).
    #[error("text: {0}")]
    Text(String),
    /// No such target, or more than [`MAX_TARGETS`].
    #[error("no output target {0} (at most {MAX_TARGETS})")]
    NoTarget(usize),
}
