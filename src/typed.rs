//! Typed endpoints: messages of one plain-data type, written and read in place, on rings that
//! know their type.
//!
//! A [`Message`] is a `bytemuck::Pod` type with a layout [`Fingerprint`]: its name, size,
//! alignment and, field by field, name, offset, size and type (`#[derive(Message)]` writes it
//! for a `#[repr(C)]` struct). A typed ring records its type's fingerprint when it is made, and
//! a typed endpoint opens it only if the fingerprint is its own: any other is
//! [`Error::TypeMismatch`], never a message read as the wrong type. Each message is one frame of
//! exactly its type's size, written in place ([`TypedGrant`]) and read in place
//! ([`TypedFrame`], [`TypedSample`]): frames start 8-aligned, so types aligned to 8 or less.
//!
//! ```
//! use ringport::typed::Message;
//! use ringport::SpscOptions;
//!
//! #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, Message)]
//! #[repr(C)]
//! struct Tick {
//!     price: f64,
//!     size: u32,
//!     venue: u32,
//! }
//!
//! # fn main() -> Result<(), ringport::Error> {
//! let (mut tx, mut rx) = SpscOptions::new().typed::<Tick>().in_process()?;
//! tx.send(&Tick { price: 101.5, size: 300, venue: 7 })?;
//! let tick = rx.recv()?;
//! assert_eq!((tick.price, tick.size), (101.5, 300));
//! # Ok(()) }
//! ```
//!
//! Types that are not plain data go through serde (feature `serde`): `send_serde` and
//! `recv_serde` on the byte endpoints encode with postcard.

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::layout::MessageType;
use crate::os::Location;
use crate::pubsub::{self, History, PubSubOptions};
use crate::spsc::{self, SpscOptions};

pub use ringport_derive::Message;

/// A plain-data message type with its layout fingerprint. Derive it with
/// `#[derive(Message)]` (with `bytemuck::Pod`) on a `#[repr(C)]` struct; the primitive numbers
/// and arrays of messages have it.
pub trait Message: bytemuck::Pod {
    /// The type's layout, as both ends of a ring must agree on it.
    const FINGERPRINT: Fingerprint;
}

/// A message type's layout: name, size, alignment, and a hash of all of it and of every
/// field's name, offset, size and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    /// The type's name (as written where it is defined).
    pub name: &'static str,
    /// `size_of`.
    pub size: usize,
    /// `align_of`.
    pub align: usize,
    /// FNV-1a over the rest, and over each field's layout.
    pub hash: u64,
}

/// One field of a struct, for [`Fingerprint::of_struct`] (the derive writes these).
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Its name (or index, for a tuple struct).
    pub name: &'static str,
    /// `offset_of`.
    pub offset: usize,
    /// `size_of` its type.
    pub size: usize,
    /// Its type's fingerprint hash.
    pub inner: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x100_0000_01b3;

const fn fnv_bytes(mut hash: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(FNV_PRIME);
        i += 1;
    }
    hash
}

const fn fnv_word(hash: u64, word: u64) -> u64 {
    fnv_bytes(hash, &word.to_le_bytes())
}

impl Fingerprint {
    /// A primitive's: its name, size and alignment.
    #[must_use]
    pub const fn primitive<T>(name: &'static str) -> Fingerprint {
        let (size, align) = (size_of::<T>(), align_of::<T>());
        let hash = fnv_word(
            fnv_word(fnv_bytes(FNV_OFFSET, name.as_bytes()), size as u64),
            align as u64,
        );
        Fingerprint {
            name,
            size,
            align,
            hash,
        }
    }

    /// A struct's, from its fields.
    #[must_use]
    pub const fn of_struct<T>(name: &'static str, fields: &[Field]) -> Fingerprint {
        let mut hash = Fingerprint::primitive::<T>(name).hash;
        let mut i = 0;
        while i < fields.len() {
            let field = fields[i];
            hash = fnv_bytes(hash, field.name.as_bytes());
            hash = fnv_word(hash, field.offset as u64);
            hash = fnv_word(hash, field.size as u64);
            hash = fnv_word(hash, field.inner);
            i += 1;
        }
        Fingerprint {
            name,
            size: size_of::<T>(),
            align: align_of::<T>(),
            hash,
        }
    }

