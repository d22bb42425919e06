//! The textbook's shared memory with the synchronisation the processes bring themselves: a
//! ring of slots in a memfd (one slot each way for round trips, several one way for streams),
//! and, to take turns, a process-shared pthread mutex and condition variables in the segment,
//! POSIX unnamed semaphores in the segment (`sem_init` with pshared), a System V semaphore set
//! (`semop`), or POSIX message queues carrying "full" and "empty" tokens. Each ring is the
//! classic bounded buffer: the producer takes an empty slot, writes it, gives a full one; the
//! consumer takes a full slot, reads it, gives an empty one back.

use std::ffi::CString;

use ringport_measure::fds::adopt_inherited;
use ringport_measure::shm::SharedMap;

use super::{retry_busy, Handoff, PeerEnd, STALL};
use crate::bench::plan::{Metric, Mode};
use crate::bench::BoxError;

/// How the two sides take turns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Turns {
    PthreadCond,
    SemPosix,
    SemSysv,
    MqTokens,
}

/// Bytes at the start of each ring for its synchronisation objects.
const SYNC_BYTES: usize = 512;
/// Slots of a stream's ring (a POSIX queue holds 10 tokens by default).
const STREAM_SLOTS: usize = 8;

/// A ring's synchronisation objects, laid out in its first `SYNC_BYTES`.
#[repr(C)]
struct CondSync {
    mutex: libc::pthread_mutex_t,
    not_empty: libc::pthread_cond_t,
    not_full: libc::pthread_cond_t,
    full: u32,
}

#[repr(C)]
struct SemSync {
    full: libc::sem_t,
    empty: libc::sem_t,
}

const _: () = assert!(std::mem::size_of::<CondSync>() <= SYNC_BYTES);
const _: () = assert!(std::mem::size_of::<SemSync>() <= SYNC_BYTES);

/// One ring: where it starts in the map, its slots, and this side's next slot.
struct Ring {
    offset: usize,
    slots: usize,
    stride: usize,
    next: usize,
    /// System V: the set's first semaphore for this ring (full, then empty).
    sem_base: u16,
    /// POSIX queues: the full and the empty tokens.
    queues: Option<(libc::mqd_t, libc::mqd_t)>,
}

impl Ring {
    fn len(slots: usize, size: usize) -> usize {
        SYNC_BYTES + slots * size.next_multiple_of(64)
    }

    fn slot(&self) -> usize {
        self.offset + SYNC_BYTES + (self.next % self.slots) * self.stride
    }
}

/// One end of a ring of slots synchronised by `Turns`.
pub struct SyncLink {
    map: SharedMap,
    turns: Turns,
    mode: Mode,
    size: usize,
    tx: Option<Ring>,
    rx: Option<Ring>,
    /// System V: the semaphore set, removed by the bench when its end goes.
    sem_set: Option<(i32, bool)>,
    /// POSIX queues' names, unlinked once the peer has opened them (the bench's end).
    names: Vec<String>,
}

fn os_error(call: &str) -> BoxError {
    format!("{call}: {}", std::io::Error::last_os_error()).into()
}

fn check(call: &str, rc: libc::c_int) -> Result<(), BoxError> {
    if rc == 0 {
        Ok(())
    } else {
        Err(format!("{call}: {}", std::io::Error::from_raw_os_error(rc)).into())
    }
}

impl SyncLink {
    /// The rings: two of one slot for round trips (the bench writes the first), one of several
    /// for a stream (the bench writes it).
    fn layout(metric: Metric, size: usize) -> (usize, usize, usize) {
        match metric {
            Metric::RoundTrip => (2, 1, 2 * Ring::len(1, size)),
            Metric::Throughput => (1, STREAM_SLOTS, Ring::len(STREAM_SLOTS, size)),
        }
    }

    pub fn create(
        turns: Turns,
        mode: Mode,
        metric: Metric,
        size: usize,
        handoff: &mut Handoff,
    ) -> Result<SyncLink, BoxError> {
        let (rings, slots, len) = Self::layout(metric, size);
        let map = SharedMap::create(len)?;
        handoff.pass_fd(map.fd())?;
        let mut link = SyncLink {
            map,
            turns,
            mode,
            size,
            tx: None,
            rx: None,
            sem_set: None,
            names: Vec::new(),
        };
        if turns == Turns::SemSysv {
            // SAFETY: plain values.
            let id = unsafe {
                libc::semget(libc::IPC_PRIVATE, 2 * rings as i32, libc::IPC_CREAT | 0o600)
            };
            if id < 0 {
                return Err(os_error("semget (kernel.sem)"));
            }
            link.sem_set = Some((id, true));
            handoff.peer.names.push(id.to_string());
        }
        let mut made = Vec::new();
        for r in 0..rings {
            let mut ring = Ring {
                offset: r * Ring::len(slots, size),
                slots,
                stride: size.next_multiple_of(64),
                next: 0,
                sem_base: (2 * r) as u16,
                queues: None,
            };
            link.init(&mut ring, r, handoff)?;
            made.push(ring);
        }
        let mut made = made.into_iter();
        link.tx = made.next();
        link.rx = made.next();
        Ok(link)
    }

