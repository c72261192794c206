//! What a subscriber offer says about its m-lines: which track each `mid` carries.
//!
//! LiveKit reuses m-lines: after an unsubscribe a later offer may put another track on the
//! same mid, so the mapping is re-read from every offer (never cached per mid). The track
//! sid comes from the offer's `mid_to_track_id` when the server sends it, else from the
//! m-line's `a=msid:<participant sid>|<track sid> <track sid>`.

use std::collections::HashMap;
use std::net::SocketAddr;

/// One audio or video m-line of an offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferedMedia {
    /// The m-line's `a=mid`.
    pub mid: String,
    /// `audio` or `video`.
    pub kind: String,
    /// The track sid (`TR_…`) it carries, when known.
    pub track_sid: Option<String>,
    /// The publishing participant's sid (`PA_…`), when the msid names it.
    pub participant_sid: Option<String>,
    /// Whether the server sends on it (`sendonly`/`sendrecv`; an unused m-line is
    /// `inactive` or has port 0).
    pub active: bool,
}

/// The audio and video m-lines of `sdp`, in order; `mid_to_track_id` (from the offer's
/// `SessionDescription`) takes precedence over the msid.
pub fn offered_media(sdp: &str, mid_to_track_id: &HashMap<String, String>) -> Vec<OfferedMedia> {
    let mut out: Vec<OfferedMedia> = Vec::new();
    let mut current: Option<OfferedMedia> = None;
    let finish = |m: Option<OfferedMedia>, out: &mut Vec<OfferedMedia>| {
        if let Some(mut m) = m
            && (m.kind == "audio" || m.kind == "video")
        {
            if let Some(t) = mid_to_track_id.get(&m.mid) {
                m.track_sid = Some(t.clone());
            }
            out.push(m);
        }
    };
    for line in sdp.lines().map(str::trim_end) {
        if let Some(rest) = line.strip_prefix("m=") {
            finish(current.take(), &mut out);
            let mut parts = rest.split_whitespace();
            let kind = parts.next().unwrap_or_default().to_owned();
            let port = parts.next().unwrap_or("0");
            current = Some(OfferedMedia {
                mid: String::new(),
                kind,
                track_sid: None,
                participant_sid: None,
                active: port != "0",
            });
            continue;
        }
        let Some(m) = current.as_mut() else { continue };
        if let Some(mid) = line.strip_prefix("a=mid:") {
            m.mid = mid.trim().to_owned();
        } else if let Some(msid) = line.strip_prefix("a=msid:") {
            let mut parts = msid.split_whitespace();
            let stream = parts.next().unwrap_or_default();
            let track = parts.next();
            let (participant, stream_track) = match stream.split_once('|') {
                Some((p, t)) => (Some(p), Some(t)),
                None => (None, None),
            };
            m.participant_sid = participant.filter(|p| !p.is_empty()).map(str::to_owned);
            // The packed stream id names the track unless sync streams put a stream name
            // there (`PA_x|camera`); the msid's own track id is the sid then.
            m.track_sid = stream_track
                .filter(|t| t.starts_with("TR_"))
                .or(track)
                .filter(|t| !t.is_empty() && *t != "-")
                .map(str::to_owned);
        } else if line == "a=inactive" || line == "a=recvonly" {
            m.active = false;
        }
    }
    finish(current.take(), &mut out);
    out
}

/// Addresses to reach in place of the ones a server announces (`TESSERA_ICE_REWRITE`,
/// `HOST:PORT=HOST:PORT,…`): for media through a relay or port forward that the server
/// does not know about (tests use it to put a lossy relay in the path).
pub fn rewrites_from_env() -> HashMap<SocketAddr, SocketAddr> {
    let Ok(spec) = std::env::var("TESSERA_ICE_REWRITE") else {
        return HashMap::new();
    };
    spec.split(',')
        .filter_map(|pair| {
            let (from, to) = pair.split_once('=')?;
            Some((from.trim().parse().ok()?, to.trim().parse().ok()?))
        })
        .collect()
}

