//! What passes between a driver and its target: the environment that names the inherited
//! descriptors, and the frames. A case is its id (a u64, little-endian) then its bytes; a result
//! is the id of the case it answers then the result's bytes. Ids count from 0 and go up by one a
//! case; a target's first result is [`HELLO`], with no bytes.

use std::os::fd::RawFd;
use std::time::Duration;

use crate::error::{Error, Result};

/// What a driver tells its target in [`TARGET_ENV`](super::TARGET_ENV):
/// `cases=FD,results=FD,spin_ns=N[,coverage=FD,coverage_len=N]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TargetEnv {
    pub cases: RawFd,
    pub results: RawFd,
    /// How long the target's waits for a case spin before they sleep.
    pub spin: Duration,
    /// The coverage map's descriptor and size.
    pub coverage: Option<(RawFd, usize)>,
}

impl TargetEnv {
    pub(super) fn encode(&self) -> String {
        let mut value = format!(
            "cases={},results={},spin_ns={}",
            self.cases,
            self.results,
            self.spin.as_nanos()
        );
        if let Some((fd, len)) = self.coverage {
            value += &format!(",coverage={fd},coverage_len={len}");
        }
        value
    }

    /// Parses the variable's value.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if it is not what a driver writes.
    pub(super) fn decode(value: &str) -> Result<TargetEnv> {
        const MALFORMED: Error = Error::InvalidConfig(
            "RINGPORT_HARNESS is malformed: cases=FD,results=FD,spin_ns=N[,coverage=FD,coverage_len=N]",
        );
        let (mut cases, mut results, mut spin, mut coverage, mut coverage_len) =
            (None, None, None, None, None);
        for field in value.split(',') {
            let (key, number) = field.split_once('=').ok_or(MALFORMED)?;
            let number: u64 = number.trim().parse().map_err(|_| MALFORMED)?;
            let fd = || RawFd::try_from(number).map_err(|_| MALFORMED);
            match key.trim() {
                "cases" => cases = Some(fd()?),
                "results" => results = Some(fd()?),
                "spin_ns" => spin = Some(Duration::from_nanos(number)),
                "coverage" => coverage = Some(fd()?),
                "coverage_len" => {
                    coverage_len = Some(usize::try_from(number).map_err(|_| MALFORMED)?);
                }
                _ => return Err(MALFORMED),
            }
        }
        let coverage = match (coverage, coverage_len) {
            (Some(fd), Some(len)) => Some((fd, len)),
            (None, None) => None,
            _ => return Err(MALFORMED),
        };
        Ok(TargetEnv {
            cases: cases.ok_or(MALFORMED)?,
            results: results.ok_or(MALFORMED)?,
            spin: spin.ok_or(MALFORMED)?,
            coverage,
        })
    }
}

/// Bytes before a case's or a result's own bytes.
pub(super) const ID_LEN: usize = 8;

/// The id of the first frame a target sends, once it holds both rings: the driver's sign that
/// this target, not the one before it, is there.
pub(super) const HELLO: u64 = u64::MAX;

/// Writes `id` and `bytes` into `frame`, which is `ID_LEN + bytes.len()` long.
pub(super) fn encode(frame: &mut [u8], id: u64, bytes: &[u8]) {
    frame[..ID_LEN].copy_from_slice(&id.to_le_bytes());
    frame[ID_LEN..].copy_from_slice(bytes);
}

/// The id and the bytes of a frame from the other side, which may be anything.
///
/// # Errors
/// [`Error::Protocol`] if the frame is too short to hold an id.
pub(super) fn decode(frame: &[u8]) -> Result<(u64, &[u8])> {
    let Some((id, bytes)) = frame.split_first_chunk::<ID_LEN>() else {
        return Err(Error::Protocol("a harness frame shorter than its id"));
    };
    Ok((u64::from_le_bytes(*id), bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_round_trips_and_anything_else_is_refused() {
        let mut env = TargetEnv {
            cases: 3,
            results: 4,
            spin: Duration::from_micros(20),
            coverage: None,
        };
        assert_eq!(TargetEnv::decode(&env.encode()).unwrap(), env);
        env.coverage = Some((5, 65536));
        assert_eq!(
            env.encode(),
            "cases=3,results=4,spin_ns=20000,coverage=5,coverage_len=65536"
        );
        assert_eq!(TargetEnv::decode(&env.encode()).unwrap(), env);
        for bad in [
            "",
            "3,4",
            "cases=3,results=4",
            "cases=3,results=-4,spin_ns=0",
            "cases=3,results=4,spin_ns=0,coverage=5",
            "cases=3,results=4,spin_ns=0,color=5",
            "cases=99999999999,results=4,spin_ns=0",
        ] {
            assert!(
                matches!(TargetEnv::decode(bad), Err(Error::InvalidConfig(_))),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn frames_round_trip_and_short_ones_are_refused() {
        let mut frame = [0u8; ID_LEN + 3];
        encode(&mut frame, 7, b"abc");
        assert_eq!(decode(&frame).unwrap(), (7, &b"abc"[..]));
        assert!(matches!(decode(&frame[..7]), Err(Error::Protocol(_))));
        assert_eq!(decode(&frame[..ID_LEN]).unwrap(), (7, &b""[..]));
    }
}
