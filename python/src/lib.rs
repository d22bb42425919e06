//! ringport for Python (`import ringport`): the SPSC and MPMC rings and the Channel. A received
//! frame is a zero-copy buffer over the ring (`memoryview(frame)`, `numpy.frombuffer(frame)`)
//! that stays valid until it is released; releasing it while a view of it is alive is refused
//! (`BufferError`), and reading it after is an error, never a read of memory the producer has
//! reused. The GIL is released while a call waits.
#![deny(unsafe_op_in_unsafe_fn)]

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::{
    PyBufferError, PyException, PyFileExistsError, PyFileNotFoundError, PyPermissionError,
    PyTimeoutError, PyValueError,
};
use pyo3::ffi;
use pyo3::prelude::*;

use ringport::{
    mpmc, spsc, Channel as RChannel, Error, Listener as RListener, MpmcOptions, SpscOptions,
};

pyo3::create_exception!(
    _ringport,
    RingportError,
    PyException,
    "A ringport call failed."
);
pyo3::create_exception!(
    _ringport,
    PeerGone,
    RingportError,
    "The peer detached or died, and nothing more can arrive (or be read)."
);
pyo3::create_exception!(
    _ringport,
    Corrupted,
    RingportError,
    "A value read from shared memory broke the ring's invariants."
);

/// The Python exception for `error`.
fn py_err(error: Error) -> PyErr {
    let text = error.to_string();
    match error {
        Error::PeerGone(_) => PeerGone::new_err(text),
        Error::Timeout => PyTimeoutError::new_err(text),
        Error::Corrupted { .. } => Corrupted::new_err(text),
        Error::InvalidName { .. } | Error::InvalidConfig(_) | Error::InvalidLength { .. } => {
            PyValueError::new_err(text)
        }
        Error::NotFound => PyFileNotFoundError::new_err(text),
        Error::AlreadyExists => PyFileExistsError::new_err(text),
        Error::NotOwner { .. }
        | Error::SharedWritable { .. }
        | Error::PeerRefused { .. }
        | Error::Refused => PyPermissionError::new_err(text),
        _ => RingportError::new_err(text),
    }
}

trait OrPy<T> {
    fn or_py(self) -> PyResult<T>;
}

impl<T> OrPy<T> for ringport::Result<T> {
    fn or_py(self) -> PyResult<T> {
        self.map_err(py_err)
    }
}

/// How a call waits: `timeout` None blocks, 0 tries once, otherwise seconds.
#[derive(Clone, Copy)]
enum Wait {
    Try,
    Block,
    For(Duration),
}

fn wait_of(timeout: Option<f64>) -> PyResult<Wait> {
    match timeout {
        None => Ok(Wait::Block),
        Some(0.0) => Ok(Wait::Try),
        Some(t) if t > 0.0 && t.is_finite() => Ok(Wait::For(Duration::from_secs_f64(t))),
        Some(t) => Err(PyValueError::new_err(format!(
            "timeout {t}: seconds, 0 or more"
        ))),
    }
}

/// Runs `f` on the bytes of any object with the buffer protocol: in place when they are
/// contiguous (no copy before the ring's own), else copied out in order (`memoryview.tobytes`).
fn with_bytes<R>(data: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> R) -> PyResult<R> {
    let mut view = std::mem::MaybeUninit::<ffi::Py_buffer>::uninit();
    // SAFETY: a live object and a Py_buffer to fill; PyBUF_SIMPLE asks for contiguous bytes.
    if unsafe { ffi::PyObject_GetBuffer(data.as_ptr(), view.as_mut_ptr(), ffi::PyBUF_SIMPLE) } == 0
    {
        // SAFETY: filled by the successful call above.
        let view = unsafe { view.assume_init_mut() };
        let bytes = if view.len <= 0 || view.buf.is_null() {
            &[][..]
        } else {
            // SAFETY: the exporter's contiguous `len` bytes, kept alive and unmoved (a
            // bytearray cannot be resized while exported) until PyBuffer_Release below.
            unsafe { std::slice::from_raw_parts(view.buf as *const u8, view.len as usize) }
        };
        let result = f(bytes);
        // SAFETY: the view from PyObject_GetBuffer, released once.
        unsafe { ffi::PyBuffer_Release(view) };
        return Ok(result);
    }
    // Not contiguous, or no buffer at all (then memoryview raises TypeError).
    drop(PyErr::take(data.py()));
    let copy: Vec<u8> = pyo3::types::PyMemoryView::from(data)?
        .call_method0("tobytes")?
        .extract()?;
    Ok(f(&copy))
}

/// An endpoint in a box of its own, which a frame or reservation borrows while it is held: the
/// Python object that owns the box outlives every frame (each frame holds a reference to it),
/// and while one is held the endpoint refuses every other call (`busy`).
struct Boxed<E> {
    endpoint: *mut E,
    /// Whether a frame borrows the endpoint. Relaxed everywhere: it is set, cleared and read
    /// only with the GIL held (a frame is made, released and dropped under it, and `get` runs
    /// before a call releases it), and the GIL's hand-over orders those accesses.
    busy: Arc<AtomicBool>,
}

impl<E> Boxed<E> {
    fn new(endpoint: E) -> Boxed<E> {
        Boxed {
            endpoint: Box::into_raw(Box::new(endpoint)),
            busy: Arc::new(AtomicBool::new(false)),
        }
    }

    fn get(&mut self) -> PyResult<&mut E> {
        if self.busy.load(Ordering::Relaxed) {
            return Err(PyBufferError::new_err(
                "a frame, reservation or case of this endpoint is held: release, commit or finish it first",
            ));
        }
        // SAFETY: the box lives as long as `self`; nothing borrows it (not busy), and `&mut
        // self` makes this the only reference.
        Ok(unsafe { &mut *self.endpoint })
    }

    /// The endpoint for a frame that borrows it until the frame marks it not busy again.
    ///
    /// # Safety
    /// The caller marks it busy (`busy`) before it returns, and the frame made from it keeps
    /// the Python object that owns `self` alive.
    unsafe fn lend(&mut self) -> PyResult<&'static mut E> {
        self.get()?;
        // SAFETY: as in `get`; the 'static borrow is bounded by the rule above.
        Ok(unsafe { &mut *self.endpoint })
    }
}

