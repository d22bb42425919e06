//! System V message queues: one queue each way (`msgget` with `IPC_PRIVATE`, the ids passed to
//! the peer), `msgsnd` and `msgrcv` copying each message in and out of the kernel. Busy: with
//! `IPC_NOWAIT`, retried. The bench removes both queues when its end goes (a System V queue is
//! destroyed at once by `IPC_RMID`, so not before the sample ends).

use super::{look_at, retry_busy, Handoff, PeerEnd};
use crate::bench::plan::Mode;
use crate::bench::BoxError;

/// The type every message carries (`mtype` must be positive).
const MTYPE: libc::c_long = 1;

/// Two System V message queues.
pub struct SysvMqLink {
    tx: i32,
    rx: i32,
    mode: Mode,
    /// `mtype` then the message, as `msgsnd` and `msgrcv` take it.
    buf: Vec<u8>,
    size: usize,
    /// The queues to remove when this end goes (the bench's).
    owned: Vec<i32>,
}

fn last_error(call: &str) -> BoxError {
    format!("{call}: {}", std::io::Error::last_os_error()).into()
}

impl SysvMqLink {
    pub fn create(mode: Mode, size: usize, handoff: &mut Handoff) -> Result<SysvMqLink, BoxError> {
        let max = std::fs::read_to_string("/proc/sys/kernel/msgmax")
            .ok()
            .and_then(|m| m.trim().parse::<usize>().ok())
            .unwrap_or(8192);
        if size > max {
            return Err(format!(
                "System V queues here take messages up to {max} B (kernel.msgmax)"
            )
            .into());
        }
        let mut owned = Vec::new();
        for _ in 0..2 {
            // SAFETY: plain values.
            let id = unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600) };
            if id < 0 {
                let e = last_error("msgget (kernel.msgmni)");
                remove(&owned);
                return Err(e);
            }
            owned.push(id);
        }
        handoff.peer.names = owned.iter().map(ToString::to_string).collect();
        Ok(SysvMqLink {
            tx: owned[0],
            rx: owned[1],
            mode,
            buf: vec![0; std::mem::size_of::<libc::c_long>() + size],
            size,
            owned,
        })
    }

    pub fn open(mode: Mode, size: usize, end: &PeerEnd) -> Result<SysvMqLink, BoxError> {
        let ids: Vec<i32> = end.names.iter().filter_map(|n| n.parse().ok()).collect();
        let [ping, pong] = ids[..] else {
            return Err("sysv-mq: expected two queue ids".into());
        };
        Ok(SysvMqLink {
            tx: pong,
            rx: ping,
            mode,
            buf: vec![0; std::mem::size_of::<libc::c_long>() + size],
            size,
            owned: Vec::new(),
        })
    }

    fn flags(&self) -> i32 {
        match self.mode {
            Mode::Spin => libc::IPC_NOWAIT,
            Mode::Block => 0,
        }
    }
}

fn remove(ids: &[i32]) {
    for &id in ids {
        // SAFETY: IPC_RMID takes no buffer.
        unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

impl Drop for SysvMqLink {
    fn drop(&mut self) {
        remove(&self.owned);
    }
}

impl super::Link for SysvMqLink {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> Result<(), BoxError> {
        let head = std::mem::size_of::<libc::c_long>();
        self.buf[..head].copy_from_slice(&MTYPE.to_ne_bytes());
        self.buf[head..head + msg.len()].copy_from_slice(msg);
        let (tx, flags, buf) = (self.tx, self.flags(), &self.buf);
        // SAFETY: `buf` holds an mtype and `msg.len()` bytes after it.
        retry_busy("msgsnd", &[libc::EAGAIN], || unsafe {
            libc::msgsnd(tx, buf.as_ptr().cast(), msg.len(), flags) as isize
        })
        .map(drop)
    }

    #[inline]
    fn recv(&mut self) -> Result<u64, BoxError> {
        let head = std::mem::size_of::<libc::c_long>();
        let (rx, flags, size) = (self.rx, self.flags(), self.size);
        let buf = &mut self.buf;
        // SAFETY: `buf` has room for an mtype and `size` bytes.
        let n = retry_busy("msgrcv", &[libc::ENOMSG], || unsafe {
            libc::msgrcv(rx, buf.as_mut_ptr().cast(), size, 0, flags)
        })?;
        if n as usize != size {
            return Err(format!("a message of {n} bytes, expected {size}").into());
        }
        look_at(&self.buf[head..head + size])
    }
}