/// The address to announce in place of the recorder's own host candidate
/// (`TESSERA_ICE_ADVERTISE`, `HOST:PORT`): behind a port forward or relay.
pub fn advertised_from_env() -> Option<SocketAddr> {
    std::env::var("TESSERA_ICE_ADVERTISE")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `sdp` with the address of every `a=candidate` line found in `map` replaced.
pub fn rewrite_candidates(sdp: &str, map: &HashMap<SocketAddr, SocketAddr>) -> String {
    if map.is_empty() {
        return sdp.to_owned();
    }
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        match body.strip_prefix("a=") {
            Some(c) if c.starts_with("candidate:") => {
                out.push_str("a=");
                out.push_str(&rewrite_candidate(c, map));
                out.push_str(&line[body.len()..]);
            }
            _ => out.push_str(line),
        }
    }
    out
}

/// One `candidate:…` attribute with its address rewritten when `map` names it.
pub fn rewrite_candidate(candidate: &str, map: &HashMap<SocketAddr, SocketAddr>) -> String {
    let mut parts: Vec<String> = candidate.split(' ').map(str::to_owned).collect();
    if parts.len() > 5
        && let (Ok(ip), Ok(port)) = (parts[4].parse(), parts[5].parse())
        && let Some(to) = map.get(&SocketAddr::new(ip, port))
    {
        parts[4] = to.ip().to_string();
        parts[5] = to.port().to_string();
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\n\
        o=- 1 2 IN IP4 0.0.0.0\r\n\
        s=-\r\n\
        t=0 0\r\n\
        a=group:BUNDLE 0 1 2 3\r\n\
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
        a=mid:0\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
        a=mid:1\r\n\
        a=sendonly\r\n\
        a=msid:PA_alice|TR_cam TR_cam\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
        a=mid:2\r\n\
        a=sendonly\r\n\
        a=msid:PA_alice|camera TR_mic\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
        a=mid:3\r\n\
        a=inactive\r\n";

    #[test]
    fn each_media_line_names_its_track_and_publisher() {
        let m = offered_media(OFFER, &HashMap::new());
        assert_eq!(m.len(), 3, "the data channel line is not media");
        assert_eq!(m[0].mid, "1");
        assert_eq!(m[0].kind, "video");
        assert_eq!(m[0].track_sid.as_deref(), Some("TR_cam"));
        assert_eq!(m[0].participant_sid.as_deref(), Some("PA_alice"));
        assert!(m[0].active);
        // A sync-stream id (`PA_x|camera`) leaves the track sid to the msid's second part.
        assert_eq!(m[1].track_sid.as_deref(), Some("TR_mic"));
        assert!(!m[2].active, "an inactive line carries nothing");
        assert_eq!(m[2].track_sid, None);
    }

    #[test]
    fn candidates_are_rewritten_only_where_mapped() {
        let map = HashMap::from([(
            "127.0.0.1:7882".parse().unwrap(),
            "127.0.0.1:9000".parse().unwrap(),
        )]);
        let sdp = "m=audio 9 x\r\na=candidate:1 1 udp 2130706431 127.0.0.1 7882 typ host\r\n\
                   a=candidate:2 1 udp 2130706431 127.0.0.1 7883 typ host\r\na=mid:0\r\n";
        let out = rewrite_candidates(sdp, &map);
        assert_eq!(
            out,
            "m=audio 9 x\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9000 typ host\r\n\
             a=candidate:2 1 udp 2130706431 127.0.0.1 7883 typ host\r\na=mid:0\r\n"
        );
    }

    #[test]
    fn the_offers_own_mapping_wins() {
        let map = HashMap::from([("1".to_owned(), "TR_other".to_owned())]);
        let m = offered_media(OFFER, &map);
        assert_eq!(m[0].track_sid.as_deref(), Some("TR_other"));
    }
}
