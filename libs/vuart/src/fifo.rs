//! The receive FIFO: 16 bytes in FIFO mode, one (the receiver buffer register) in 16450 mode.

/// Depth of the 16550A's receive FIFO.
pub const RX_FIFO_SIZE: usize = 16;

/// A ring of up to [`RX_FIFO_SIZE`] bytes whose usable capacity the UART sets.
#[derive(Clone, Debug)]
pub(crate) struct RxFifo {
    buf: [u8; RX_FIFO_SIZE],
    head: usize,
    len: usize,
}

impl RxFifo {
    pub(crate) const fn new() -> Self {
        Self {
            buf: [0; RX_FIFO_SIZE],
            head: 0,
            len: 0,
        }
    }

    pub(crate) const fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    /// Appends `byte` if fewer than `capacity` bytes are held; `false` when full.
    pub(crate) fn push(&mut self, byte: u8, capacity: usize) -> bool {
        if self.len >= capacity.min(RX_FIFO_SIZE) {
            return false;
        }
        self.buf[(self.head + self.len) % RX_FIFO_SIZE] = byte;
        self.len += 1;
        true
    }

    /// Replaces the newest byte (the 16450-mode overrun: the new character destroys the
    /// unread one).
    pub(crate) fn replace_newest(&mut self, byte: u8) {
        if self.len > 0 {
            self.buf[(self.head + self.len - 1) % RX_FIFO_SIZE] = byte;
        }
    }

    pub(crate) fn pop(&mut self) -> Option<u8> {
        if self.len == 0 {
            return None;
        }
        let byte = self.buf[self.head];
        self.head = (self.head + 1) % RX_FIFO_SIZE;
        self.len -= 1;
        Some(byte)
    }
}
