//! The Channel in C: a listener, and channels that connect to it or that it accepts; messages
//! copied out into a buffer the handle keeps, valid until the handle's next call.

use std::ffi::c_char;

use ringport::{Channel, Listener};

use crate::common::Wait;
use crate::cptr::{bytes, nanos, out, string};
use crate::handles::{self, Handled, Kind};
use crate::status::{guard, OrStatus, RpStatus};

/// A listener handle.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RpListener {
    /// The id (0: no handle).
    pub id: u64,
}

/// A channel handle.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RpChannel {
    /// The id (0: no handle).
    pub id: u64,
}

impl Handled for Listener {
    const KIND: Kind = Kind::Listener;
    const NAME: &'static str = "listener";
}

/// A channel and the buffer its last message was received into.
pub struct ChannelHandle {
    channel: Channel,
    message: Vec<u8>,
}

impl Handled for ChannelHandle {
    const KIND: Kind = Kind::Channel;
    const NAME: &'static str = "channel";
}

fn new_channel(channel: Channel, out: &mut RpChannel) -> Result<(), RpStatus> {
    out.id = handles::insert(ChannelHandle {
        channel,
        message: Vec::new(),
    })?;
    Ok(())
}

/// Listens at `path` (a file path, or `@NAME` for an abstract socket) with the default options
/// (the same user only; `Auto`: the socket, then rings when the traffic pays).
///
/// # Safety
/// `path` a NUL-terminated string; `out_listener` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rp_listener_bind(
    path: *const c_char,
    out_listener: *mut RpListener,
) -> RpStatus {
    guard(|| {
        // SAFETY: forwarded from the caller's contract.
        let (path, out) = unsafe { (string(path, "path")?, out(out_listener, "out_listener")?) };
        out.id = handles::insert(Listener::bind(path).or_status()?)?;
        Ok(())
    })
}

/// Waits for the next client and gives its channel.
///
/// # Safety
/// `out_channel` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rp_listener_accept(
    listener: RpListener,
    out_channel: *mut RpChannel,
) -> RpStatus {
    guard(|| {
        // SAFETY: valid for a write, by the caller's contract.
        let out = unsafe { out(out_channel, "out_channel")? };
        let channel = handles::with::<Listener, _>(listener.id, |l| l.accept().or_status())??;
        new_channel(channel, out)
    })
}

/// As [`rp_listener_accept`], for at most `timeout_ns`.
///
/// # Safety
/// As [`rp_listener_accept`].
#[no_mangle]
pub unsafe extern "C" fn rp_listener_accept_timeout(
    listener: RpListener,
    timeout_ns: u64,
    out_channel: *mut RpChannel,
) -> RpStatus {
    guard(|| {
        // SAFETY: valid for a write, by the caller's contract.
        let out = unsafe { out(out_channel, "out_channel")? };
        let channel = handles::with::<Listener, _>(listener.id, |l| {
            l.accept_timeout(nanos(timeout_ns)).or_status()
        })??;
        new_channel(channel, out)
    })
}

/// Stops listening (a path's socket file is removed).
#[no_mangle]
pub extern "C" fn rp_listener_free(listener: RpListener) -> RpStatus {
    guard(|| handles::remove::<Listener>(listener.id).map(drop))
}

/// Connects to the listener at `path`.
///
/// # Safety
/// `path` a NUL-terminated string; `out_channel` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rp_channel_connect(
    path: *const c_char,
    out_channel: *mut RpChannel,
) -> RpStatus {
    guard(|| {
        // SAFETY: forwarded from the caller's contract.
        let (path, out) = unsafe { (string(path, "path")?, out(out_channel, "out_channel")?) };
        new_channel(Channel::connect(path).or_status()?, out)
    })
}

/// Closes the channel (the peer's receives end with `RP_STATUS_PEER_GONE` after what was sent).
#[no_mangle]
pub extern "C" fn rp_channel_free(channel: RpChannel) -> RpStatus {
    guard(|| handles::remove::<ChannelHandle>(channel.id).map(drop))
}

fn send(channel: RpChannel, data: *const u8, len: usize, timeout: Option<u64>) -> RpStatus {
    guard(|| {
        // SAFETY: valid for `len` bytes, by the caller's contract.
        let data = unsafe { bytes(data, len)? };
        handles::with::<ChannelHandle, _>(channel.id, |h| {
            match timeout {
                None => h.channel.send(data),
                Some(ns) => h.channel.send_timeout(data, nanos(ns)),
            }
            .or_status()
        })?
    })
}

/// Sends `len` bytes as one message, waiting while the path is full.
///
/// # Safety
/// `data` valid for reads of `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn rp_channel_send(
    channel: RpChannel,
    data: *const u8,
    len: usize,
) -> RpStatus {
    send(channel, data, len, None)
}

/// As [`rp_channel_send`], for at most `timeout_ns`.
///
/// # Safety
/// As [`rp_channel_send`].
#[no_mangle]
pub unsafe extern "C" fn rp_channel_send_timeout(
    channel: RpChannel,
    data: *const u8,
    len: usize,
    timeout_ns: u64,
) -> RpStatus {
    send(channel, data, len, Some(timeout_ns))
}

fn recv(channel: RpChannel, out_data: *mut *const u8, out_len: *mut usize, wait: Wait) -> RpStatus {
    guard(|| {
        // SAFETY: valid for writes, by the caller's contract.
        let (data, len) = unsafe { (out(out_data, "out_data")?, out(out_len, "out_len")?) };
        handles::with::<ChannelHandle, _>(channel.id, |h| {
            let got = match wait {
                Wait::Try => h.channel.try_recv(&mut h.message),
                Wait::Block => h.channel.recv(&mut h.message),
                Wait::For(t) => h.channel.recv_timeout(&mut h.message, t),
            }
            .or_status()?;
            *data = h.message.as_ptr();
            *len = got;
            Ok(())
        })?
    })
}

/// Receives the next message, failing at once with `RP_STATUS_EMPTY`: `*out_data` and `*out_len` are
/// its bytes, in the handle's buffer, valid until the handle's next call.
///
/// # Safety
/// The out-pointers valid for writes.
#[no_mangle]
pub unsafe extern "C" fn rp_channel_try_recv(
    channel: RpChannel,
    out_data: *mut *const u8,
    out_len: *mut usize,
) -> RpStatus {
    recv(channel, out_data, out_len, Wait::Try)
}

/// As [`rp_channel_try_recv`], waiting for a message.
///
/// # Safety
/// As [`rp_channel_try_recv`].
#[no_mangle]
pub unsafe extern "C" fn rp_channel_recv(
    channel: RpChannel,
    out_data: *mut *const u8,
    out_len: *mut usize,
) -> RpStatus {
    recv(channel, out_data, out_len, Wait::Block)
}

/// As [`rp_channel_recv`], for at most `timeout_ns`.
///
/// # Safety
/// As [`rp_channel_try_recv`].
#[no_mangle]
pub unsafe extern "C" fn rp_channel_recv_timeout(
    channel: RpChannel,
    timeout_ns: u64,
    out_data: *mut *const u8,
    out_len: *mut usize,
) -> RpStatus {
    recv(channel, out_data, out_len, Wait::For(nanos(timeout_ns)))
}