    /// An array's: `N` of `element`.
    #[must_use]
    pub const fn array<T>(element: Fingerprint) -> Fingerprint {
        let hash = fnv_word(
            fnv_word(fnv_bytes(FNV_OFFSET, b"[]"), element.hash),
            size_of::<T>() as u64,
        );
        Fingerprint {
            name: "array",
            size: size_of::<T>(),
            align: align_of::<T>(),
            hash,
        }
    }

    /// As the segment header records it.
    fn record(self) -> MessageType {
        let mut name = [0u8; 32];
        let len = self.name.len().min(32);
        name[..len].copy_from_slice(&self.name.as_bytes()[..len]);
        MessageType {
            hash: self.hash,
            size: self.size as u32,
            align: self.align as u32,
            name,
        }
    }
}

macro_rules! primitive_messages {
    ($($ty:ty),*) => {
        $(impl Message for $ty {
            const FINGERPRINT: Fingerprint = Fingerprint::primitive::<$ty>(stringify!($ty));
        })*
    };
}

primitive_messages!(u8, u16, u32, u64, i8, i16, i32, i64, f32, f64, usize, isize);

impl<T: Message, const N: usize> Message for [T; N]
where
    [T; N]: bytemuck::Pod,
{
    const FINGERPRINT: Fingerprint = Fingerprint::array::<[T; N]>(T::FINGERPRINT);
}

/// The typed form of a ring's options ([`SpscOptions::typed`], [`PubSubOptions::typed`]):
/// the same settings, endpoints of `T`.
#[derive(Debug, Clone)]
pub struct Typed<T, O> {
    options: O,
    _type: PhantomData<fn() -> T>,
}

const fn fits<T: Message>() {
    assert!(
        size_of::<T>() > 0 && align_of::<T>() <= 8,
        "a typed message is at least one byte and aligned to 8 at most (frames start 8-aligned)"
    );
}

impl SpscOptions {
    /// Typed endpoints for messages of `T`: the ring made records `T`'s fingerprint, and a
    /// ring opened must carry it. Frames are exactly `size_of::<T>()` bytes.
    #[must_use]
    pub fn typed<T: Message>(&self) -> Typed<T, SpscOptions> {
        const { fits::<T>() };
        let mut options = self.clone().max_frame(size_of::<T>());
        options.message = Some(T::FINGERPRINT.record());
        Typed {
            options,
            _type: PhantomData,
        }
    }
}

impl PubSubOptions {
    /// Typed endpoints for messages of `T` (as [`SpscOptions::typed`]).
    #[must_use]
    pub fn typed<T: Message>(&self) -> Typed<T, PubSubOptions> {
        const { fits::<T>() };
        let mut options = self.clone().max_message(size_of::<T>());
        options.message = Some(T::FINGERPRINT.record());
        Typed {
            options,
            _type: PhantomData,
        }
    }
}

impl<T: Message> Typed<T, SpscOptions> {
    /// Both ends on the heap (threads of this process).
    ///
    /// # Errors
    /// As [`SpscOptions::in_process`].
    pub fn in_process(&self) -> Result<(TypedProducer<T>, TypedConsumer<T>)> {
        let (producer, consumer) = self.options.in_process()?;
        Ok((TypedProducer::new(producer), TypedConsumer::new(consumer)))
    }

    /// Creates the ring at `location` and becomes its producer.
    ///
    /// # Errors
    /// As [`SpscOptions::create_producer`].
    pub fn create_producer(&self, location: impl Into<Location>) -> Result<TypedProducer<T>> {
        Ok(TypedProducer::new(self.options.create_producer(location)?))
    }

    /// Creates the ring at `location` and becomes its consumer.
    ///
    /// # Errors
    /// As [`SpscOptions::create_consumer`].
    pub fn create_consumer(&self, location: impl Into<Location>) -> Result<TypedConsumer<T>> {
        Ok(TypedConsumer::new(self.options.create_consumer(location)?))
    }

    /// Opens the ring at `location` as its producer.
    ///
    /// # Errors
    /// As [`SpscOptions::open_producer`], and [`Error::TypeMismatch`] if the ring was made
    /// for another type.
    pub fn open_producer(&self, location: impl Into<Location>) -> Result<TypedProducer<T>> {
        Ok(TypedProducer::new(self.options.open_producer(location)?))
    }

