//! Handles: what C holds instead of pointers. A handle is a 64-bit id, an index into a table of
//! slots and the generation of the slot it was given at, so that a null handle, a freed one
//! (its slot's generation has moved on), a handle of another type (the slot's kind differs) or
//! a made-up number is an error code, never a dereference of freed or foreign memory.
//!
//! The table is chunks of slots that are never freed (a freed handle's slot is reused, with a
//! new generation), so a lookup is a few loads with no lock: it stays off the hot path's costs.
//! Calls on one handle must not overlap (a handle may move between threads, as the Rust
//! endpoint it stands for may); the header says so. Creating and freeing take a lock.

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::status::{fail, RpStatus};

/// What a handle stands for (checked on every use: a handle of one type is refused by the
/// calls of another).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u32)]
pub enum Kind {
    SpscProducer = 1,
    SpscConsumer = 2,
    MpmcRing = 3,
    MpmcProducer = 4,
    MpmcConsumer = 5,
    Listener = 6,
    Channel = 7,
    Target = 8,
}

/// An object a handle can stand for.
pub trait Handled: Sized + 'static {
    const KIND: Kind;
    /// What an error message calls it.
    const NAME: &'static str;
}

struct Slot {
    /// The slot's generation (high half), which moves on when the handle is freed and is never
    /// 0, and the kind of its object (low half): one word, so that a lookup checks both with
    /// one compare.
    tag: AtomicU64,
    /// A `Box<T>` of the slot's kind, from `Box::into_raw`; null while the slot is free.
    object: AtomicPtr<()>,
}

const CHUNK_BITS: u32 = 10;
const CHUNK: usize = 1 << CHUNK_BITS;
/// At most this many chunks: four million live handles.
const CHUNKS: usize = 1 << 12;

static TABLE: [AtomicPtr<Slot>; CHUNKS] = [const { AtomicPtr::new(std::ptr::null_mut()) }; CHUNKS];

/// Free slots' indices, and the next never-used index.
static FREE: Mutex<(Vec<u32>, u32)> = Mutex::new((Vec::new(), 0));

#[inline(always)]
fn chunk(index: u32) -> Option<&'static [Slot]> {
    let ptr = TABLE
        .get((index >> CHUNK_BITS) as usize)?
        .load(Ordering::Acquire);
    if ptr.is_null() {
        return None;
    }
    // SAFETY: a non-null entry is a leaked `Box<[Slot; CHUNK]>` (see `slot_for`), never freed.
    Some(unsafe { std::slice::from_raw_parts(ptr, CHUNK) })
}

#[inline(always)]
fn slot(index: u32) -> Option<&'static Slot> {
    chunk(index).map(|c| &c[(index as usize) & (CHUNK - 1)])
}

/// The slot for `index`, its chunk made if need be (under the FREE lock).
fn slot_for(index: u32) -> Result<&'static Slot, RpStatus> {
    if let Some(slot) = slot(index) {
        return Ok(slot);
    }
    let entry = TABLE
        .get((index >> CHUNK_BITS) as usize)
        .ok_or_else(|| fail(RpStatus::Limit, "more than four million live handles"))?;
    let fresh: Box<[Slot]> = (0..CHUNK)
        .map(|_| Slot {
            tag: AtomicU64::new(tag(1, 0)),
            object: AtomicPtr::new(std::ptr::null_mut()),
        })
        .collect();
    // Release: the slots' initial values are visible to whoever loads the chunk's pointer.
    entry.store(Box::into_raw(fresh).cast::<Slot>(), Ordering::Release);
    Ok(slot(index).expect("just made"))
}

/// The id of a new handle for `object`.
pub fn insert<T: Handled>(object: T) -> Result<u64, RpStatus> {
    let mut free = FREE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let index = match free.0.pop() {
        Some(index) => index,
        None => {
            let index = free.1;
            free.1 = index
                .checked_add(1)
                .ok_or_else(|| fail(RpStatus::Limit, "handles exhausted"))?;
            index
        }
    };
    let slot = match slot_for(index) {
        Ok(slot) => slot,
        Err(e) => {
            free.0.push(index);
            return Err(e);
        }
    };
    let generation = generation_of(slot.tag.load(Ordering::Relaxed));
    slot.tag
        .store(tag(generation, T::KIND as u32), Ordering::Relaxed);
    // Release: the object and the tag are visible to a lookup that sees the pointer.
    slot.object
        .store(Box::into_raw(Box::new(object)).cast(), Ordering::Release);
    Ok((u64::from(generation) << 32) | u64::from(index + 1))
}

/// The slot of `id` if it is a live handle of `T`'s kind, and its object.
#[inline(always)]
fn live<T: Handled>(id: u64) -> Result<(&'static Slot, *mut T), RpStatus> {
    // The null handle's index wraps to u32::MAX, past the last chunk: no slot.
    let index = (id as u32).wrapping_sub(1);
    let Some(slot) = slot(index) else {
        return Err(invalid::<T>(id));
    };
    // Acquire: pairs with `insert`'s Release store, so the object and tag it published are
    // seen. Relaxed for the tag: it changes only under the FREE lock, in `insert` (before that
    // Release) and in `remove`, which never runs alongside a call on the same handle (the
    // header's rule); a stale handle's generation differs whatever the order.
    let object = slot.object.load(Ordering::Acquire);
    if object.is_null()
        || slot.tag.load(Ordering::Relaxed) != tag((id >> 32) as u32, T::KIND as u32)
    {
        return Err(invalid::<T>(id));
    }
    Ok((slot, object.cast()))
}

#[inline(always)]
fn tag(generation: u32, kind: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(kind)
}

fn generation_of(tag: u64) -> u32 {
    (tag >> 32) as u32
}

#[cold]
fn invalid<T: Handled>(id: u64) -> RpStatus {
    fail(
        RpStatus::InvalidHandle,
        &format!(
            "{id:#x} is not a live {} handle (null, freed, or of another type)",
            T::NAME
        ),
    )
}

/// Runs `f` on the object of handle `id`.
///
/// # Errors
/// `InvalidHandle` if `id` is not a live handle of `T`'s kind.
#[inline(always)]
pub fn with<T: Handled, R>(id: u64, f: impl FnOnce(&mut T) -> R) -> Result<R, RpStatus> {
    let (_, object) = live::<T>(id)?;
    // SAFETY: a live slot's object is a `Box<T>` of the slot's kind (checked), freed only by
    // `remove`; calls on one handle do not overlap (the header's rule), so this is the only
    // reference to it.
    Ok(f(unsafe { &mut *object }))
}

/// Frees handle `id` and gives its object back.
///
/// # Errors
/// `InvalidHandle` if `id` is not a live handle of `T`'s kind.
pub fn remove<T: Handled>(id: u64) -> Result<T, RpStatus> {
    let mut free = FREE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (slot, object) = live::<T>(id)?;
    slot.object.store(std::ptr::null_mut(), Ordering::Release);
    let next = generation_of(slot.tag.load(Ordering::Relaxed))
        .wrapping_add(1)
        .max(1);
    slot.tag.store(tag(next, 0), Ordering::Relaxed);
    free.0.push((id as u32) - 1);
    drop(free);
    // SAFETY: the `Box<T>` that `insert` leaked; the slot no longer points at it, so nothing
    // else will free or use it.
    Ok(*unsafe { Box::from_raw(object) })
}
