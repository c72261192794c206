//! What a node holds: the machine a capacity was measured on, the cost profile that
//! `tessera bench` writes and the worker admits egresses by, and the node's core count.
//! Shared by `bench` (which measures) and `service` (which admits), so neither depends on
//! the other.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The machine a report was measured on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model.
    pub cpu: String,
    /// Logical CPUs.
    pub cores: usize,
    /// The compositor the rooms used: `gpu: ADAPTER (KIND)` or `cpu`.
    pub gpu: String,
    /// H.264 encoder element.
    pub encoder: String,
    /// The participants' video decoder: `FACTORY (KIND)`, from the decoder probe (empty in
    /// reports from before it).
    #[serde(default)]
    pub decoder: String,
}

/// Admission costs per shape, for the service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CostProfile {
    /// Node the costs were measured on.
    pub machine: Option<Machine>,
    /// Per shape key.
    pub shapes: BTreeMap<String, ShapeCost>,
}

/// What one room of a shape costs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShapeCost {
    /// CPU cores per room at the measured maximum.
    pub cpu_cores_per_room: f64,
    /// Resident memory per room.
    pub memory_mib_per_room: f64,
    /// GPU milliseconds per frame per room, when measured.
    pub gpu_ms_per_frame: Option<f64>,
    /// Rooms this node held.
    pub max_rooms: u32,
}

impl CostProfile {
    /// Reads a cost profile (`tessera bench`'s `cost-profile.json`); the error names the
    /// file.
    pub fn read(path: &Path) -> Result<CostProfile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Logical CPUs of this machine.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
