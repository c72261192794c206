//! A layout evaluated for the current pictures → the layers the compositor draws.

use super::{Layer, LayerContent};
use crate::layout::ResolvedLayout;
use crate::source::VideoFrame;

/// Aspect assumed for a participant with no picture yet.
const DEFAULT_ASPECT: f32 = 16.0 / 9.0;

/// For each participant (join order) its current picture, if any → cell backgrounds and
/// pictures, in draw order. Participant `i` uses texture slot `i`.
pub fn layers<'a>(layout: &ResolvedLayout, frames: &[Option<&'a VideoFrame>], width: u32, height: u32) -> Vec<Layer<'a>> {
    let aspects: Vec<f32> = frames.iter().map(|f| f.map_or(DEFAULT_ASPECT, |f| f.aspect())).collect();
    let tiles = layout.layout.tiles(&aspects, width, height);
    let mut layers = Vec::with_capacity(tiles.len() * 2);
    for tile in &tiles {
        layers.push(Layer { dst: tile.cell, content: LayerContent::Solid(layout.theme.tile) });
        if let Some(frame) = frames[tile.participant] {
            layers.push(Layer { dst: tile.dst, content: LayerContent::Picture { slot: tile.participant, frame, src: tile.src } });
        }
    }
    layers
}
