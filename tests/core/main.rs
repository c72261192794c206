//! The compositor and layouts without GStreamer or services: GPU (lavapipe in CI) and CPU
//! compositors against known pixels, every built-in layout against its reference images,
//! and layout-file checks (with generated layouts). Fast: part of `scripts/test.sh --quick`.

mod batch;
mod compositor;
mod layout_check;
mod layout_golden;
