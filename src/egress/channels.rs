//! Where each participant's sound goes in the stereo mix: a participant routed by the
//! request keeps that channel; the others get the one the egress's mixing mode gives the
//! order they were first heard in, fixed from then on (as LiveKit assigns it per track).

use std::collections::HashMap;

use crate::request::select::{Channel, Mixing};
use crate::source::ParticipantInfo;

/// Each participant's channel, by identity.
#[derive(Debug, Default)]
pub(crate) struct ChannelMap {
    heard: HashMap<String, Channel>,
    current: Vec<Channel>,
}

impl ChannelMap {
    /// The channel of each of `participants` (in their order), assigning one under
    /// `mixing` to everyone heard for the first time.
    pub(crate) fn assign(
        &mut self,
        participants: &[ParticipantInfo],
        mixing: Mixing,
    ) -> &[Channel] {
        for p in participants {
            if !self.heard.contains_key(&p.identity) {
                let order = self.heard.len();
                let channel = p.channel.unwrap_or_else(|| mixing.channel(order, p.agent));
                self.heard.insert(p.identity.clone(), channel);
            }
        }
        self.current.clear();
        self.current.extend(participants.iter().map(|p| {
            p.channel
                .unwrap_or_else(|| self.heard.get(&p.identity).copied().unwrap_or_default())
        }));
        &self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people(names: &[&str]) -> Vec<ParticipantInfo> {
        names.iter().map(|n| ParticipantInfo::new(*n, *n)).collect()
    }

    #[test]
    fn alternate_mixing_keeps_each_channel_when_others_leave() {
        let mut map = ChannelMap::default();
        let m = Mixing::DualChannelAlternate;
        let (l, r) = (Channel::Left, Channel::Right);
        assert_eq!(map.assign(&people(&["a", "b", "c"]), m), [l, r, l]);
        // b leaves: c keeps the left, a newcomer d is the fourth heard (right).
        assert_eq!(map.assign(&people(&["a", "c", "d"]), m), [l, l, r]);
        // b comes back to the channel it had.
        assert_eq!(map.assign(&people(&["b", "a"]), m), [r, l]);
    }

    #[test]
    fn agents_go_left_and_routed_participants_keep_their_route() {
        let mut map = ChannelMap::default();
        let mut ps = people(&["agent", "user", "routed"]);
        ps[0].agent = true;
        ps[2].channel = Some(Channel::Both);
        let got = map.assign(&ps, Mixing::DualChannelAgent).to_vec();
        assert_eq!(got, [Channel::Left, Channel::Right, Channel::Both]);
        assert_eq!(map.assign(&ps, Mixing::Default), got, "fixed once heard");
    }

    #[test]
    fn default_mixing_puts_everyone_on_both() {
        let mut map = ChannelMap::default();
        assert_eq!(
            map.assign(&people(&["a", "b"]), Mixing::Default),
            [Channel::Both; 2]
        );
    }
}