    pub fn open(
        turns: Turns,
        mode: Mode,
        metric: Metric,
        size: usize,
        end: &PeerEnd,
    ) -> Result<SyncLink, BoxError> {
        let (rings, slots, len) = Self::layout(metric, size);
        let map = SharedMap::map(adopt_inherited(*end.fds.first().ok_or("sync: no memfd")?)?)?;
        if map.len() != len {
            return Err(format!("sync: the memfd is {} bytes, not {len}", map.len()).into());
        }
        let mut names = end.names.iter();
        let sem_set = if turns == Turns::SemSysv {
            let id = names
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or("sync: no set id")?;
            Some((id, false))
        } else {
            None
        };
        let mut made = Vec::new();
        for r in 0..rings {
            let queues = if turns == Turns::MqTokens {
                let mut open = || -> Result<libc::mqd_t, BoxError> {
                    let name = CString::new(names.next().ok_or("sync: no queue name")?.as_str())?;
                    let flags = libc::O_RDWR
                        | if mode == Mode::Spin {
                            libc::O_NONBLOCK
                        } else {
                            0
                        };
                    // SAFETY: a valid C string; no attributes when opening.
                    let q = unsafe { libc::mq_open(name.as_ptr(), flags) };
                    if q < 0 {
                        return Err(os_error("mq_open"));
                    }
                    Ok(q)
                };
                Some((open()?, open()?))
            } else {
                None
            };
            made.push(Ring {
                offset: r * Ring::len(slots, size),
                slots,
                stride: size.next_multiple_of(64),
                next: 0,
                sem_base: (2 * r) as u16,
                queues,
            });
        }
        // The peer reads the bench's first ring and writes its second.
        let mut made = made.into_iter();
        let (rx, tx) = (made.next(), made.next());
        Ok(SyncLink {
            map,
            turns,
            mode,
            size,
            tx,
            rx,
            sem_set,
            names: Vec::new(),
        })
    }

    /// Makes ring `index`'s synchronisation objects: every slot empty.
    fn init(
        &mut self,
        ring: &mut Ring,
        index: usize,
        handoff: &mut Handoff,
    ) -> Result<(), BoxError> {
        let at = self.map.ptr_at(ring.offset, SYNC_BYTES);
        match self.turns {
            Turns::PthreadCond => {
                let sync = at.cast::<CondSync>();
                // SAFETY: the attributes are made, used and destroyed here; `sync` points to
                // SYNC_BYTES of the mapping, page- (so suitably) aligned, that no other process
                // uses before the peer starts.
                unsafe {
                    let mut mattr: libc::pthread_mutexattr_t = std::mem::zeroed();
                    check(
                        "pthread_mutexattr_init",
                        libc::pthread_mutexattr_init(&mut mattr),
                    )?;
                    check(
                        "pthread_mutexattr_setpshared",
                        libc::pthread_mutexattr_setpshared(
                            &mut mattr,
                            libc::PTHREAD_PROCESS_SHARED,
                        ),
                    )?;
                    check(
                        "pthread_mutex_init",
                        libc::pthread_mutex_init(&raw mut (*sync).mutex, &mattr),
                    )?;
                    libc::pthread_mutexattr_destroy(&mut mattr);
                    let mut cattr: libc::pthread_condattr_t = std::mem::zeroed();
                    check(
                        "pthread_condattr_init",
                        libc::pthread_condattr_init(&mut cattr),
                    )?;
                    check(
                        "pthread_condattr_setpshared",
                        libc::pthread_condattr_setpshared(&mut cattr, libc::PTHREAD_PROCESS_SHARED),
                    )?;
                    check(
                        "pthread_cond_init",
                        libc::pthread_cond_init(&raw mut (*sync).not_empty, &cattr),
                    )?;
                    check(
                        "pthread_cond_init",
                        libc::pthread_cond_init(&raw mut (*sync).not_full, &cattr),
                    )?;
                    libc::pthread_condattr_destroy(&mut cattr);
                    (*sync).full = 0;
                }
            }
            Turns::SemPosix => {
                let sync = at.cast::<SemSync>();
                // SAFETY: as above; pshared = 1: the semaphores are shared between processes.
                unsafe {
                    if libc::sem_init(&raw mut (*sync).full, 1, 0) != 0
                        || libc::sem_init(&raw mut (*sync).empty, 1, ring.slots as u32) != 0
                    {
                        return Err(os_error("sem_init"));
                    }
                }
            }
            Turns::SemSysv => {
                let (id, _) = self.sem_set.expect("made in create");
                // SAFETY: SETVAL takes an int; the set has 2 * rings semaphores.
                unsafe {
                    if libc::semctl(id, i32::from(ring.sem_base), libc::SETVAL, 0) != 0
                        || libc::semctl(
                            id,
                            i32::from(ring.sem_base) + 1,
                            libc::SETVAL,
                            ring.slots as i32,
                        ) != 0
                    {
                        return Err(os_error("semctl(SETVAL)"));
                    }
                }
            }
            Turns::MqTokens => {
                let stem = format!("/{}", crate::bench::unique_name(&format!("turns{index}")));
                let mut open = |name: String, tokens: usize| -> Result<libc::mqd_t, BoxError> {
                    let c = CString::new(name.as_str())?;
                    // SAFETY: mq_attr is plain data.
                    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
                    attr.mq_maxmsg = STREAM_SLOTS as i64;
                    attr.mq_msgsize = 1;
                    let flags = libc::O_RDWR
                        | libc::O_CREAT
                        | libc::O_EXCL
                        | if self.mode == Mode::Spin {
                            libc::O_NONBLOCK
                        } else {
                            0
                        };
                    // SAFETY: a valid C string and attributes.
                    let q = unsafe { libc::mq_open(c.as_ptr(), flags, 0o600, &raw mut attr) };
                    if q < 0 {
                        return Err(os_error("mq_open (fs.mqueue)"));
                    }
                    self.names.push(name.clone());
                    handoff.peer.names.push(name);
                    for _ in 0..tokens {
                        // SAFETY: one byte from a live buffer.
                        unsafe { libc::mq_send(q, c"t".as_ptr(), 1, 0) };
                    }
                    Ok(q)
                };
                let full = open(format!("{stem}-full"), 0)?;
                let empty = open(format!("{stem}-empty"), ring.slots)?;
                ring.queues = Some((full, empty));
            }
        }
        Ok(())
    }

