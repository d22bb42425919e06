//! iceoryx2 (the current release, behind the `iceoryx2` feature): a publish-subscribe service of
//! byte slices each way; the blocking form adds an event service each way, notified after every
//! send and waited on when nothing has arrived.
//!
//! Samples are loaned from the publisher, filled with one copy of the message and sent; the
//! subscriber reads them in place. A full subscriber buffer makes the publisher retry
//! (`RetryUntilDelivered`), so nothing is discarded.

use std::time::Duration;

use iceoryx2::port::listener::Listener;
use iceoryx2::port::notifier::Notifier;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;

use super::{look_at, Handoff, Patience, PeerEnd, STALL};
use crate::bench::plan::Mode;
use crate::bench::BoxError;

/// Bytes of samples a subscriber may hold, about as much as a ring here holds.
const BUFFER_BYTES: usize = 256 << 10;
/// A blocking wait is cut into slices this long, so that a dead peer is noticed.
const SLICE: Duration = Duration::from_millis(100);

type Service = ipc::Service;

/// One end of a pair of iceoryx2 services.
pub struct IoxLink {
    tx: Publisher<Service, [u8], ()>,
    rx: Subscriber<Service, [u8], ()>,
    /// The blocking form's wake-ups: ours to the peer, and the peer's to us.
    events: Option<(Notifier<Service>, Listener<Service>)>,
    // Dropped last: the ports above belong to it.
    _node: Node<Service>,
}

fn buffer(size: usize) -> usize {
    (BUFFER_BYTES / size).clamp(4, 1024)
}

impl IoxLink {
    fn connect(mode: Mode, size: usize, stem: &str, peer: bool) -> Result<IoxLink, BoxError> {
        set_log_level(LogLevel::Error);
        let node = NodeBuilder::new()
            .signal_handling_mode(SignalHandlingMode::Disabled)
            .create::<Service>()?;
        let topic = |direction: &str| -> Result<_, BoxError> {
            Ok(node
                .service_builder(&ServiceName::new(&format!("{stem}/{direction}"))?)
                .publish_subscribe::<[u8]>()
                .enable_safe_overflow(false)
                .subscriber_max_buffer_size(buffer(size))
                .history_size(0)
                .max_publishers(1)
                .max_subscribers(1)
                .open_or_create()?)
        };
        let event = |direction: &str| -> Result<_, BoxError> {
            Ok(node
                .service_builder(&ServiceName::new(&format!("{stem}/{direction}-event"))?)
                .event()
                .open_or_create()?)
        };
        let (out, back) = if peer {
            ("pong", "ping")
        } else {
            ("ping", "pong")
        };
        let (out_topic, back_topic) = (topic(out)?, topic(back)?);
        let tx = out_topic
            .publisher_builder()
            .initial_max_slice_len(size)
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()?;
        let rx = back_topic
            .subscriber_builder()
            .buffer_size(buffer(size))
            .create()?;
        let events = match mode {
            Mode::Spin => None,
            Mode::Block => Some((
                event(out)?.notifier_builder().create()?,
                event(back)?.listener_builder().create()?,
            )),
        };
        Ok(IoxLink {
            tx,
            rx,
            events,
            _node: node,
        })
    }

    pub fn create(mode: Mode, size: usize, handoff: &mut Handoff) -> Result<IoxLink, BoxError> {
        let stem = crate::bench::unique_name("iox");
        let link = IoxLink::connect(mode, size, &stem, false)?;
        handoff.peer.names.push(stem);
        Ok(link)
    }

    pub fn open(mode: Mode, size: usize, end: &PeerEnd) -> Result<IoxLink, BoxError> {
        let [stem] = &end.names[..] else {
            return Err("iceoryx2: expected one service name".into());
        };
        IoxLink::connect(mode, size, stem, true)
    }
}

impl super::Link for IoxLink {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> Result<(), BoxError> {
        let sample = self.tx.loan_slice_uninit(msg.len())?;
        sample.write_from_slice(msg).send()?;
        if let Some((notifier, _)) = &self.events {
            notifier.notify()?;
        }
        Ok(())
    }

    #[inline]
    fn recv(&mut self) -> Result<u64, BoxError> {
        let mut patience = Patience::new();
        let mut slices = 0u32;
        loop {
            if let Some(sample) = self.rx.receive()? {
                return look_at(sample.payload());
            }
            match &self.events {
                None => patience.spin()?,
                Some((_, listener)) => {
                    listener.timed_wait(|_| {}, SLICE)?;
                    slices += 1;
                    if SLICE * slices > STALL {
                        return Err("iceoryx2: no progress: the peer is stuck or gone".into());
                    }
                }
            }
        }
    }
}
