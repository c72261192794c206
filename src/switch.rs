//! On/off switches read from the environment (`TESSERA_HW_DECODE`, `TESSERA_GPU_BATCH`):
//! a feature is on unless its variable says off.

/// Whether `value` (a variable's text, if set) turns a feature off: `0`, `false`, `off`
/// or `no`, in any case, spaces around ignored.
pub(crate) fn is_off(value: Option<&str>) -> bool {
    matches!(
        value.map(str::trim).map(str::to_ascii_lowercase).as_deref(),
        Some("0" | "false" | "off" | "no")
    )
}

/// Whether the environment variable `name` turns its feature off.
pub(crate) fn env_is_off(name: &str) -> bool {
    is_off(std::env::var(name).ok().as_deref())
}

#[cfg(test)]
mod tests {
    use super::is_off;

    #[test]
    fn off_is_said_four_ways_and_anything_else_is_on() {
        for off in ["0", "false", " Off ", "NO"] {
            assert!(is_off(Some(off)), "{off:?}");
        }
        for on in ["1", "true", "on", "", "nope"] {
            assert!(!is_off(Some(on)), "{on:?}");
        }
        assert!(!is_off(None));
    }
}