// SAFETY: the endpoint is reached only through `&mut self` (pyo3's exclusive borrow of the
// owning object, held across a released GIL too, so a second thread's call is refused), or by
// the one frame that borrows it while `busy`; it moves between threads as the endpoint may.
unsafe impl<E: Send> Send for Boxed<E> {}
// SAFETY: as above: no `&self` method reaches the endpoint.
unsafe impl<E: Send> Sync for Boxed<E> {}

impl<E> Drop for Boxed<E> {
    fn drop(&mut self) {
        // SAFETY: the box from `new`; no frame is alive (each holds a reference to our owner).
        drop(unsafe { Box::from_raw(self.endpoint) });
    }
}

/// A received frame's grant, of either ring.
enum Grant {
    Spsc(spsc::ReadGrant<'static>),
    Mpmc(mpmc::ReadGrant<'static>),
}

// SAFETY: a grant is reached only through its frame, under pyo3's borrow of the frame (with
// the GIL held: no frame method releases it); it reads the frame's bytes and, when dropped,
// hands them back, which its endpoint (Send) allows from any thread.
unsafe impl Send for Grant {}
// SAFETY: as above.
unsafe impl Sync for Grant {}

impl Grant {
    fn bytes(&self) -> &[u8] {
        match self {
            Grant::Spsc(g) => g,
            Grant::Mpmc(g) => g,
        }
    }
}

/// A frame received in place: a read-only buffer over the ring, valid until `release()` (or the
/// end of a `with` block). `memoryview(frame)` and `numpy.frombuffer(frame, ...)` read it in
/// place; `bytes(frame)` copies it.
#[pyclass(module = "ringport")]
struct Frame {
    grant: Option<Grant>,
    /// Views of the frame alive now (the buffer protocol's exports).
    exports: usize,
    busy: Arc<AtomicBool>,
    /// The endpoint's Python object, kept alive while the grant borrows its box.
    _owner: PyObject,
}

impl Frame {
    fn held(&self) -> PyResult<&Grant> {
        self.grant
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("the frame was released"))
    }

    fn give_back(&mut self) -> PyResult<()> {
        no_views(self.exports, "frame")?;
        if self.grant.take().is_some() {
            self.busy.store(false, Ordering::Relaxed);
        }
        Ok(())
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        // No view can be alive: each holds a reference to this object.
        if self.grant.take().is_some() {
            self.busy.store(false, Ordering::Relaxed);
        }
    }
}

#[pymethods]
impl Frame {
    /// Hands the frame back to the producer. Refused while a view of it is alive.
    fn release(&mut self) -> PyResult<()> {
        self.give_back()
    }

    /// Whether it was released.
    #[getter]
    fn released(&self) -> bool {
        self.grant.is_none()
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(self.held()?.bytes().len())
    }

    /// A copy of the bytes.
    fn __bytes__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
        Ok(pyo3::types::PyBytes::new(py, self.held()?.bytes()))
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __exit__(
        &mut self,
        _kind: Option<PyObject>,
        _value: Option<PyObject>,
        _traceback: Option<PyObject>,
    ) -> PyResult<bool> {
        self.give_back()?;
        Ok(false)
    }

    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let (ptr, len) = {
            let this = slf.borrow();
            let bytes = this.held()?.bytes();
            (bytes.as_ptr(), bytes.len())
        };
        // SAFETY: the interpreter's view to fill; the bytes stay valid while this object holds
        // the grant, which it keeps while `exports` > 0 (`release` refuses).
        unsafe { export(slf.as_any(), view, flags, ptr.cast_mut(), len, false) }?;
        slf.borrow_mut().exports += 1;
        Ok(())
    }

    unsafe fn __releasebuffer__(&mut self, _view: *mut ffi::Py_buffer) {
        self.exports -= 1;
    }

    fn __repr__(&self) -> String {
        match &self.grant {
            Some(g) => format!("<ringport.Frame of {} bytes>", g.bytes().len()),
            None => "<ringport.Frame, released>".to_owned(),
        }
    }
}

/// Fills `view`, a buffer-protocol request with `flags`, with the `len` bytes at `ptr` as one
/// dimension of unsigned bytes, `writable` or read-only; the view holds a reference to `owner`.
///
/// # Safety
/// `view` is the interpreter's Py_buffer to fill, or null (refused); the bytes stay valid and
/// unmoved until the view is released (the owner counts its exports and refuses to let them go
/// while any is alive).
unsafe fn export(
    owner: &Bound<'_, PyAny>,
    view: *mut ffi::Py_buffer,
    flags: c_int,
    ptr: *mut u8,
    len: usize,
    writable: bool,
) -> PyResult<()> {
    if view.is_null() {
        return Err(PyBufferError::new_err("no view to fill"));
    }
    if !writable && flags & ffi::PyBUF_WRITABLE == ffi::PyBUF_WRITABLE {
        return Err(PyBufferError::new_err(
            "read-only: a received frame or case cannot be written",
        ));
    }
    // SAFETY: non-null (checked), the interpreter's to fill, by the caller's contract.
    unsafe {
        (*view).obj = owner.clone().into_ptr();
        (*view).buf = ptr.cast::<c_void>();
        (*view).len = len as ffi::Py_ssize_t;
        (*view).readonly = c_int::from(!writable);
        (*view).itemsize = 1;
        (*view).format = if flags & ffi::PyBUF_FORMAT == ffi::PyBUF_FORMAT {
            c"B".as_ptr() as *mut _
        } else {
            std::ptr::null_mut()
        };
        (*view).ndim = 1;
        (*view).shape = if flags & ffi::PyBUF_ND == ffi::PyBUF_ND {
            &mut (*view).len
        } else {
            std::ptr::null_mut()
        };
        (*view).strides = if flags & ffi::PyBUF_STRIDES == ffi::PyBUF_STRIDES {
            &mut (*view).itemsize
        } else {
            std::ptr::null_mut()
        };
        (*view).suboffsets = std::ptr::null_mut();
        (*view).internal = std::ptr::null_mut();
    }
    Ok(())
}

