//! Access control for the egresses' virtual displays: every Xvfb starts with `-auth` on
//! one authority file of this user (in the web root, mode 0600) holding a random
//! MIT-MAGIC-COOKIE-1 for any display, and only clients that present it (the egress's
//! Chromium, the capture in this process, through `XAUTHORITY`) may connect. Without it
//! any local user could connect to an egress's display, watch it and type into its
//! browser.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The authority file's name in the web root.
const FILE: &str = "xauthority";
/// Xau's family for an entry that matches any address.
const FAMILY_WILD: u16 = 0xffff;
const COOKIE_NAME: &[u8] = b"MIT-MAGIC-COOKIE-1";

/// Where the authority file of the web root `root` is (what `XAUTHORITY` names).
pub fn path(root: &Path) -> PathBuf {
    root.join(FILE)
}

/// One authority entry for every address and display with `cookie`, in Xau's format
/// (big-endian 16-bit lengths before each field).
pub fn entry(cookie: &[u8; 16]) -> Vec<u8> {
    let mut e = FAMILY_WILD.to_be_bytes().to_vec();
    for field in [&[][..], &[][..], COOKIE_NAME, &cookie[..]] {
        e.extend_from_slice(&(field.len() as u16).to_be_bytes());
        e.extend_from_slice(field);
    }
    e
}

/// Makes sure the web root `root` (already checked: ours, 0700) holds an authority file:
/// kept when it is a regular file of ours, else written anew (0600, never through a
/// link). Returns its path.
pub fn ensure(root: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let file = path(root);
    // SAFETY: geteuid(2) has no preconditions and touches no memory.
    let me = unsafe { libc::geteuid() };
    match std::fs::symlink_metadata(&file) {
        Ok(m) if m.is_file() && m.uid() == me && m.mode() & 0o077 == 0 && m.len() > 0 => {
            return Ok(file);
        }
        Ok(_) => std::fs::remove_file(&file)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let cookie: [u8; 16] = rand::random();
    // Written under a temporary name and renamed: a display starting meanwhile in
    // another process reads the old file or the new one, never half of one.
    let tmp = root.join(format!("{FILE}.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    f.write_all(&entry(&cookie))?;
    f.sync_all()?;
    std::fs::rename(&tmp, &file)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_is_xaus_wildcard_cookie() {
        let e = entry(&[7; 16]);
        assert_eq!(&e[..2], &[0xff, 0xff]);
        assert_eq!(&e[2..6], &[0, 0, 0, 0], "any address, any display");
        assert_eq!(&e[6..8], &[0, 18]);
        assert_eq!(&e[8..26], COOKIE_NAME);
        assert_eq!(&e[26..28], &[0, 16]);
        assert_eq!(&e[28..], &[7; 16]);
    }

    #[test]
    fn the_file_is_private_and_kept_once_made() {
        use std::os::unix::fs::MetadataExt;
        let root = tempfile::tempdir().unwrap();
        let f = ensure(root.path()).unwrap();
        let m = std::fs::metadata(&f).unwrap();
        assert_eq!(m.mode() & 0o777, 0o600);
        assert_eq!(m.len(), 44);
        let first = std::fs::read(&f).unwrap();
        ensure(root.path()).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), first, "kept");
        // A link planted in its place is replaced, never followed.
        std::fs::remove_file(&f).unwrap();
        let victim = root.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, &f).unwrap();
        ensure(root.path()).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert!(
            !std::fs::symlink_metadata(&f)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
}