    /// Opens the ring at `location` as its consumer.
    ///
    /// # Errors
    /// As [`open_producer`](Self::open_producer).
    pub fn open_consumer(&self, location: impl Into<Location>) -> Result<TypedConsumer<T>> {
        Ok(TypedConsumer::new(self.options.open_consumer(location)?))
    }
}

impl<T: Message> Typed<T, PubSubOptions> {
    /// A ring on the heap, its publisher in this process.
    ///
    /// # Errors
    /// As [`PubSubOptions::in_process`].
    pub fn in_process(&self) -> Result<TypedPublisher<T>> {
        Ok(TypedPublisher::new(self.options.in_process()?))
    }

    /// Creates the ring at `location` and becomes its publisher.
    ///
    /// # Errors
    /// As [`PubSubOptions::create_publisher`].
    pub fn create_publisher(&self, location: impl Into<Location>) -> Result<TypedPublisher<T>> {
        Ok(TypedPublisher::new(
            self.options.create_publisher(location)?,
        ))
    }

    /// Opens the ring at `location` as its publisher.
    ///
    /// # Errors
    /// As [`PubSubOptions::open_publisher`], and [`Error::TypeMismatch`].
    pub fn open_publisher(&self, location: impl Into<Location>) -> Result<TypedPublisher<T>> {
        Ok(TypedPublisher::new(self.options.open_publisher(location)?))
    }

    /// Opens the ring at `location` as a subscriber.
    ///
    /// # Errors
    /// As [`PubSubOptions::open_subscriber`], and [`Error::TypeMismatch`].
    pub fn open_subscriber(&self, location: impl Into<Location>) -> Result<TypedSubscriber<T>> {
        Ok(TypedSubscriber::new(
            self.options.open_subscriber(location)?,
        ))
    }
}

/// Checks a received frame's length against `T`'s size.
fn sized<T: Message>(len: usize) -> Result<()> {
    if len == size_of::<T>() {
        Ok(())
    } else {
        Err(Error::corrupted(
            "typed message length",
            len as u64,
            size_of::<T>() as u64,
        ))
    }
}

/// The writing end of a typed SPSC ring.
pub struct TypedProducer<T> {
    inner: spsc::Producer,
    _type: PhantomData<fn(T)>,
}

impl<T: Message> TypedProducer<T> {
    fn new(inner: spsc::Producer) -> Self {
        TypedProducer {
            inner,
            _type: PhantomData,
        }
    }

    /// Sends a copy of `value`, waiting for room.
    ///
    /// # Errors
    /// As [`spsc::Producer::send`].
    pub fn send(&mut self, value: &T) -> Result<()> {
        self.inner.send(bytemuck::bytes_of(value))
    }

    /// Sends a copy of `value`, or [`Error::Full`] at once.
    ///
    /// # Errors
    /// As [`spsc::Producer::try_send`].
    pub fn try_send(&mut self, value: &T) -> Result<()> {
        self.inner.try_send(bytemuck::bytes_of(value))
    }

    /// Sends a copy of `value`, waiting up to `timeout`.
    ///
    /// # Errors
    /// As [`spsc::Producer::send_timeout`].
    pub fn send_timeout(&mut self, value: &T, timeout: Duration) -> Result<()> {
        self.inner.send_timeout(bytemuck::bytes_of(value), timeout)
    }

    /// Room for one message, written in place (zeroed first), waiting for it.
    ///
    /// # Errors
    /// As [`spsc::Producer::reserve`].
    pub fn reserve(&mut self) -> Result<TypedGrant<'_, T>> {
        let mut grant = self.inner.reserve(size_of::<T>())?;
        grant.fill(0);
        Ok(TypedGrant {
            grant,
            _type: PhantomData,
        })
    }

    /// The byte endpoint underneath.
    pub fn as_bytes(&mut self) -> &mut spsc::Producer {
        &mut self.inner
    }
}

/// One typed message being written in place. Derefs to the value; [`commit`](Self::commit)
/// sends it, dropping it sends nothing.
#[must_use = "a grant sends nothing unless committed"]
pub struct TypedGrant<'a, T> {
    grant: spsc::WriteGrant<'a>,
    _type: PhantomData<fn(T)>,
}

impl<T: Message> TypedGrant<'_, T> {
    /// Sends the message.
    pub fn commit(self) {
        self.grant.commit();
    }
}