/// Refuses to let go of bytes that a view still shows.
fn no_views(exports: usize, what: &str) -> PyResult<()> {
    if exports > 0 {
        return Err(PyBufferError::new_err(format!(
            "{exports} view(s) of the {what} are alive (memoryview, numpy array): release them first"
        )));
    }
    Ok(())
}

/// A reservation's grant, of either ring.
enum Room {
    Spsc(spsc::WriteGrant<'static>),
    Mpmc(mpmc::WriteGrant<'static>),
}

// SAFETY: as for `Grant`: reached only through its reservation, under pyo3's borrow of it with
// the GIL held; committing or dropping it publishes (or aborts) on its endpoint, which (Send)
// allows that from any thread.
unsafe impl Send for Room {}
// SAFETY: as above.
unsafe impl Sync for Room {}

impl Room {
    fn bytes(&mut self) -> &mut [u8] {
        match self {
            Room::Spsc(g) => g,
            Room::Mpmc(g) => g,
        }
    }

    /// Publishes the first `len` bytes (0 aborts); `len` is at most the reserved length.
    fn commit(self, len: usize) {
        match self {
            Room::Spsc(g) => g.commit_len(len),
            Room::Mpmc(g) => g.commit_len(len),
        }
    }
}

/// Room reserved in the ring, written in place: a writable buffer (`memoryview(room)`,
/// `numpy.frombuffer(room, ...)`) until `commit()` publishes it as one frame or `abort()`
/// drops it. As a context manager it commits what was reserved when the block ends normally
/// (unless committed or aborted in it) and aborts when the block raises. Committing while a
/// view of it is alive is refused (`BufferError`): a write through the view after the commit
/// would change a published frame.
#[pyclass(module = "ringport")]
struct Reservation {
    room: Option<Room>,
    exports: usize,
    busy: Arc<AtomicBool>,
    /// The endpoint's Python object, kept alive while the grant borrows its box.
    _owner: PyObject,
}

impl Reservation {
    fn finish(&mut self, len: Option<usize>) -> PyResult<()> {
        no_views(self.exports, "reservation")?;
        let Some(mut room) = self.room.take() else {
            return Err(PyValueError::new_err(
                "the reservation was committed or aborted already",
            ));
        };
        let reserved = room.bytes().len();
        let len = len.unwrap_or(reserved);
        if len > reserved {
            self.room = Some(room);
            return Err(PyValueError::new_err(format!(
                "a commit of {len} bytes, {reserved} reserved: the reservation stays"
            )));
        }
        room.commit(len);
        self.busy.store(false, Ordering::Relaxed);
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // Dropped unfinished (no view can be alive: each holds a reference): aborted.
        if let Some(room) = self.room.take() {
            room.commit(0);
            self.busy.store(false, Ordering::Relaxed);
        }
    }
}

#[pymethods]
impl Reservation {
    /// Publishes the first `len` bytes as one frame (None: all that was reserved; 0 aborts).
    #[pyo3(signature = (len = None))]
    fn commit(&mut self, len: Option<usize>) -> PyResult<()> {
        self.finish(len)
    }

    /// Drops the reservation: the consumer sees nothing of it.
    fn abort(&mut self) -> PyResult<()> {
        self.finish(Some(0))
    }

    /// Whether it was committed or aborted.
    #[getter]
    fn done(&self) -> bool {
        self.room.is_none()
    }

    fn __len__(&mut self) -> PyResult<usize> {
        Ok(self.held()?.bytes().len())
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __exit__(
        &mut self,
        kind: Option<PyObject>,
        _value: Option<PyObject>,
        _traceback: Option<PyObject>,
    ) -> PyResult<bool> {
        if self.room.is_some() {
            self.finish(if kind.is_some() { Some(0) } else { None })?;
        }
        Ok(false)
    }

    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let (ptr, len) = {
            let mut this = slf.borrow_mut();
            let bytes = this.held()?.bytes();
            (bytes.as_mut_ptr(), bytes.len())
        };
        // SAFETY: the interpreter's view to fill; the room stays reserved while this object
        // holds the grant, which it keeps while `exports` > 0 (`commit` and `abort` refuse).
        unsafe { export(slf.as_any(), view, flags, ptr, len, true) }?;
        slf.borrow_mut().exports += 1;
        Ok(())
    }

    unsafe fn __releasebuffer__(&mut self, _view: *mut ffi::Py_buffer) {
        self.exports -= 1;
    }

    fn __repr__(&mut self) -> String {
        match &mut self.room {
            Some(room) => format!("<ringport.Reservation of {} bytes>", room.bytes().len()),
            None => "<ringport.Reservation, done>".to_owned(),
        }
    }
}

impl Reservation {
    fn held(&mut self) -> PyResult<&mut Room> {
        self.room.as_mut().ok_or_else(|| {
            PyValueError::new_err("the reservation was committed or aborted already")
        })
    }
}

/// The in-place reservation of either ring's producer, by how it waits.
trait Reserves: Send + 'static {
    fn reserve_by(&'static mut self, len: usize, wait: Wait) -> ringport::Result<Room>;
}

macro_rules! reserves {
    ($producer:ty, $variant:ident) => {
        impl Reserves for $producer {
            fn reserve_by(&'static mut self, len: usize, wait: Wait) -> ringport::Result<Room> {
                match wait {
                    Wait::Try => self.try_reserve(len),
                    Wait::Block => self.reserve(len),
                    Wait::For(t) => self.reserve_timeout(len, t),
                }
                .map(Room::$variant)
            }
        }
    };
}
reserves!(spsc::Producer, Spsc);
reserves!(mpmc::Producer, Mpmc);

/// `reserve` of either producer class: room for `len` bytes in place, None when it tried and
/// the ring was full.
fn reserve_any<P, T>(
    slf: Bound<'_, T>,
    len: usize,
    timeout: Option<f64>,
    inner: impl FnOnce(&mut T) -> &mut Boxed<P>,
) -> PyResult<Option<Reservation>>
where
    P: Reserves,
    T: pyo3::PyClass<Frozen = pyo3::pyclass::boolean_struct::False>,
{
    let wait = wait_of(timeout)?;
    Ok(
        lend(slf, wait, inner, |p| p.reserve_by(len, wait))?.map(|lent| Reservation {
            room: Some(lent.grant),
            exports: 0,
            busy: lent.busy,
            _owner: lent.owner,
        }),
    )
}

/// A grant made of an endpoint lent to it, the endpoint marked busy until the grant's holder
/// lets it go, and the endpoint's Python object, which the holder keeps alive meanwhile.
struct Lent<G> {
    grant: G,
    busy: Arc<AtomicBool>,
    owner: PyObject,
}

/// Lends `slf`'s endpoint to `make` for a grant that borrows it (the GIL released while it
/// waits, unless `wait` is a try): a frame, a reservation or a case. None when it tried and the
/// ring was empty (or full).
fn lend<E, T, G>(
    slf: Bound<'_, T>,
    wait: Wait,
    inner: impl FnOnce(&mut T) -> &mut Boxed<E>,
    make: impl FnOnce(&'static mut E) -> ringport::Result<G> + Send,
) -> PyResult<Option<Lent<G>>>
where
    E: Send + 'static,
    G: Send,
    T: pyo3::PyClass<Frozen = pyo3::pyclass::boolean_struct::False>,
{
    let py = slf.py();
    let mut this = slf.borrow_mut();
    let boxed = inner(&mut this);
    let busy = Arc::clone(&boxed.busy);
    // SAFETY: marked busy below once the grant is made, and its holder keeps `slf` (`owner`).
    let endpoint = unsafe { boxed.lend()? };
    let got = match wait {
        Wait::Try => make(endpoint),
        _ => py.allow_threads(|| make(endpoint)),
    };
    drop(this);
    match got {
        Ok(grant) => {
            busy.store(true, Ordering::Relaxed);
            Ok(Some(Lent {
                grant,
                busy,
                owner: slf.into_any().unbind(),
            }))
        }
        Err(Error::Empty | Error::Full) => Ok(None),
        Err(e) => Err(py_err(e)),
    }
}

/// The copying send of either ring's producer, by how it waits.
trait Sends: Send {
    fn send_by(&mut self, data: &[u8], wait: Wait) -> ringport::Result<()>;
}

macro_rules! sends {
    ($producer:ty) => {
        impl Sends for $producer {
            fn send_by(&mut self, data: &[u8], wait: Wait) -> ringport::Result<()> {
                match wait {
                    Wait::Try => self.try_send(data),
                    Wait::Block => self.send(data),
                    Wait::For(t) => self.send_timeout(data, t),
                }
            }
        }
    };
}
sends!(spsc::Producer);
sends!(mpmc::Producer);

/// `send` of either producer class: False when it tried and the ring was full. The GIL is
/// released while it waits; the producer's object stays borrowed meanwhile, so another
/// thread's call on it is refused, not run alongside.
fn send_any<P: Sends>(
    py: Python<'_>,
    producer: &mut P,
    data: &Bound<'_, PyAny>,
    timeout: Option<f64>,
) -> PyResult<bool> {
    let wait = wait_of(timeout)?;
    let sent = with_bytes(data, |bytes| match wait {
        Wait::Try => producer.send_by(bytes, wait),
        _ => py.allow_threads(|| producer.send_by(bytes, wait)),
    })?;
    match sent {
        Ok(()) => Ok(true),
        Err(Error::Full) => Ok(false),
        Err(e) => Err(py_err(e)),
    }
}

/// The in-place receive of either ring's consumer, by how it waits.
trait Receives: Send + 'static {
    fn recv_by(&'static mut self, wait: Wait) -> ringport::Result<Grant>;
}

macro_rules! receives {
    ($consumer:ty, $variant:ident) => {
        impl Receives for $consumer {
            fn recv_by(&'static mut self, wait: Wait) -> ringport::Result<Grant> {
                match wait {
                    Wait::Try => self.try_recv(),
                    Wait::Block => self.recv(),
                    Wait::For(t) => self.recv_timeout(t),
                }
                .map(Grant::$variant)
            }
        }
    };
}
receives!(spsc::Consumer, Spsc);
receives!(mpmc::Consumer, Mpmc);

/// `recv` of either consumer class: the next frame in place, None when it tried and the ring
/// was empty.
fn recv_any<C, T>(
    slf: Bound<'_, T>,
    timeout: Option<f64>,
    inner: impl FnOnce(&mut T) -> &mut Boxed<C>,
) -> PyResult<Option<Frame>>
where
    C: Receives,
    T: pyo3::PyClass<Frozen = pyo3::pyclass::boolean_struct::False>,
{
    let wait = wait_of(timeout)?;
    Ok(
        lend(slf, wait, inner, |c| c.recv_by(wait))?.map(|lent| Frame {
            grant: Some(lent.grant),
            exports: 0,
            busy: lent.busy,
            _owner: lent.owner,
        }),
    )
}

fn spsc_options(
    capacity: usize,
    max_frame: Option<usize>,
    keep_segment: bool,
    spin: Option<f64>,
) -> PyResult<SpscOptions> {
    let mut options = SpscOptions::new()
        .capacity(capacity)
        .keep_segment(keep_segment);
    if let Some(spin) = spin {
        options = options.spin(seconds(spin)?);
    }
    Ok(match max_frame {
        Some(m) => options.max_frame(m),
        None => options,
    })
}

fn seconds(s: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| PyValueError::new_err(format!("{s}: seconds, 0 or more")))
}

/// The writing end of an SPSC ring.
#[pyclass(module = "ringport")]
struct Producer {
    inner: Boxed<spsc::Producer>,
}

#[pymethods]
impl Producer {
    /// Creates the ring at `location` (`NAME`, `sysv:KEY`, `file:PATH`, `@NAME`) and takes its
    /// producer role.
    #[staticmethod]
    #[pyo3(signature = (location, capacity = 1 << 20, max_frame = None, keep_segment = false, spin = None))]
    fn create(
        location: &str,
        capacity: usize,
        max_frame: Option<usize>,
        keep_segment: bool,
        spin: Option<f64>,
    ) -> PyResult<Producer> {
        let loc = ringport::Location::parse(location).or_py()?;
        let producer = spsc_options(capacity, max_frame, keep_segment, spin)?
            .create_producer(loc)
            .or_py()?;
        Ok(Producer {
            inner: Boxed::new(producer),
        })
    }

    /// Opens the ring another process made and takes its producer role (`spin`: seconds a
    /// blocking call spins before it sleeps; default 20 us).
    #[staticmethod]
    #[pyo3(signature = (location, spin = None))]
    fn open(location: &str, spin: Option<f64>) -> PyResult<Producer> {
        let loc = ringport::Location::parse(location).or_py()?;
        let producer = spsc_options(1 << 20, None, false, spin)?
            .open_producer(loc)
            .or_py()?;
        Ok(Producer {
            inner: Boxed::new(producer),
        })
    }

    /// Copies `data` (bytes, bytearray, memoryview, a numpy array: any buffer) into the ring as
    /// one frame, waiting for room (`timeout`: None waits, 0 tries once, else seconds); the GIL
    /// is released while it waits. Returns False when it tried and the ring was full.
    #[pyo3(signature = (data, timeout = None))]
    fn send(
        &mut self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<bool> {
        send_any(py, self.inner.get()?, data, timeout)
    }

    /// Room for a frame of `len` bytes, to write in place (see `Reservation`), waiting for it
    /// (`timeout` as for `send`). None when it tried and the ring was full.
    #[pyo3(signature = (len, timeout = None))]
    fn reserve(
        slf: Bound<'_, Self>,
        len: usize,
        timeout: Option<f64>,
    ) -> PyResult<Option<Reservation>> {
        reserve_any(slf, len, timeout, |p: &mut Self| &mut p.inner)
    }

    /// The data area and the largest frame, in bytes.
    #[getter]
    fn capacity(&mut self) -> PyResult<usize> {
        Ok(self.inner.get()?.capacity())
    }

    #[getter]
    fn max_frame(&mut self) -> PyResult<usize> {
        Ok(self.inner.get()?.max_frame())
    }
}

/// The reading end of an SPSC ring.
#[pyclass(module = "ringport")]
struct Consumer {
    inner: Boxed<spsc::Consumer>,
}

#[pymethods]
impl Consumer {
    /// Creates the ring at `location` and takes its consumer role.
    #[staticmethod]
    #[pyo3(signature = (location, capacity = 1 << 20, max_frame = None, keep_segment = false, spin = None))]
    fn create(
        location: &str,
        capacity: usize,
        max_frame: Option<usize>,
        keep_segment: bool,
        spin: Option<f64>,
    ) -> PyResult<Consumer> {
        let loc = ringport::Location::parse(location).or_py()?;
        let consumer = spsc_options(capacity, max_frame, keep_segment, spin)?
            .create_consumer(loc)
            .or_py()?;
        Ok(Consumer {
            inner: Boxed::new(consumer),
        })
    }

    /// Opens the ring another process made and takes its consumer role (`spin` as for
    /// `Producer.open`).
    #[staticmethod]
    #[pyo3(signature = (location, spin = None))]
    fn open(location: &str, spin: Option<f64>) -> PyResult<Consumer> {
        let loc = ringport::Location::parse(location).or_py()?;
        let consumer = spsc_options(1 << 20, None, false, spin)?
            .open_consumer(loc)
            .or_py()?;
        Ok(Consumer {
            inner: Boxed::new(consumer),
        })
    }

    /// The next frame, in place (see `Frame`), waiting for one (`timeout`: None waits, 0 tries
    /// once, else seconds; the GIL is released while it waits). None when it tried and the ring
    /// was empty. `PeerGone` once the producer has gone and everything it sent was received.
    #[pyo3(signature = (timeout = None))]
    fn recv(slf: Bound<'_, Self>, timeout: Option<f64>) -> PyResult<Option<Frame>> {
        recv_any(slf, timeout, |c: &mut Self| &mut c.inner)
    }

    /// The next frame, copied into a `bytes` (None when it tried and the ring was empty).
    #[pyo3(signature = (timeout = None))]
    fn recv_bytes(&mut self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<PyObject>> {
        let wait = wait_of(timeout)?;
        let consumer = self.inner.get()?;
        let mut buf = Vec::new();
        let got = match wait {
            Wait::Try => consumer.try_recv_into(&mut buf),
            Wait::Block => py.allow_threads(|| consumer.recv_into(&mut buf)),
            Wait::For(t) => py.allow_threads(|| consumer.recv_into_timeout(&mut buf, t)),
        };
        match got {
            Ok(_) => Ok(Some(
                pyo3::types::PyBytes::new(py, &buf).into_any().unbind(),
            )),
            Err(Error::Empty) => Ok(None),
            Err(e) => Err(py_err(e)),
        }
    }
}

/// A ring of slots shared by any number of producers and consumers, in any processes.
#[pyclass(module = "ringport")]
struct MpmcRing {
    ring: Exclusive<mpmc::Ring>,
}

/// A value reached only through `&mut` (pyo3's exclusive borrow of its owner), so that a
/// value that is Send but not Sync can live in a class that threads share.
struct Exclusive<T>(T);

// SAFETY: no `&self` access reaches the value (see `get`); it moves as T may.
unsafe impl<T: Send> Sync for Exclusive<T> {}

impl<T> Exclusive<T> {
    fn get(&mut self) -> &mut T {
        &mut self.0
    }
}

#[pymethods]
impl MpmcRing {
    /// Creates the ring at `location`: `slots` slots of `slot_size` bytes.
    #[staticmethod]
    #[pyo3(signature = (location, slots = 1024, slot_size = 256, keep_segment = false))]
    fn create(
        location: &str,
        slots: usize,
        slot_size: usize,
        keep_segment: bool,
    ) -> PyResult<MpmcRing> {
        let loc = ringport::Location::parse(location).or_py()?;
        let ring = MpmcOptions::new()
            .slots(slots)
            .slot_size(slot_size)
            .keep_segment(keep_segment)
            .create(loc)
            .or_py()?;
        Ok(MpmcRing {
            ring: Exclusive(ring),
        })
    }

    /// Opens the ring another process made.
    #[staticmethod]
    fn open(location: &str) -> PyResult<MpmcRing> {
        let loc = ringport::Location::parse(location).or_py()?;
        Ok(MpmcRing {
            ring: Exclusive(MpmcOptions::new().open(loc).or_py()?),
        })
    }

    /// A new producer.
    fn producer(&mut self) -> MpmcProducer {
        MpmcProducer {
            inner: Boxed::new(self.ring.get().producer()),
        }
    }

    /// A new consumer.
    fn consumer(&mut self) -> MpmcConsumer {
        MpmcConsumer {
            inner: Boxed::new(self.ring.get().consumer()),
        }
    }

    /// Slots completed on behalf of handles that died holding them.
    #[getter]
    fn recovered_slots(&mut self) -> u64 {
        self.ring.get().recovered_slots()
    }
}

/// A producer of an MPMC ring.
#[pyclass(module = "ringport")]
struct MpmcProducer {
    inner: Boxed<mpmc::Producer>,
}

#[pymethods]
impl MpmcProducer {
    /// As `Producer.send`: one message, at most the slot size.
    #[pyo3(signature = (data, timeout = None))]
    fn send(
        &mut self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<bool> {
        send_any(py, self.inner.get()?, data, timeout)
    }

    /// As `Producer.reserve`: a slot to write in place, `len` at most the slot size.
    #[pyo3(signature = (len, timeout = None))]
    fn reserve(
        slf: Bound<'_, Self>,
        len: usize,
        timeout: Option<f64>,
    ) -> PyResult<Option<Reservation>> {
        reserve_any(slf, len, timeout, |p: &mut Self| &mut p.inner)
    }
}

/// A consumer of an MPMC ring.
#[pyclass(module = "ringport")]
struct MpmcConsumer {
    inner: Boxed<mpmc::Consumer>,
}

#[pymethods]
impl MpmcConsumer {
    /// As `Consumer.recv`: the next message in place.
    #[pyo3(signature = (timeout = None))]
    fn recv(slf: Bound<'_, Self>, timeout: Option<f64>) -> PyResult<Option<Frame>> {
        recv_any(slf, timeout, |c: &mut Self| &mut c.inner)
    }
}

/// A listener for Channels at a path (`@NAME`: an abstract socket).
#[pyclass(module = "ringport")]
struct Listener {
    listener: RListener,
}

#[pymethods]
impl Listener {
    #[new]
    fn new(path: &str) -> PyResult<Listener> {
        Ok(Listener {
            listener: RListener::bind(path).or_py()?,
        })
    }

    /// The next client's channel (`timeout` in seconds, None: wait).
    #[pyo3(signature = (timeout = None))]
    fn accept(&mut self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Channel> {
        let listener = &self.listener;
        let channel = match wait_of(timeout)? {
            Wait::Block => py.allow_threads(|| listener.accept()),
            Wait::Try => listener.accept_timeout(Duration::ZERO),
            Wait::For(t) => py.allow_threads(|| listener.accept_timeout(t)),
        }
        .or_py()?;
        Ok(Channel { channel })
    }
}

/// Messages between two processes: a Unix socket, then shared rings when the traffic pays.
#[pyclass(module = "ringport")]
struct Channel {
    channel: RChannel,
}

#[pymethods]
impl Channel {
    /// Connects to the listener at `path`.
    #[staticmethod]
    fn connect(path: &str) -> PyResult<Channel> {
        Ok(Channel {
            channel: RChannel::connect(path).or_py()?,
        })
    }

    /// Sends `data` (any buffer) as one message.
    fn send(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let channel = &mut self.channel;
        with_bytes(data, |bytes| py.allow_threads(|| channel.send(bytes)))?.or_py()
    }

    /// The next message as `bytes` (`timeout`: None waits, 0 tries once; None when it tried
    /// and nothing was there). `PeerGone` once the peer closed and all was received.
    #[pyo3(signature = (timeout = None))]
    fn recv(&mut self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<PyObject>> {
        let wait = wait_of(timeout)?;
        let channel = &mut self.channel;
        let mut buf = Vec::new();
        let got = match wait {
            Wait::Try => channel.try_recv(&mut buf),
            Wait::Block => py.allow_threads(|| channel.recv(&mut buf)),
            Wait::For(t) => py.allow_threads(|| channel.recv_timeout(&mut buf, t)),
        };
        match got {
            Ok(_) => Ok(Some(
                pyo3::types::PyBytes::new(py, &buf).into_any().unbind(),
            )),
            Err(Error::Empty) => Ok(None),
            Err(e) => Err(py_err(e)),
        }
    }
}

// ---- the fuzzing harness ----

/// The case a target holds, borrowing its `Target`'s box.
struct HeldCase(ringport::harness::Case<'static>);

// SAFETY: as for `Grant`: reached only through its `Case`, under pyo3's borrow of it with the
// GIL held; finishing or dropping it writes to its target's rings, which (Send) allows that
// from any thread.
unsafe impl Send for HeldCase {}
// SAFETY: as above.
unsafe impl Sync for HeldCase {}

/// A fuzzing target's end of a harness, in a process that a driver (`ringport harness -- ...`,
/// `Harness`, or Rust's `ringport::harness`) started: the cases, one at a time, in place.
#[pyclass(module = "ringport")]
struct Target {
    inner: Boxed<ringport::harness::Target>,
    /// Taken at the start: the code that runs a case counts its hits while the case is held.
    coverage: Option<ringport::harness::CoverageMap>,
}

#[pymethods]
impl Target {
    /// The rings the driver passed in the environment (`RINGPORT_HARNESS`); once a process.
    #[staticmethod]
    fn from_env() -> PyResult<Target> {
        let target = ringport::harness::Target::from_env().or_py()?;
        Ok(Target {
            coverage: target.coverage(),
            inner: Boxed::new(target),
        })
    }

    /// The next case, in place (see `Case`), waiting for it with the GIL released. `PeerGone`
    /// once the driver has gone: the target then ends.
    fn next_case(slf: Bound<'_, Self>) -> PyResult<Case> {
        let lent = lend(
            slf,
            Wait::Block,
            |t: &mut Self| &mut t.inner,
            |t| t.next_case().map(HeldCase),
        )?
        .expect("a blocking wait is never empty");
        Ok(Case {
            id: lent.grant.0.id(),
            case: Some(lent.grant),
            exports: 0,
            busy: lent.busy,
            _owner: lent.owner,
        })
    }

    /// Runs `test(case)` on every case until the driver goes, and answers each with what it
    /// returns (any buffer; None for nothing), as `LLVMFuzzerTestOneInput` with a result. A
    /// case that `test` crashes or hangs on is the one the driver blames.
    fn run(slf: Bound<'_, Self>, test: &Bound<'_, PyAny>) -> PyResult<()> {
        loop {
            let case = match Target::next_case(slf.clone()) {
                Ok(case) => Bound::new(slf.py(), case)?,
                Err(e) if e.is_instance_of::<PeerGone>(slf.py()) => return Ok(()),
                Err(e) => return Err(e),
            };
            let result = test.call1((case.clone(),))?;
            let result = if result.is_none() { None } else { Some(result) };
            case.borrow_mut().answer(result.as_ref())?;
        }
    }

    /// The coverage map the driver shares (`Harness(coverage=...)`), or None.
    #[getter]
    fn coverage(&self) -> Option<Coverage> {
        self.coverage.clone().map(|map| Coverage { map })
    }
}

/// A case being run: a read-only buffer of its bytes, in the ring, until `finish()`. As a
/// context manager it finishes with no result when the block ends normally (unless finished
/// in it); when the block raises, the case stays unanswered and the exception goes on (a
/// target that dies of it is blamed for this case).
#[pyclass(module = "ringport")]
struct Case {
    case: Option<HeldCase>,
    /// The case's number, from 0, as the driver's verdicts name it.
    #[pyo3(get)]
    id: u64,
    exports: usize,
    busy: Arc<AtomicBool>,
    _owner: PyObject,
}

impl Case {
    fn held(&self) -> PyResult<&HeldCase> {
        self.case
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("the case was finished"))
    }

    fn answer(&mut self, result: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        no_views(self.exports, "case")?;
        self.held()?;
        // The case is taken only once the result's bytes are in hand: a result that is not a
        // buffer is a TypeError, and the case stays held for a second try.
        let mut finish = |bytes: &[u8]| {
            let case = self.case.take().expect("held");
            self.busy.store(false, Ordering::Relaxed);
            case.0.finish(bytes)
        };
        match result {
            Some(result) => with_bytes(result, finish)?,
            None => finish(&[]),
        }
        .or_py()
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        // Unanswered: the driver times the case out.
        if self.case.take().is_some() {
            self.busy.store(false, Ordering::Relaxed);
        }
    }
}

#[pymethods]
impl Case {
    /// Answers the case with `result` (any buffer; empty by default), then frees it. The
    /// answer goes first: a target that dies after it is not blamed for this case. Refused
    /// while a view of the case is alive.
    #[pyo3(signature = (result = None))]
    fn finish(&mut self, result: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.answer(result)
    }

    /// Whether it was finished.
    #[getter]
    fn finished(&self) -> bool {
        self.case.is_none()
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(self.held()?.0.data().len())
    }

    /// A copy of the bytes.
    fn __bytes__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
        Ok(pyo3::types::PyBytes::new(py, self.held()?.0.data()))
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __exit__(
        &mut self,
        kind: Option<PyObject>,
        _value: Option<PyObject>,
        _traceback: Option<PyObject>,
    ) -> PyResult<bool> {
        if kind.is_none() && self.case.is_some() {
            self.answer(None)?;
        }
        Ok(false)
    }

    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let (ptr, len) = {
            let this = slf.borrow();
            let bytes = this.held()?.0.data();
            (bytes.as_ptr(), bytes.len())
        };
        // SAFETY: the interpreter's view to fill; the bytes stay valid while this object holds
        // the case, which it keeps while `exports` > 0 (`finish` refuses).
        unsafe { export(slf.as_any(), view, flags, ptr.cast_mut(), len, false) }?;
        slf.borrow_mut().exports += 1;
        Ok(())
    }

    unsafe fn __releasebuffer__(&mut self, _view: *mut ffi::Py_buffer) {
        self.exports -= 1;
    }

    fn __repr__(&self) -> String {
        match &self.case {
            Some(c) => format!("<ringport.Case {} of {} bytes>", self.id, c.0.data().len()),
            None => format!("<ringport.Case {}, finished>", self.id),
        }
    }
}

/// The coverage map a driver shares with its target: a writable buffer of hit counts
/// (`memoryview(map)`, `numpy.frombuffer(map, numpy.uint8)`), set with plain stores, or `hit`.
#[pyclass(module = "ringport", frozen)]
struct Coverage {
    map: ringport::harness::CoverageMap,
}

#[pymethods]
impl Coverage {
    /// Counts a hit of `index` (modulo the map's size), wrapping at 255.
    fn hit(&self, index: usize) {
        self.map.hit(index);
    }

    fn __len__(&self) -> usize {
        self.map.len()
    }

    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let (ptr, len) = (slf.get().map.as_mut_ptr(), slf.get().map.len());
        // SAFETY: the interpreter's view to fill; the map stays mapped while this object
        // lives, and the view holds a reference to it.
        unsafe { export(slf.as_any(), view, flags, ptr, len, true) }
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}
}

/// Makes this process a fork server if its driver asked for one (`Harness(fork_server=True)`):
/// returns only in a forked child, each a copy of the state built so far, which goes on to
/// `Target.from_env()`. Call it after the expensive set-up and before starting any thread.
#[pyfunction]
fn fork_server() -> PyResult<()> {
    ringport::harness::fork_server().or_py()
}

/// What became of a case: `kind` is "ok" (the target answered, `result` its bytes), "crashed"
/// (it died running the case: `signal` or `exit_code`) or "timed_out" (killed after the case
/// timeout).
#[pyclass(module = "ringport", frozen, get_all)]
struct Verdict {
    kind: &'static str,
    id: u64,
    result: Option<PyObject>,
    signal: Option<i32>,
    exit_code: Option<i32>,
}

#[pymethods]
impl Verdict {
    fn __repr__(&self) -> String {
        match (self.kind, self.signal, self.exit_code) {
            ("crashed", Some(signal), _) => {
                format!("<Verdict {} crashed: signal {signal}>", self.id)
            }
            ("crashed", _, Some(code)) => format!("<Verdict {} crashed: exit {code}>", self.id),
            (kind, _, _) => format!("<Verdict {} {kind}>", self.id),
        }
    }
}

fn verdict(py: Python<'_>, v: ringport::harness::Verdict) -> Verdict {
    use ringport::harness::Verdict as V;
    use std::os::unix::process::ExitStatusExt;
    let (kind, id, result, status) = match v {
        V::Ok { id, result } => (
            "ok",
            id,
            Some(pyo3::types::PyBytes::new(py, &result).into_any().unbind()),
            None,
        ),
        V::Crashed { id, status } => ("crashed", id, None, Some(status)),
        V::TimedOut { id } => ("timed_out", id, None, None),
        // A verdict a later version adds.
        #[allow(unreachable_patterns)]
        other => ("other", other.id(), None, None),
    };
    Verdict {
        kind,
        id,
        result,
        signal: status.and_then(|s| s.signal()),
        exit_code: status.and_then(|s| s.code()),
    }
}

/// The driver's end of a harness: starts `argv` as the target, sends it cases and gives one
/// verdict per case, in order, restarting the target whenever it dies.
#[pyclass(module = "ringport")]
struct Harness {
    driver: Exclusive<ringport::harness::Driver>,
}

#[pymethods]
impl Harness {
    /// `case_timeout` in seconds; `in_flight` cases sent ahead of their verdicts; `coverage` the
    /// size of a shared coverage map (0: none); `fork_server`: the target calls `fork_server()`.
    // One parameter a Python keyword argument.
    #[allow(clippy::too_many_arguments)]
    #[new]
    #[pyo3(signature = (argv, case_timeout = 1.0, in_flight = 1, max_case = 1 << 20, max_result = 64 << 10, coverage = 0, fork_server = false))]
    fn new(
        py: Python<'_>,
        argv: Vec<String>,
        case_timeout: f64,
        in_flight: usize,
        max_case: usize,
        max_result: usize,
        coverage: usize,
        fork_server: bool,
    ) -> PyResult<Harness> {
        let Some((program, args)) = argv.split_first() else {
            return Err(PyValueError::new_err(
                "argv is empty: the target's program and its arguments",
            ));
        };
        let mut command = std::process::Command::new(program);
        command.args(args);
        let options = ringport::harness::HarnessOptions::new()
            .case_timeout(seconds(case_timeout)?)
            .in_flight(in_flight)
            .max_case(max_case)
            .max_result(max_result)
            .coverage(coverage)
            .fork_server(fork_server);
        let driver = py.allow_threads(|| options.spawn(command)).or_py()?;
        Ok(Harness {
            driver: Exclusive(driver),
        })
    }

    /// Runs one case and gives its verdict (waiting with the GIL released).
    fn run(&mut self, py: Python<'_>, case: &Bound<'_, PyAny>) -> PyResult<Verdict> {
        let driver = self.driver.get();
        let got = with_bytes(case, |bytes| py.allow_threads(|| driver.run(bytes)))?;
        Ok(verdict(py, got.or_py()?))
    }

    /// Sends a case ahead of its verdict (at most `in_flight` outstanding); returns its id.
    fn submit(&mut self, py: Python<'_>, case: &Bound<'_, PyAny>) -> PyResult<u64> {
        let driver = self.driver.get();
        with_bytes(case, |bytes| py.allow_threads(|| driver.submit(bytes)))?.or_py()
    }

    /// The verdict of the oldest case sent, waiting for it.
    fn next_verdict(&mut self, py: Python<'_>) -> PyResult<Verdict> {
        let driver = self.driver.get();
        let got = py.allow_threads(|| driver.next_verdict());
        Ok(verdict(py, got.or_py()?))
    }

    /// The coverage of the cases since the last call, as a copy of the map (which is cleared),
    /// or None without a map.
    fn take_coverage<'py>(&mut self, py: Python<'py>) -> Option<Bound<'py, pyo3::types::PyBytes>> {
        let map = self.driver.get().coverage()?;
        let mut copy = vec![0; map.len()];
        map.take(&mut copy);
        Some(pyo3::types::PyBytes::new(py, &copy))
    }

    /// Counts so far: cases, crashes, timeouts, unattributed deaths, restarts.
    #[getter]
    fn stats(&mut self) -> std::collections::HashMap<&'static str, u64> {
        let s = self.driver.get().stats();
        [
            ("cases", s.cases),
            ("crashes", s.crashes),
            ("timeouts", s.timeouts),
            ("unattributed", s.unattributed),
            ("restarts", s.restarts),
            ("server_restarts", s.server_restarts),
        ]
        .into_iter()
        .collect()
    }

    /// The running target's process id, if one runs.
    #[getter]
    fn target_pid(&mut self) -> Option<u32> {
        self.driver.get().target_pid()
    }
}

/// Removes a named segment (what a creator with keep_segment=True left).
#[pyfunction]
fn remove_segment(location: &str) -> PyResult<()> {
    let loc = ringport::Location::parse(location).or_py()?;
    ringport::remove_segment(loc).or_py()
}

#[pymodule]
fn _ringport(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Producer>()?;
    m.add_class::<Consumer>()?;
    m.add_class::<Frame>()?;
    m.add_class::<Reservation>()?;
    m.add_class::<MpmcRing>()?;
    m.add_class::<MpmcProducer>()?;
    m.add_class::<MpmcConsumer>()?;
    m.add_class::<Listener>()?;
    m.add_class::<Channel>()?;
    m.add_class::<Target>()?;
    m.add_class::<Case>()?;
    m.add_class::<Coverage>()?;
    m.add_class::<Harness>()?;
    m.add_class::<Verdict>()?;
    m.add_function(wrap_pyfunction!(fork_server, m)?)?;
    m.add_function(wrap_pyfunction!(remove_segment, m)?)?;
    m.add("RingportError", m.py().get_type::<RingportError>())?;
    m.add("PeerGone", m.py().get_type::<PeerGone>())?;
    m.add("Corrupted", m.py().get_type::<Corrupted>())?;
    Ok(())
}