    /// Unlinks the queues' names once the peer has opened them.
    pub fn forget_names(&mut self) {
        for name in self.names.drain(..) {
            if let Ok(c) = CString::new(name) {
                // SAFETY: a valid C string.
                unsafe { libc::mq_unlink(c.as_ptr()) };
            }
        }
    }

    /// Takes one of ring `ring`'s slots (`full`: a full one, else an empty one).
    fn take(&self, ring: &Ring, full: bool) -> Result<(), BoxError> {
        let spin = self.mode == Mode::Spin;
        match self.turns {
            Turns::PthreadCond => {
                let sync = self.map.ptr_at(ring.offset, SYNC_BYTES).cast::<CondSync>();
                let deadline = std::time::Instant::now() + STALL;
                // SAFETY: the objects were made by the bench before the peer started, and are
                // used only through these calls, under the mutex.
                unsafe {
                    libc::pthread_mutex_lock(&raw mut (*sync).mutex);
                    loop {
                        let count = (*sync).full as usize;
                        let ready = if full { count > 0 } else { count < ring.slots };
                        if ready {
                            break;
                        }
                        if std::time::Instant::now() > deadline {
                            libc::pthread_mutex_unlock(&raw mut (*sync).mutex);
                            return Err(
                                "pthread-cond: no progress: the peer is stuck or gone".into()
                            );
                        }
                        let cond = if full {
                            &raw mut (*sync).not_empty
                        } else {
                            &raw mut (*sync).not_full
                        };
                        let mut until: libc::timespec = std::mem::zeroed();
                        libc::clock_gettime(libc::CLOCK_REALTIME, &mut until);
                        until.tv_sec += 1;
                        libc::pthread_cond_timedwait(cond, &raw mut (*sync).mutex, &until);
                    }
                    libc::pthread_mutex_unlock(&raw mut (*sync).mutex);
                }
                Ok(())
            }
            Turns::SemPosix => {
                let sync = self.map.ptr_at(ring.offset, SYNC_BYTES).cast::<SemSync>();
                // SAFETY: the semaphores were made by the bench before the peer started.
                let sem = unsafe {
                    if full {
                        &raw mut (*sync).full
                    } else {
                        &raw mut (*sync).empty
                    }
                };
                // A blocking wait is cut into seconds, so that a dead peer is noticed.
                retry_busy("sem_wait", &[libc::EAGAIN, libc::ETIMEDOUT], || {
                    // SAFETY: as above.
                    unsafe {
                        if spin {
                            libc::sem_trywait(sem) as isize
                        } else {
                            let mut until: libc::timespec = std::mem::zeroed();
                            libc::clock_gettime(libc::CLOCK_REALTIME, &mut until);
                            until.tv_sec += 1;
                            libc::sem_timedwait(sem, &until) as isize
                        }
                    }
                })
                .map(drop)
            }
            Turns::SemSysv => {
                let (id, _) = self.sem_set.expect("a set");
                let mut op = libc::sembuf {
                    sem_num: ring.sem_base + u16::from(!full),
                    sem_op: -1,
                    sem_flg: if spin { libc::IPC_NOWAIT as i16 } else { 0 },
                };
                // SAFETY: one sembuf.
                retry_busy("semop", &[libc::EAGAIN], || unsafe {
                    libc::semop(id, &mut op, 1) as isize
                })
                .map(drop)
            }
            Turns::MqTokens => {
                let (full_q, empty_q) = ring.queues.expect("queues");
                let q = if full { full_q } else { empty_q };
                let mut token = [0u8; 1];
                // SAFETY: one byte into a live buffer.
                retry_busy("mq_receive", &[libc::EAGAIN], || unsafe {
                    libc::mq_receive(q, token.as_mut_ptr().cast(), 1, std::ptr::null_mut())
                })
                .map(drop)
            }
        }
    }