impl<T: Message> Deref for TypedGrant<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        bytemuck::from_bytes(&self.grant)
    }
}

impl<T: Message> DerefMut for TypedGrant<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        bytemuck::from_bytes_mut(&mut self.grant)
    }
}

/// The reading end of a typed SPSC ring.
pub struct TypedConsumer<T> {
    inner: spsc::Consumer,
    _type: PhantomData<fn() -> T>,
}

impl<T: Message> TypedConsumer<T> {
    fn new(inner: spsc::Consumer) -> Self {
        TypedConsumer {
            inner,
            _type: PhantomData,
        }
    }

    /// The next message, read in place, waiting for it.
    ///
    /// # Errors
    /// As [`spsc::Consumer::recv`]; [`Error::Corrupted`] for a frame of another size.
    pub fn recv(&mut self) -> Result<TypedFrame<'_, T>> {
        TypedFrame::checked(self.inner.recv()?)
    }

    /// The next message, or [`Error::Empty`] at once.
    ///
    /// # Errors
    /// As [`recv`](Self::recv), and [`Error::Empty`].
    pub fn try_recv(&mut self) -> Result<TypedFrame<'_, T>> {
        TypedFrame::checked(self.inner.try_recv()?)
    }

    /// The next message, waiting up to `timeout`.
    ///
    /// # Errors
    /// As [`recv`](Self::recv), and [`Error::Timeout`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<TypedFrame<'_, T>> {
        TypedFrame::checked(self.inner.recv_timeout(timeout)?)
    }

    /// The byte endpoint underneath.
    pub fn as_bytes(&mut self) -> &mut spsc::Consumer {
        &mut self.inner
    }
}

/// A typed message read in place. Derefs to the value; dropping it frees its frame.
pub struct TypedFrame<'a, T> {
    frame: spsc::ReadGrant<'a>,
    _type: PhantomData<fn() -> T>,
}

impl<'a, T: Message> TypedFrame<'a, T> {
    fn checked(frame: spsc::ReadGrant<'a>) -> Result<Self> {
        sized::<T>(frame.len())?;
        Ok(TypedFrame {
            frame,
            _type: PhantomData,
        })
    }
}

impl<T: Message> Deref for TypedFrame<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        bytemuck::from_bytes(&self.frame)
    }
}

/// The publisher of a typed publish-subscribe ring.
pub struct TypedPublisher<T> {
    inner: pubsub::Publisher,
    _type: PhantomData<fn(T)>,
}

impl<T: Message> TypedPublisher<T> {
    fn new(inner: pubsub::Publisher) -> Self {
        TypedPublisher {
            inner,
            _type: PhantomData,
        }
    }

    /// Publishes a copy of `value`, waiting for room.
    ///
    /// # Errors
    /// As [`pubsub::Publisher::send`].
    pub fn send(&mut self, value: &T) -> Result<()> {
        self.inner.send(bytemuck::bytes_of(value))
    }

    /// Publishes a copy of `value`, or [`Error::Full`] at once.
    ///
    /// # Errors
    /// As [`pubsub::Publisher::try_send`].
    pub fn try_send(&mut self, value: &T) -> Result<()> {
        self.inner.try_send(bytemuck::bytes_of(value))
    }

    /// A subscriber of this ring in this process.
    ///
    /// # Errors
    /// As [`pubsub::Publisher::subscriber`].
    pub fn subscriber(&self, history: History) -> Result<TypedSubscriber<T>> {
        Ok(TypedSubscriber::new(self.inner.subscriber(history)?))
    }

    /// The byte endpoint underneath.
    pub fn as_bytes(&mut self) -> &mut pubsub::Publisher {
        &mut self.inner
    }
}

/// A subscriber of a typed publish-subscribe ring.
pub struct TypedSubscriber<T> {
    inner: pubsub::Subscriber,
    _type: PhantomData<fn() -> T>,
}

impl<T: Message> TypedSubscriber<T> {
    fn new(inner: pubsub::Subscriber) -> Self {
        TypedSubscriber {
            inner,
            _type: PhantomData,
        }
    }

