//! tcplife: what happened to every TCP connection in a packet capture.
//!
//! Data flows one way, one module per stage:
//! bytes → [`capture`] (frames) → [`decode`] (segments) → [`track`] (connections) →
//! [`report`] (records and sinks).

pub mod analyze;
pub mod capture;
pub mod check;
pub mod cli;
pub(crate) mod decimal;
pub mod decode;
pub mod detect;
pub(crate) mod due;
pub mod inline;
pub mod picture;
pub mod report;
pub mod sorted;
pub mod states;
pub mod time;
pub mod track;

/// The hash map of every per-connection table: foldhash is several times faster than SipHash
/// on addresses and ids and still seeded per process, so a capture cannot be crafted to
/// collide. No output depends on a map's order (records are ordered by id, episodes by time).
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// splitmix64's finaliser: every input bit moves every output bit. For hashes that must be the
/// same on every run and machine (shares, sampling, slots), where [`FastMap`]'s are seeded.
pub(crate) fn mix(x: u64) -> u64 {
    let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// splitmix64 whole: its increment added, then [`mix`] (so that 0 does not map to 0).
pub(crate) fn splitmix64(x: u64) -> u64 {
    mix(x.wrapping_add(0x9e37_79b9_7f4a_7c15))
}

/// Writes every piece, in as few calls as the writer allows: a batch of records larger than a
/// writer's buffer goes to the file (one `writev`) without being copied into the buffer first.
/// (`Write::write_all_vectored` is not stable yet.)
pub(crate) fn write_all_vectored<W: std::io::Write>(
    out: &mut W,
    mut pieces: &mut [std::io::IoSlice<'_>],
) -> std::io::Result<()> {
    // Empty pieces in front are dropped: a write of nothing would read as a closed file.
    std::io::IoSlice::advance_slices(&mut pieces, 0);
    while !pieces.is_empty() {
        match out.write_vectored(pieces) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => std::io::IoSlice::advance_slices(&mut pieces, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
