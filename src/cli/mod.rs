//! Subcommands of the binary that have grown beyond a few lines.

pub mod layout_tools;
