//! What a finished MP4's `moov` says beyond what the muxer wrote: names for its tracks
//! (the handler name in `mdia/hdlr`, what ffprobe and the players built on FFmpeg show,
//! and a `udta/name` box, the QuickTime track name) and chapters (a `chpl` box in the
//! movie's `udta`, as FFmpeg and most players read them), written into a file of a file whose media data all comes before its
//! `moov` (as `mp4mux` writes a file that is not fragmented; metadata boxes such as its
//! XMP `uuid` may follow), so no sample moves. Pure.

use std::time::Duration;

/// Why a file's `moov` could not be edited.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MoovError {
    /// The boxes do not add up.
    #[error("not an MP4 file: {0}")]
    Malformed(&'static str),
    /// Media data follows `moov`, so it cannot grow in place.
    #[error("media data follows the moov box")]
    MoovNotLast,
}

/// One box: its type and where its payload is within the buffer.
struct BoxAt {
    kind: [u8; 4],
    start: usize,
    payload: usize,
    end: usize,
}

fn boxes(data: &[u8], from: usize, to: usize) -> Result<Vec<BoxAt>, MoovError> {
    let mut out = Vec::new();
    let mut at = from;
    while at < to {
        if at + 8 > to {
            return Err(MoovError::Malformed("a box header runs past its parent"));
        }
        let size = u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes")) as usize;
        let kind: [u8; 4] = data[at + 4..at + 8].try_into().expect("4 bytes");
        let (payload, size) = match size {
            1 if at + 16 <= to => {
                let large = u64::from_be_bytes(data[at + 8..at + 16].try_into().expect("8"));
                (at + 16, large as usize)
            }
            0 => (at + 8, to - at),
            s => (at + 8, s),
        };
        if size < payload - at || at + size > to {
            return Err(MoovError::Malformed("a box's size runs past its parent"));
        }
        out.push(BoxAt {
            kind,
            start: at,
            payload,
            end: at + size,
        });
        at += size;
    }
    Ok(out)
}

fn boxed(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(payload);
    out
}

/// `mdia` with its `hdlr`'s name set to `name`.
fn named_mdia(data: &[u8], mdia: &BoxAt, name: &str) -> Result<Vec<u8>, MoovError> {
    let mut payload = Vec::new();
    for child in boxes(data, mdia.payload, mdia.end)? {
        // version/flags, pre_defined, handler_type, reserved[3], then the name.
        if &child.kind == b"hdlr" && child.end - child.payload >= 24 {
            let mut hdlr = data[child.payload..child.payload + 24].to_vec();
            hdlr.extend_from_slice(name.as_bytes());
            hdlr.push(0);
            payload.extend(boxed(b"hdlr", &hdlr));
        } else {
            payload.extend_from_slice(&data[child.start..child.end]);
        }
    }
    Ok(boxed(b"mdia", &payload))
}

/// `trak` named `name`: its handler's name, and a `name` box at the end of its `udta`
/// (made if missing).
fn named_trak(data: &[u8], trak: &BoxAt, name: &str) -> Result<Vec<u8>, MoovError> {
    let name_box = boxed(b"name", name.as_bytes());
    let mut payload = Vec::new();
    let mut had_udta = false;
    for child in boxes(data, trak.payload, trak.end)? {
        if &child.kind == b"mdia" {
            payload.extend(named_mdia(data, &child, name)?);
        } else if &child.kind == b"udta" {
            had_udta = true;
            let mut udta = data[child.payload..child.end].to_vec();
            udta.extend_from_slice(&name_box);
            payload.extend(boxed(b"udta", &udta));
        } else {
            payload.extend_from_slice(&data[child.start..child.end]);
        }
    }
    if !had_udta {
        payload.extend(boxed(b"udta", &name_box));
    }
    Ok(boxed(b"trak", &payload))
}

/// The `chpl` box of `chapters` (start, title): version 1, start times in 100 ns units,
/// at most 255 chapters of titles up to 255 bytes.
fn chpl(chapters: &[(Duration, String)]) -> Vec<u8> {
    let list = &chapters[..chapters.len().min(255)];
    let mut payload = vec![1, 0, 0, 0, 0, 0, 0, 0, list.len() as u8];
    for (start, title) in list {
        payload.extend_from_slice(&((start.as_nanos() / 100) as u64).to_be_bytes());
        let mut cut = title.len().min(255);
        while !title.is_char_boundary(cut) {
            cut -= 1;
        }
        payload.push(cut as u8);
        payload.extend_from_slice(&title.as_bytes()[..cut]);
    }
    boxed(b"chpl", &payload)
}