    /// The next message, read in place, waiting for it.
    ///
    /// # Errors
    /// As [`pubsub::Subscriber::recv`]; [`Error::Corrupted`] for a frame of another size.
    pub fn recv(&mut self) -> Result<TypedSample<'_, T>> {
        TypedSample::checked(self.inner.recv()?)
    }

    /// The next message, or [`Error::Empty`] at once.
    ///
    /// # Errors
    /// As [`recv`](Self::recv), and [`Error::Empty`].
    pub fn try_recv(&mut self) -> Result<TypedSample<'_, T>> {
        TypedSample::checked(self.inner.try_recv()?)
    }

    /// The byte endpoint underneath.
    pub fn as_bytes(&mut self) -> &mut pubsub::Subscriber {
        &mut self.inner
    }
}

/// A typed message read in place from a publish-subscribe ring.
pub struct TypedSample<'a, T> {
    sample: pubsub::Sample<'a>,
    _type: PhantomData<fn() -> T>,
}

impl<'a, T: Message> TypedSample<'a, T> {
    fn checked(sample: pubsub::Sample<'a>) -> Result<Self> {
        sized::<T>(sample.len())?;
        Ok(TypedSample {
            sample,
            _type: PhantomData,
        })
    }
}

impl<T> TypedSample<'_, T> {
    /// Its sequence number (see [`pubsub::Sample::seq`]).
    #[must_use]
    pub fn seq(&self) -> u64 {
        self.sample.seq()
    }

    /// Messages lost just before it (see [`pubsub::Sample::lost_before`]).
    #[must_use]
    pub fn lost_before(&self) -> u64 {
        self.sample.lost_before()
    }
}

impl<T: Message> Deref for TypedSample<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        bytemuck::from_bytes(&self.sample)
    }
}

#[cfg(feature = "serde")]
mod serde_messages {
    //! serde messages: encoded with postcard into a frame, decoded from it.

    use serde::de::DeserializeOwned;
    use serde::Serialize;

    use crate::error::{Error, Result};
    use crate::pubsub;
    use crate::spsc;

    fn encode(value: &impl Serialize) -> Result<Vec<u8>> {
        postcard::to_allocvec(value).map_err(|_| Error::Encoding("postcard could not encode it"))
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
        postcard::from_bytes(bytes)
            .map_err(|_| Error::Encoding("the frame is not a postcard encoding of this type"))
    }

    impl spsc::Producer {
        /// Sends `value` encoded with postcard (feature `serde`), waiting for room.
        ///
        /// # Errors
        /// [`Error::Encoding`]; as [`send`](Self::send).
        pub fn send_serde(&mut self, value: &impl Serialize) -> Result<()> {
            self.send(&encode(value)?)
        }
    }

    impl spsc::Consumer {
        /// The next frame decoded with postcard as a `T` (feature `serde`), waiting for it.
        ///
        /// # Errors
        /// [`Error::Encoding`] if it is not one (the frame is consumed); as
        /// [`recv`](Self::recv).
        pub fn recv_serde<T: DeserializeOwned>(&mut self) -> Result<T> {
            decode(&self.recv()?)
        }
    }

    impl pubsub::Publisher {
        /// Publishes `value` encoded with postcard (feature `serde`).
        ///
        /// # Errors
        /// [`Error::Encoding`]; as [`send`](Self::send).
        pub fn send_serde(&mut self, value: &impl Serialize) -> Result<()> {
            self.send(&encode(value)?)
        }
    }

    impl pubsub::Subscriber {
        /// The next message decoded with postcard as a `T` (feature `serde`).
        ///
        /// # Errors
        /// [`Error::Encoding`]; as [`recv`](Self::recv).
        pub fn recv_serde<T: DeserializeOwned>(&mut self) -> Result<T> {
            decode(&self.recv()?)
        }
    }
}

macro_rules! typed_debug {
    ($($name:ident),*) => {
        $(impl<T: Message> std::fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("type", &T::FINGERPRINT.name)
                    .finish_non_exhaustive()
            }
        })*
    };
}

typed_debug!(
    TypedProducer,
    TypedConsumer,
    TypedPublisher,
    TypedSubscriber
);

macro_rules! typed_value_debug {
    ($($name:ident),*) => {
        $(impl<T: Message + std::fmt::Debug> std::fmt::Debug for $name<'_, T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($name)).field(&**self).finish()
            }
        })*
    };
}

typed_value_debug!(TypedGrant, TypedFrame, TypedSample);