    /// Gives one of ring `ring`'s slots (`full`: a full one, else an empty one).
    fn give(&self, ring: &Ring, full: bool) -> Result<(), BoxError> {
        match self.turns {
            Turns::PthreadCond => {
                let sync = self.map.ptr_at(ring.offset, SYNC_BYTES).cast::<CondSync>();
                // SAFETY: as in `take`.
                unsafe {
                    libc::pthread_mutex_lock(&raw mut (*sync).mutex);
                    if full {
                        (*sync).full += 1;
                        libc::pthread_cond_signal(&raw mut (*sync).not_empty);
                    } else {
                        (*sync).full -= 1;
                        libc::pthread_cond_signal(&raw mut (*sync).not_full);
                    }
                    libc::pthread_mutex_unlock(&raw mut (*sync).mutex);
                }
                Ok(())
            }
            Turns::SemPosix => {
                let sync = self.map.ptr_at(ring.offset, SYNC_BYTES).cast::<SemSync>();
                // SAFETY: as in `take`.
                let rc = unsafe {
                    libc::sem_post(if full {
                        &raw mut (*sync).full
                    } else {
                        &raw mut (*sync).empty
                    })
                };
                if rc == 0 {
                    Ok(())
                } else {
                    Err(os_error("sem_post"))
                }
            }
            Turns::SemSysv => {
                let (id, _) = self.sem_set.expect("a set");
                let mut op = libc::sembuf {
                    sem_num: ring.sem_base + u16::from(!full),
                    sem_op: 1,
                    sem_flg: 0,
                };
                // SAFETY: one sembuf.
                if unsafe { libc::semop(id, &mut op, 1) } == 0 {
                    Ok(())
                } else {
                    Err(os_error("semop"))
                }
            }
            Turns::MqTokens => {
                let (full_q, empty_q) = ring.queues.expect("queues");
                let q = if full { full_q } else { empty_q };
                // SAFETY: one byte from a live buffer.
                retry_busy("mq_send", &[libc::EAGAIN], || unsafe {
                    libc::mq_send(q, c"t".as_ptr(), 1, 0) as isize
                })
                .map(drop)
            }
        }
    }
}

impl Drop for SyncLink {
    fn drop(&mut self) {
        self.forget_names();
        for ring in [&self.tx, &self.rx].into_iter().flatten() {
            if let Some((a, b)) = ring.queues {
                // SAFETY: queue descriptors this end opened.
                unsafe {
                    libc::mq_close(a);
                    libc::mq_close(b);
                }
            }
        }
        if let Some((id, true)) = self.sem_set {
            // SAFETY: IPC_RMID takes no further argument.
            unsafe { libc::semctl(id, 0, libc::IPC_RMID) };
        }
    }
}

impl super::Link for SyncLink {
    fn send(&mut self, msg: &[u8]) -> Result<(), BoxError> {
        let ring = self.tx.as_ref().ok_or("sync: this end does not send")?;
        self.take(ring, false)?;
        self.map.write(ring.slot(), msg);
        self.give(ring, true)?;
        self.tx.as_mut().expect("checked").next += 1;
        Ok(())
    }

    fn recv(&mut self) -> Result<u64, BoxError> {
        let ring = self.rx.as_ref().ok_or("sync: this end does not receive")?;
        self.take(ring, true)?;
        let seq = self.map.touch(ring.slot(), self.size);
        self.give(ring, false)?;
        self.rx.as_mut().expect("checked").next += 1;
        Ok(seq)
    }
}