/// Edits `file` (an MP4 in memory) in place: track `i` gets `names[i]` (`None`, or a
/// track past the list, keeps its name), and the movie gets `chapters` (none: none added).
pub fn edit(
    file: &mut Vec<u8>,
    names: &[Option<&str>],
    chapters: &[(Duration, String)],
) -> Result<(), MoovError> {
    let top = boxes(file, 0, file.len())?;
    let Some(moov) = top.iter().find(|b| &b.kind == b"moov") else {
        return Err(MoovError::Malformed("no moov box"));
    };
    let after = top.iter().filter(|b| b.start >= moov.end);
    if after.clone().any(|b| matches!(&b.kind, b"mdat" | b"moof")) {
        return Err(MoovError::MoovNotLast);
    }
    let tail = after.map(|b| b.start).min().map(|s| file[s..].to_vec());
    let mut payload = Vec::new();
    let mut track = 0;
    let chapters_box = (!chapters.is_empty()).then(|| chpl(chapters));
    let mut had_udta = false;
    for child in boxes(file, moov.payload, moov.end)? {
        if let (b"udta", Some(c)) = (&child.kind, &chapters_box) {
            had_udta = true;
            let mut udta = file[child.payload..child.end].to_vec();
            udta.extend_from_slice(c);
            payload.extend(boxed(b"udta", &udta));
        } else if &child.kind == b"trak" {
            match names.get(track).copied().flatten() {
                Some(name) => payload.extend(named_trak(file, &child, name)?),
                None => payload.extend_from_slice(&file[child.start..child.end]),
            }
            track += 1;
        } else {
            payload.extend_from_slice(&file[child.start..child.end]);
        }
    }
    if let (false, Some(c)) = (had_udta, chapters_box) {
        payload.extend(boxed(b"udta", &c));
    }
    let start = moov.start;
    file.truncate(start);
    file.extend(boxed(b"moov", &payload));
    file.extend(tail.unwrap_or_default());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut hdlr = vec![0u8; 24];
        hdlr[8..12].copy_from_slice(b"soun");
        hdlr.extend_from_slice(b"SoundHandler\0");
        let mdia = boxed(
            b"mdia",
            &[boxed(b"mdhd", &[2; 6]), boxed(b"hdlr", &hdlr)].concat(),
        );
        let trak1 = boxed(b"trak", &[boxed(b"tkhd", &[1; 4]), mdia].concat());
        let trak2 = boxed(
            b"trak",
            &[
                boxed(b"tkhd", &[3; 4]),
                boxed(b"udta", &boxed(b"meta", &[4; 3])),
            ]
            .concat(),
        );
        let moov = boxed(b"moov", &[boxed(b"mvhd", &[0; 8]), trak1, trak2].concat());
        [boxed(b"ftyp", b"isom"), boxed(b"mdat", &[9; 5]), moov].concat()
    }

    /// Each track's `udta/name`, in order.
    fn names(file: &[u8]) -> Vec<Option<String>> {
        let top = boxes(file, 0, file.len()).unwrap();
        let moov = top.iter().find(|b| &b.kind == b"moov").unwrap();
        boxes(file, moov.payload, moov.end)
            .unwrap()
            .iter()
            .filter(|b| &b.kind == b"trak")
            .map(|t| {
                let udta = boxes(file, t.payload, t.end)
                    .unwrap()
                    .into_iter()
                    .find(|b| &b.kind == b"udta")?;
                let name = boxes(file, udta.payload, udta.end)
                    .unwrap()
                    .into_iter()
                    .find(|b| &b.kind == b"name")?;
                Some(String::from_utf8(file[name.payload..name.end].to_vec()).unwrap())
            })
            .collect()
    }

    #[test]
    fn tracks_get_their_names_and_the_rest_is_kept() {
        let mut f = sample();
        let before = f.clone();
        edit(&mut f, &[Some("mix"), Some("ålice")], &[]).unwrap();
        assert_eq!(names(&f), [Some("mix".into()), Some("ålice".into())]);
        let at = f.windows(4).position(|w| w == b"soun").unwrap();
        assert_eq!(&f[at + 16..at + 20], b"mix\0");
        // ftyp and mdat are untouched, and the file still parses as boxes.
        assert_eq!(f[..25], before[..25]);
        assert!(boxes(&f, 0, f.len()).is_ok());
        let mut g = sample();
        edit(&mut g, &[None, Some("bob")], &[]).unwrap();
        assert_eq!(names(&g), [None, Some("bob".into())]);
    }

    #[test]
    fn chapters_go_in_the_movies_udta() {
        let mut f = sample();
        let chapters = [
            (Duration::ZERO, "Ada".to_owned()),
            (Duration::from_millis(12_345), "é".repeat(200)),
        ];
        edit(&mut f, &[], &chapters).unwrap();
        let at = f.windows(4).position(|w| w == b"chpl").unwrap() + 4;
        assert_eq!(&f[at..at + 9], &[1, 0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(&f[at + 9..at + 17], &0u64.to_be_bytes());
        assert_eq!(&f[at + 17..at + 21], b"\x03Ada");
        assert_eq!(&f[at + 21..at + 29], &123_450_000u64.to_be_bytes());
        assert_eq!(f[at + 29], 254, "cut at a character boundary");
        assert!(boxes(&f, 0, f.len()).is_ok());
    }

    #[test]
    fn a_file_it_cannot_grow_in_place_is_refused() {
        let mut f = sample();
        f.extend(boxed(b"uuid", &[7; 3]));
        edit(&mut f, &[Some("x")], &[]).unwrap();
        assert_eq!(names(&f)[0].as_deref(), Some("x"));
        assert_eq!(f[f.len() - 11..], boxed(b"uuid", &[7; 3])[..]);
        f.extend(boxed(b"mdat", &[]));
        assert_eq!(edit(&mut f, &[Some("x")], &[]), Err(MoovError::MoovNotLast));
        let mut junk = b"\x00\x00\x00\x30moov".to_vec();
        assert!(matches!(
            edit(&mut junk, &[], &[]),
            Err(MoovError::Malformed(_))
        ));
    }
}
